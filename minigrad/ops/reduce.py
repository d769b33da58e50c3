"""Reductions: sum, mean, max over ``axis`` (None, an int or a tuple) with ``keepdims``.

Backward puts the reduced axes back (``keep_shape``: size-1 axes where the reduction was) and
broadcasts the gradient over them, so every input element gets its share.
"""
import numbers

import numpy as np

from ..autograd.function import Function
from .elementwise import DEFAULT_FLOAT
from .shape import broadcast_to


def reduced_axes(ndim, axis):
    """The set of axes a reduction removes: None -> all; an int (numpy's too) or a tuple."""
    if axis is None:
        return set(range(ndim))
    return {a % ndim for a in ((axis,) if isinstance(axis, numbers.Integral) else axis)}


def keep_shape(shape, axis):
    """The output shape with keepdims=True: (4, 5, 6), axis=(0, 2) -> (1, 5, 1)."""
    axes = reduced_axes(len(shape), axis)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = Σ_axis x;   dx = dy broadcast back over the summed axes"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.keep = x.shape, keep_shape(x.shape, axis)
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_y):
        return broadcast_to(grad_y.reshape(ctx.keep), ctx.shape)


class Mean(Function):
    """y = Σ_axis x / n;   dx = dy / n broadcast back over the averaged axes (n elements each)"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.keep = x.shape, keep_shape(x.shape, axis)
        y = x.mean(axis=axis, keepdims=keepdims)
        if x.dtype.kind not in "fc":       # of integers or booleans: the default float, as for
            y = np.asarray(y, DEFAULT_FLOAT)   # int / int (numpy would say float64)
        ctx.n = x.size // max(np.size(y), 1)   # elements averaged into each output
        return y

    @staticmethod
    def backward(ctx, grad_y):
        return broadcast_to(grad_y.reshape(ctx.keep) / ctx.n, ctx.shape)


class Max(Function):
    """y = max_axis x;   dx = dy * w, where w = 1/k on each of the k maximal entries, else 0.

    Ties split the gradient evenly (as torch.amax does), so the gradient still sums to dy. A NaN
    is the maximum (it propagates, as in numpy and PyTorch), so the gradient goes to the NaN
    entries, split evenly among them as torch.max() does (torch.amax gives NaN to every entry;
    torch.max(dim) all to the first NaN). ``w`` is piecewise constant in x: create_graph keeps it
    as a constant (``saves_constants``).
    """

    saves_constants = True

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        empty = [a for a in sorted(reduced_axes(x.ndim, axis)) if x.shape[a] == 0]
        if empty or (x.ndim == 0 and x.size == 0):
            raise ValueError(f"max over an empty axis: axis {empty} of shape {x.shape} has size 0 "
                             f"(a maximum of nothing is undefined)")
        y = x.max(axis=axis, keepdims=True)                 # (.., 1, ..): reduced axes kept
        ctx.keep = y.shape
        if ctx.needs_input_grad[0]:  # never for int/bool tensors, whose dtype cannot hold 1/k
            maxima = x == y                                 # True on the maxima
            if np.isnan(y).any():                           # NaN == NaN is False: mark them
                maxima |= np.isnan(x) & np.isnan(y)
            weights = maxima.astype(x.dtype)
            weights /= weights.sum(axis=axis, keepdims=True)  # 1/k for k tied maxima
            ctx.save_for_backward(weights)
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad_y):
        (weights,) = ctx.saved_tensors
        return grad_y.reshape(ctx.keep) * weights
