"""The hand-written numpy baseline: an MLP training step with no autograd at all.

What a competent person writes by hand (cs231n style): each layer a forward that returns a cache
and a backward that takes it; batch norm is the textbook ``batchnorm_forward`` /
``batchnorm_backward_alt`` pair. No deliberate slowness and no tricks either, so it is the floor
minigrad's overhead is measured against. The benchmarks check its gradients against minigrad's
before timing anything.
"""
import numpy as np


# --------------------------------------------------------------------------- batch norm
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm of x (N, D): returns out, the batch mean and biased variance (D,),
    and the cache for the backward."""
    mu = x.mean(axis=0)                      # (N, D) -> (D,)
    var = x.var(axis=0)                      # biased, (D,)
    std = np.sqrt(var + eps)
    x_hat = (x - mu) / std
    out = gamma * x_hat + beta
    return out, mu, var, (x_hat, gamma, std)


def batchnorm_backward(dout, cache):
    """The simplified ("alt") backward: dx = (N dx̂ - Σ dx̂ - x̂ Σ dx̂·x̂) / (N std)."""
    x_hat, gamma, std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0)) / (n * std)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- loss
def softmax_loss(logits, y):
    """Mean softmax cross-entropy of logits (N, K) against int targets y (N,), and d logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_z
    n = logits.shape[0]
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits


# --------------------------------------------------------------------------- the model
class NumpyMLP:
    """Linear -> BatchNorm -> ReLU blocks, then a final Linear; SGD with momentum (PyTorch's rule).

    ``params`` is the flat list [W1, b1, γ1, β1, W2, b2, γ2, β2, ..., W_out, b_out] (copied).
    """

    def __init__(self, params, lr, momentum, bn_momentum=0.1, eps=1e-5):
        self.params = [p.copy() for p in params]
        self.lr, self.momentum, self.bn_momentum, self.eps = lr, momentum, bn_momentum, eps
        self.velocity = [None] * len(self.params)
        self.blocks = (len(self.params) - 2) // 4
        self.running = [(np.zeros_like(self.params[4 * k + 2]), np.ones_like(self.params[4 * k + 2]))
                        for k in range(self.blocks)]

    def loss_and_grads(self, x, y):
        """Forward and manual backward; returns the loss and one gradient per parameter."""
        caches, h = [], x
        for k in range(self.blocks):
            w, b, gamma, beta = self.params[4 * k: 4 * k + 4]
            z = h @ w.T + b
            out, mu, var, bn_cache = batchnorm_forward(z, gamma, beta, self.eps)
            self.update_running_stats(k, mu, var, z.shape[0])
            a = np.maximum(out, 0)
            caches.append((h, a, bn_cache))
            h = a
        w_out, b_out = self.params[-2:]
        logits = h @ w_out.T + b_out
        loss, dlogits = softmax_loss(logits, y)

        grads = [None] * len(self.params)
        grads[-2], grads[-1] = dlogits.T @ h, dlogits.sum(axis=0)
        dh = dlogits @ w_out
        for k in reversed(range(self.blocks)):
            h_in, a, bn_cache = caches[k]
            dout = dh * (a > 0)                                   # ReLU
            dz, dgamma, dbeta = batchnorm_backward(dout, bn_cache)
            w = self.params[4 * k]
            grads[4 * k: 4 * k + 4] = dz.T @ h_in, dz.sum(axis=0), dgamma, dbeta
            if k > 0:                                             # the input x needs no gradient
                dh = dz @ w
        return loss, grads

    def update_running_stats(self, k, mu, var, n):
        running_mean, running_var = self.running[k]
        running_mean *= 1 - self.bn_momentum
        running_mean += self.bn_momentum * mu
        running_var *= 1 - self.bn_momentum
        running_var += self.bn_momentum * n / (n - 1) * var       # unbiased, as PyTorch

    def sgd_step(self, grads):
        """v = μ v + g (v = g on the first step);  p -= lr · v   (in place)."""
        for i, (p, g) in enumerate(zip(self.params, grads)):
            v = self.velocity[i]
            if v is None:
                v = self.velocity[i] = g.copy()
            else:
                v *= self.momentum
                v += g
            p -= self.lr * v

    def step(self, x, y):
        loss, grads = self.loss_and_grads(x, y)
        self.sgd_step(grads)
        return loss
