"""Fused ops: batch norm and cross-entropy as single graph nodes with hand-written backward.

Each computes in one node what a chain of primitives would (compare ``nn/batchnorm.py``,
where ``batch_norm_composed`` sits next to ``batch_norm_fused``). Each saves intermediates
(x - μ, softmax) for speed, so each overrides ``rebuild_saved``: for a differentiable backward
(create_graph=True) it rebuilds them from the input with primitive ops, and the hand-written
backward below then runs on Tensors. Its second derivative is thus the derivative of this very
formula, not of a separate one; we chose that over a hand-written double backward because the
formula stays the only place to read, and gradgradcheck tests it against finite differences.
"""
import numpy as np

from ..autograd.function import Function


def bn_axes(x):
    """Axes that batch statistics reduce over, all but the channel axis 1:
    (N, C) -> (0,), (N, C, L) -> (0, 2), (N, C, H, W) -> (0, 2, 3)."""
    return (0, *range(2, x.ndim))


def bn_param_shape(x):
    """Shape that broadcasts a per-channel (C,) vector against x: (1, C), (1, C, 1), (1, C, 1, 1)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


EINSUM_LETTERS = "nclhw"   # subscripts for einsum: n, c, then up to three spatial axes


def channel_dot(a, b):
    """Σ a·b per channel: (N, C, ...) twice -> (C,).

    On arrays, one einsum pass with no (N, C, ...) temporary of products (on large inputs such a
    temporary costs a page-faulting allocation); on Tensors (create_graph), primitive ops.
    """
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        axes = EINSUM_LETTERS[:a.ndim]                       # "nc", "ncl", "nclh", ...
        return np.einsum(f"{axes},{axes}->c", a, b)
    return (a * b).sum(axis=bn_axes(a))


class BatchNormFused(Function):
    """y = γ · x̂ + β,  x̂ = (x - μ) · inv_std,  inv_std = 1 / sqrt(σ² + eps)   (training mode)

    μ, σ² are the batch mean and *biased* batch variance per channel, over N and every position.
    x: (N, C), (N, C, L) or (N, C, H, W); weight γ, bias β: (C,) or None. forward returns
    (y, μ (C,), σ² (C,)); μ and σ² leave as plain arrays for the running statistics.

    Speed: every line below that touches the whole (N, C, ...) array is one pass over memory,
    so the op makes as few of them as it can. x̂ itself is never stored: forward computes
    y = (x - μ) · (γ inv_std) + β from the centred x, and saves x - μ; backward needs x̂ only
    rescaled per channel (x̂ = (x - μ) · inv_std), so it folds inv_std into (C,)-sized factors.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        axes, shape = bn_axes(x), bn_param_shape(x)
        n = x.size // x.shape[1]
        mean = x.sum(axis=axes, keepdims=True) / n          # μ: (N, C, ...) -> (1, C, 1...)
        x_mu = x - mean                                     # centred first: stable variance
        var = channel_dot(x_mu, x_mu).reshape(shape) / n   # biased σ² = Σ (x - μ)² / n
        inv_std = 1.0 / np.sqrt(var + eps)                  # biased σ² -> inv_std, (1, C, 1...)
        scale = inv_std if weight is None else weight.reshape(shape) * inv_std   # γ inv_std
        y = x_mu * scale                                    # γ x̂, with x̂ never in memory
        if bias is not None:
            y += bias.reshape(shape)                        # in place: + β
        ctx.save_for_backward(x_mu, inv_std, weight)
        ctx.axes, ctx.n, ctx.eps = axes, n, eps
        return y, mean.reshape(-1), var.reshape(-1)

    # Derivation (per channel; sums Σ run over the n = N·L (or N·H·W) values of that channel).
    #   y = γ x̂ + β, so  dβ = Σ dy,  dγ = Σ dy·x̂,  and  dx̂ = γ dy.
    #   x̂ = (x - μ) inv_std depends on x directly and through μ and σ²:
    #     ∂μ/∂x_i = 1/n,   ∂σ²/∂x_i = 2 (x_i - μ) / n,   ∂inv_std/∂σ² = -inv_std³ / 2.
    #   dx_i = inv_std dx̂_i - inv_std/n Σ dx̂ - (x_i - μ) inv_std³ / n Σ dx̂·(x - μ)
    #        = inv_std/n · (n dx̂_i - Σ dx̂ - x̂_i Σ dx̂·x̂)               [x - μ = x̂ / inv_std]
    #   With dx̂ = γ dy:  dx = (γ inv_std / n) · (n dy - Σ dy - x̂ Σ dy·x̂).
    # The code keeps x - μ rather than x̂, so it uses Σ dy·x̂ = inv_std Σ dy·(x - μ) and
    #   dx = γ inv_std · (dy - Σ dy / n - (x - μ) · k),   k = inv_std² Σ dy·(x - μ) / n,
    # with the (C,)-sized factors computed first, so on arrays each pass over x is one in-place
    # update; Tensors (create_graph) evaluate the same line out of place.
    @staticmethod
    def backward(ctx, grad_y):
        x_mu, inv_std, weight = ctx.saved_tensors
        axes, n, shape = ctx.axes, ctx.n, inv_std.shape               # shape: (1, C, 1...)
        sum_dy = grad_y.sum(axis=axes)                                # Σ dy         (C,)
        sum_dy_xmu = channel_dot(grad_y, x_mu)                        # Σ dy·(x - μ) (C,)
        grad_x = None
        if ctx.needs_input_grad[0]:
            k = inv_std * inv_std * sum_dy_xmu.reshape(shape) / n     # (1, C, 1...)
            mean_dy = sum_dy.reshape(shape) / n                       # Σ dy / n     (1, C, 1...)
            scale = inv_std if weight is None else weight.reshape(shape) * inv_std   # γ inv_std
            if isinstance(grad_y, np.ndarray):
                grad_x = x_mu * -k          # fresh, so each update below is in place
                grad_x += grad_y
                grad_x -= mean_dy
                grad_x *= scale
            else:                           # Tensors: the same line, recorded out of place
                grad_x = (grad_y - mean_dy - x_mu * k) * scale
        # (C,) arrays of their own, not views, which the engine would copy before storing
        grad_w = sum_dy_xmu * inv_std.reshape(-1) if ctx.needs_input_grad[1] else None  # Σ dy·x̂
        grad_b = sum_dy if ctx.needs_input_grad[2] else None                            # Σ dy
        return grad_x, grad_w, grad_b

    @staticmethod
    def rebuild_saved(ctx, saved):
        """x - μ and inv_std rebuilt from x with primitive ops, so the backward above can be
        differentiated; when x needs no gradient they are constants and kept as saved."""
        x_mu, inv_std, weight = saved
        x = ctx.parents[0]
        if x is not None:
            x_mu = x - x.mean(axis=ctx.axes, keepdims=True)
            inv_std = ((x_mu * x_mu).mean(axis=ctx.axes, keepdims=True) + ctx.eps) ** -0.5
        return x_mu, inv_std, weight


