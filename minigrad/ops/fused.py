"""Fused ops: one normalisation kernel (batch, group and layer norm) and cross-entropy, each a
single graph node with a hand-written backward.

Each computes in one node what a chain of primitives would (compare ``nn/batchnorm.py`` and
``nn/normalization.py``, where the composed and the fused forms sit side by side). Each saves
intermediates (x - μ, softmax) for speed, so each overrides ``rebuild_saved``: for a
differentiable backward (create_graph=True) it rebuilds them from the input with primitive ops,
and the hand-written backward below then runs on Tensors. Its second derivative is thus the
derivative of this very formula, not of a separate one; we chose that over a hand-written double
backward because the formula stays the only place to read, and gradgradcheck tests it.
"""
import functools
import string

import numpy as np

from ..autograd.function import Function
from .reduce import keep_shape


def bn_axes(x):
    """Axes that batch statistics reduce over, all but the channel axis 1:
    (N, C) -> (0,), (N, C, L) -> (0, 2), (N, C, H, W) -> (0, 2, 3)."""
    return (0, *range(2, x.ndim))


def bn_param_shape(x):
    """Shape that broadcasts a per-channel (C,) vector against x: (1, C), (1, C, 1), (1, C, 1, 1)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


@functools.lru_cache(maxsize=None)
def _dot_subscripts(ndim, axes):
    letters = string.ascii_lowercase[:ndim]                  # "abc" for 3-D
    kept = "".join(c for i, c in enumerate(letters) if i not in axes)
    return f"{letters},{letters}->{kept}"                    # (0, 2) of 3-D: "abc,abc->b"


def group_dot(a, b, axes):
    """Σ a·b over ``axes``: two arrays of one shape (or with size-1 axes that broadcast) -> that
    shape without ``axes`` ((N, C, L) over (0, 2) -> (C,): one number per channel); no axes: a·b.

    On arrays, one einsum pass with no temporary of products (on large inputs such a temporary
    costs a page-faulting allocation); on Tensors (create_graph), primitive ops.
    """
    if not axes:
        return a * b
    if isinstance(a, np.ndarray):          # then b is one too: create_graph makes both Tensors
        return np.einsum(_dot_subscripts(a.ndim, axes), a, b)
    return (a * b).sum(axis=axes)


class Normalize(Function):
    """y = γ · x̂ + β,  x̂ = (x - μ) · inv_std,  inv_std = 1 / sqrt(σ² + eps)

    The one normalisation kernel: batch, group and layer norm differ only in which values
    share a mean μ and a *biased* variance σ² (a "group"), and in which axes γ, β repeat along:
        view, axes    x is viewed (no copy) as ``view`` (None: as it is, batch norm's layout,
                      where param_axes must be ``axes``); each group reduces over ``axes``
        param_axes    the axes of the view that γ and β (or None) are broadcast along
    BatchNormFused, GroupNormFused and LayerNormFused below only choose these. forward returns
    (y, μ, σ², n): y shaped like x; μ and σ² per group, plain arrays shaped as the view without
    ``axes`` ((C,) for batch norm); n the number of values in each group.

    ``sum_ranks`` (for SyncBatchNorm): None (this process only), or a callable taking an array
    and returning the elementwise sum of that array over all processes (same shape and dtype).
    Then each group holds its values on every process: forward calls it on [Σx per group..., n]
    (flat, the count last) and then on Σ(x - μ)² per group; backward, only if x needs a gradient,
    on [Σ dx̂; Σ dx̂·(x - μ)] stacked as (2, groups) (for batch norm dx̂ stands for dy: Σ dy and
    Σ dy·(x - μ)). dγ and dβ stay this process's own sums. Under create_graph backward and
    ``rebuild_saved`` call it with Tensors, once per sum: it must then be differentiable.

    Speed: every line that touches the whole array is one pass over memory, so the op makes as
    few as it can. x̂ is never stored: it saves x - μ, and forward is y = (x - μ) · (γ inv_std) + β
    with γ inv_std one small factor for batch norm ((C,)) and group norm ((N, C)).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, view, axes, param_axes, sum_ranks=None):
        xv = x if view is None else x.reshape(view)         # a view of x, no copy
        sums = xv.sum(axis=axes, keepdims=True)             # Σx per group, keepdims (1, C, 1...)
        n = x.size // sums.size                             # values per group
        if sum_ranks is not None:                           # every process's values: one call
            flat = np.concatenate((sums.reshape(-1), np.array([n], sums.dtype)))  # (groups + 1,), n last
            total = sum_ranks(flat)
            sums, n = total[:-1].reshape(sums.shape), total[-1]
        mean = sums / n                                     # μ, keepdims
        x_mu = xv - mean                                    # centred first: stable variance
        squares = group_dot(x_mu, x_mu, axes)               # Σ (x - μ)² per group, (groups...)
        if sum_ranks is not None:
            squares = sum_ranks(squares)
        var = squares.reshape(mean.shape) / n               # biased σ², keepdims
        inv_std = 1.0 / np.sqrt(var + eps)                  # keepdims
        # batch norm: x as it is, γ repeating along the statistics' own axes: one γ per group;
        # else backward sums first over a group's axes along which γ is constant (``inner``;
        # group norm: the positions, when there are several; layer norm: none)
        per_group = view is None           # batch norm (its callers' view is None only there,
        #                                    where γ repeats along the statistics' axes)
        inner = None if per_group else tuple(a for a in axes if a in param_axes and xv.shape[a] > 1)
        param_shape = mean.shape if per_group else keep_shape(xv.shape, param_axes)  # (1, C, 1...)
        gamma = None if weight is None else weight.reshape(param_shape)     # γ in the view
        if gamma is not None and inner == ():   # γ varies along all of a group, so γ inv_std
            y = x_mu * inv_std                  # would be as big as x: two passes
            y *= gamma
        else:                                   # γ inv_std: (C,) batch norm, (N, C) group norm
            y = x_mu * (inv_std if gamma is None else gamma * inv_std)   # γ x̂, x̂ never in memory
        if bias is not None:
            y += bias.reshape(param_shape)                  # in place: + β
        ctx.save_for_backward(x_mu, inv_std, weight)
        ctx.layout = (x.shape, view, axes, param_axes, param_shape, inner,   # inner None: batch norm
                      None if bias is None else bias.shape)
        ctx.n, ctx.eps, ctx.sum_ranks = n, eps, sum_ranks
        return (y if view is None else y.reshape(x.shape)), mean.reshape(squares.shape), \
            var.reshape(squares.shape), int(n)

    # Derivation (per group; sums Σ run over the n values of a group, x̂ over them too).
    #   y = γ x̂ + β, so  dβ = Σ dy,  dγ = Σ dy·x̂  (each summed where γ, β are broadcast),
    #   and  dx̂ = γ dy.
    #   x̂ = (x - μ) inv_std depends on x directly and through μ and σ²:
    #     ∂μ/∂x_i = 1/n,   ∂σ²/∂x_i = 2 (x_i - μ) / n,   ∂inv_std/∂σ² = -inv_std³ / 2.
    #   dx_i = inv_std dx̂_i - inv_std/n Σ dx̂ - (x_i - μ) inv_std³ / n Σ dx̂·(x - μ)
    #        = inv_std/n · (n dx̂_i - Σ dx̂ - x̂_i Σ dx̂·x̂)               [x - μ = x̂ / inv_std]
    # The code keeps x - μ rather than x̂, so it uses Σ dx̂·x̂ = inv_std Σ dx̂·(x - μ) and
    #   dx = inv_std · (dx̂ - Σ dx̂ / n - (x - μ) · k),   k = inv_std² Σ dx̂·(x - μ) / n.
    # Batch norm: γ is one number per group, so Σ dx̂ = γ Σ dy and Σ dx̂·(x - μ) = γ Σ dy·(x - μ);
    #   γ leaves the sums, which are then dβ and dγ / inv_std as they stand, and
    #   dx = γ inv_std · (dy - Σ dy / n - (x - μ) · k)   with k over dy: one (C,)-sized factor.
    # Group and layer norm: γ varies inside a group (per channel; per element). Each sum is first
    #   taken over the group's axes along which γ is constant (group norm: the positions; layer
    #   norm: none), then weighted by γ (Σ dx̂ = Σ γ · Σ_positions dy) and summed over the rest;
    #   the same partial sums, weighted by inv_std, summed where γ is broadcast, give dγ and dβ.
    # The small factors come first, so on arrays each pass over x is one in-place update;
    # Tensors (create_graph) evaluate the same line out of place.
    @staticmethod
    def backward(ctx, grad_y):
        x_mu, inv_std, weight = ctx.saved_tensors
        shape, view, axes, param_axes, param_shape, inner, bias_shape = ctx.layout
        n, keep, needs = ctx.n, inv_std.shape, ctx.needs_input_grad
        gamma = None if weight is None else weight.reshape(param_shape)       # γ in the view
        grad_yv = grad_y if view is None else grad_y.reshape(view)            # dy in the view
        if inner is None:        # batch norm: the sums are over dy; (C,) arrays of their own
            sum_g = grad_yv.sum(axis=axes)                                     # Σ dy          (C,)
            sum_g_xmu = group_dot(grad_yv, x_mu, axes)                         # Σ dy·(x - μ)  (C,)
            grad_w = sum_g_xmu * inv_std.reshape(sum_g_xmu.shape) if needs[1] else None   # Σ dy·x̂
            grad_b = sum_g if needs[2] else None                                           # Σ dy
        else:                    # group and layer norm: over the axes where γ is constant first
            sum_dy = grad_yv.sum(axis=inner, keepdims=True) if inner else grad_yv         # Σ_inner dy
            sum_dy_xmu = group_dot(grad_yv, x_mu, inner).reshape(sum_dy.shape)   # Σ_inner dy·(x - μ)
            sum_g = sum_dy.sum(axis=axes) if gamma is None else group_dot(sum_dy, gamma, axes)  # Σ dx̂
            sum_g_xmu = sum_dy_xmu.sum(axis=axes) if gamma is None else \
                group_dot(sum_dy_xmu, gamma, axes)                                       # Σ dx̂·(x - μ)
            grad_w = group_dot(sum_dy_xmu, inv_std, param_axes).reshape(weight.shape) \
                if needs[1] else None                                                      # Σ dy·x̂
            grad_b = sum_dy.sum(axis=param_axes).reshape(bias_shape) if needs[2] else None   # Σ dy
        grad_x = None
        if needs[0]:
            if ctx.sum_ranks is not None:                              # every process's values
                if isinstance(sum_g, np.ndarray):
                    both = np.concatenate((sum_g, sum_g_xmu)).reshape(2, -1)   # (2, C): one call
                    sum_g, sum_g_xmu = ctx.sum_ranks(both)
                else:
                    sum_g, sum_g_xmu = ctx.sum_ranks(sum_g), ctx.sum_ranks(sum_g_xmu)
            k = inv_std * inv_std * sum_g_xmu.reshape(keep) / n       # keepdims
            mean_g = sum_g.reshape(keep) / n                           # keepdims
            if inner is None:      # (dy - Σ dy / n - (x - μ) k) · γ inv_std, one (C,) factor
                grad_xhat, scale = grad_yv, inv_std if gamma is None else gamma * inv_std
            else:                  # (dx̂ - Σ dx̂ / n - (x - μ) k) · inv_std
                grad_xhat, scale = grad_yv if gamma is None else grad_yv * gamma, inv_std
            if isinstance(grad_y, np.ndarray):
                grad_x = np.empty(shape, x_mu.dtype)       # fresh, in x's shape (a reshaped result
                groups = grad_x if view is None else grad_x.reshape(view)   # is a view,
                np.multiply(x_mu, -k, out=groups)          # which the engine would copy); each
                groups += grad_xhat                        # update below is in place
                groups -= mean_g
                groups *= scale
            else:                           # Tensors: the same line, recorded out of place
                grad_x = (grad_xhat - mean_g - x_mu * k) * scale
                grad_x = grad_x if view is None else grad_x.reshape(shape)
        return grad_x, grad_w, grad_b

    @staticmethod
    def rebuild_saved(ctx, saved):
        """x - μ and inv_std rebuilt from x with primitive ops (and ``sum_ranks``), so the
        backward above can be differentiated; when x needs no gradient they are constants."""
        x_mu, inv_std, weight = saved
        x = ctx.parents[0]
        if x is not None:
            _, view, axes, *_ = ctx.layout
            ranks = ctx.sum_ranks or (lambda t: t)
            xv = x if view is None else x.reshape(view)
            x_mu = xv - ranks(xv.sum(axis=axes, keepdims=True)) / ctx.n
            inv_std = (ranks((x_mu * x_mu).sum(axis=axes, keepdims=True)) / ctx.n + ctx.eps) ** -0.5
        return x_mu, inv_std, weight


