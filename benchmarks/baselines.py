"""The hand-written numpy baselines: an MLP training step, batch norm and convolution, with no
autograd at all.

What a competent person writes by hand (cs231n style): each layer a forward that returns a cache
and a backward that takes it; batch norm is the textbook ``batchnorm_forward`` /
``batchnorm_backward_alt`` pair. No deliberate slowness and no tricks either, so it is the floor
minigrad's overhead is measured against. The benchmarks check its gradients against minigrad's
before timing anything.
"""
import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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


# --------------------------------------------------------------------------- convolution
# cs231n style (conv_forward_im2col / conv_backward_im2col): np.pad, im2col by sliding windows into
# one (C·K, P·N) matrix (samples innermost, as cs231n's im2col), one matmul, the output a
# transposed view of it; backward: db summed over the axes, two matmuls, col2im by a loop over the
# kernel offsets into a zeroed padded array. Any number of spatial axes, so 1-D and 2-D share it.
def conv1d_forward(x, w, b, stride=1, padding=0, dilation=1):
    """x (N, C, L), w (F, C, k), b (F,) or None -> out (N, F, L_out), cache."""
    return conv_forward(x, w, b, (stride,), (padding,), (dilation,))


def conv2d_forward(x, w, b, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None; pairs -> out (N, F, H_out, W_out), cache."""
    return conv_forward(x, w, b, tuple(stride), tuple(padding), tuple(dilation))


def conv_forward(x, w, b, stride, padding, dilation):
    """Cross-correlation over the trailing len(stride) axes; stride, padding, dilation: tuples."""
    n, d = x.shape[0], w.ndim - 2
    x_padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    spans = tuple(dl * (k - 1) + 1 for k, dl in zip(w.shape[2:], dilation))
    windows = sliding_window_view(x_padded, spans, axis=tuple(range(2, 2 + d)))
    windows = windows[(..., *(slice(None, None, s) for s in stride), *(slice(None, None, dl) for dl in dilation))]
    out_shape = windows.shape[2:2 + d]                                   # (N, C, *out, *K)
    x_cols = windows.transpose(1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d), 0)
    x_cols = x_cols.reshape(-1, math.prod(out_shape) * n)                 # (C·K, P·N)
    res = w.reshape(w.shape[0], -1) @ x_cols                              # (F, P·N)
    if b is not None:
        res += b.reshape(-1, 1)
    out = np.moveaxis(res.reshape(w.shape[0], *out_shape, n), -1, 0)     # (N, F, *out), a view
    return out, (x.shape, w, b is not None, stride, padding, dilation, x_cols)


def conv_backward(dout, cache, need_dx=True):
    """dout (N, F, *out) -> dx (None unless need_dx), dw, db (None without bias)."""
    x_shape, w, has_bias, stride, padding, dilation, x_cols = cache
    d, num_filters = w.ndim - 2, w.shape[0]
    db = np.sum(dout, axis=(0, *range(2, 2 + d))) if has_bias else None
    dout_reshaped = np.moveaxis(dout, 0, -1).reshape(num_filters, -1)    # (F, P·N)
    dw = (dout_reshaped @ x_cols.T).reshape(w.shape)
    dx = None
    if need_dx:
        dx_cols = w.reshape(num_filters, -1).T @ dout_reshaped           # (C·K, P·N)
        dx = col2im(dx_cols, x_shape, w.shape[2:], stride, padding, dilation, dout.shape[2:])
    return dx, dw, db


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_shape):
    """(C·K, P·N) back to (N, C, *S): each kernel offset's slab added where its windows read."""
    n, c = x_shape[:2]
    cols = cols.reshape(c, *kernel, *out_shape, n)
    x_padded = np.zeros((n, c, *(m + 2 * p for m, p in zip(x_shape[2:], padding))), dtype=cols.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        where = tuple(slice(dl * o, dl * o + s * (m - 1) + 1, s)
                      for o, s, dl, m in zip(offset, stride, dilation, out_shape))
        x_padded[(slice(None), slice(None), *where)] += np.moveaxis(cols[(slice(None), *offset)], -1, 0)
    return x_padded[(slice(None), slice(None), *(slice(p, p + m) for m, p in zip(x_shape[2:], padding)))]