class CrossEntropy(Function):
    """loss_i = log Σ_k exp(z_ik) - z_i,t_i   (z: logits (N, K), t: int targets (N,));
    dz = (softmax(z) - onehot(t)) · dloss_i   (divided by N for reduction="mean")

    Stable: the row maximum is subtracted before exp (log-sum-exp), so logits of ±1e4 are fine.
    """

    @staticmethod
    def forward(ctx, logits, target, reduction):
        shifted = logits - logits.max(axis=1, keepdims=True)           # (N, K), row max is 0
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)                       # (N, 1)
        rows = np.arange(len(target))
        losses = np.log(sum_exp[:, 0]) - shifted[rows, target]         # (N,)
        exp /= sum_exp                                                 # in place: softmax
        ctx.save_for_backward(exp)
        ctx.target, ctx.reduction = target, reduction
        if reduction == "mean":
            return losses.mean()
        return losses.sum() if reduction == "sum" else losses

    @staticmethod
    def backward(ctx, grad_y):
        (probs,) = ctx.saved_tensors
        n = probs.shape[0]
        onehot = np.zeros(probs.shape, dtype=probs.dtype)
        onehot[np.arange(n), ctx.target] = 1
        if ctx.reduction == "none":
            upstream = grad_y.reshape(n, 1)          # one upstream value per row
        else:
            upstream = grad_y / n if ctx.reduction == "mean" else grad_y
        return (probs - onehot) * upstream, None

    @staticmethod
    def rebuild_saved(ctx, saved):
        """softmax rebuilt from the logits with primitive ops (differentiable)."""
        z = ctx.parents[0]
        if z is None:
            return saved
        exp = (z - z.data.max(axis=1, keepdims=True)).exp()
        return (exp / exp.sum(axis=1, keepdims=True),)