class BatchNormFused(Normalize):
    """Batch norm in training mode: μ, σ² per channel over N and every position, γ, β (C,).

    x: (N, C), (N, C, L) or (N, C, H, W). forward(ctx, x, weight, bias, eps, sum_ranks=None)
    returns (y, μ (C,), σ² (C,), n = N·L values per channel); see Normalize.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, sum_ranks=None):
        axes = bn_axes(x)                    # x as it is; γ, β repeat along the same axes
        return Normalize.forward(ctx, x, weight, bias, eps, None, axes, axes, sum_ranks)


class GroupNormFused(Normalize):
    """Group norm: the C channels of each sample split into G groups of C/G; μ, σ² per (sample,
    group) over its C/G channels and every position; γ, β (C,) per channel.

    x: (N, C, *); forward(ctx, x, weight, bias, eps, num_groups) returns (y, μ (N, G), σ² (N, G),
    n = C/G·L values per group, L the number of positions); see Normalize.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, num_groups):
        n, channels = x.shape[:2]
        view = (n, num_groups, channels // num_groups, x.size // (n * channels))   # (N, G, C/G, L)
        return Normalize.forward(ctx, x, weight, bias, eps, view, (2, 3), (0, 3))  # γ (1, G, C/G, 1)


class LayerNormFused(Normalize):
    """Layer norm over the last ``ndim`` axes: μ, σ² per sample (per position of the leading
    axes) over those axes; γ, β shaped like them, one per element.

    x: (*, *normalized_shape); forward(ctx, x, weight, bias, eps, ndim) returns (y, μ (M,),
    σ² (M,), n = K) with K the product of the normalised sizes and M = x.size / K; see Normalize.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, ndim):
        size = int(np.prod(x.shape[x.ndim - ndim:]))
        view = (x.size // size, size)                                           # (M, K)
        return Normalize.forward(ctx, x, weight, bias, eps, view, (1,), (0,))     # γ (1, K)


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
        if reduction == "none":
            return losses
        if reduction == "sum" or losses.dtype == np.float16:
            return losses.sum() if reduction == "sum" else losses.mean()
        return losses.sum() / len(losses)      # = losses.mean() (float16 sums in float32 there)

    @staticmethod
    def backward(ctx, grad_y):
        (probs,) = ctx.saved_tensors
        n = probs.shape[0]
        if ctx.reduction == "none":
            upstream = grad_y.reshape(n, 1)          # one upstream value per row
        else:
            upstream = grad_y / n if ctx.reduction == "mean" else grad_y
        onehot = np.zeros(probs.shape, dtype=probs.dtype)
        onehot[np.arange(n), ctx.target] = 1
        return (probs - onehot) * upstream, None

    @staticmethod
    def rebuild_saved(ctx, saved):
        """softmax rebuilt from the logits with primitive ops (differentiable)."""
        z = ctx.parents[0]        # recorded, so the logits require grad
        exp = (z - z.data.max(axis=1, keepdims=True)).exp()
        return (exp / exp.sum(axis=1, keepdims=True),)
