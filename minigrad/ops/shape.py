"""Shape ops: reshape, transpose, broadcast_to, indexing, and indexing's adjoint index_add.

These move entries around without arithmetic, so each backward moves the gradient back:
reshape <-> reshape, transpose <-> inverse transpose, broadcast <-> sum (done by the engine's
un-broadcasting), getitem <-> index_add. The two helpers at the bottom let backward formulas
call broadcast / scatter on arrays (fast path, numpy) and on Tensors (create_graph, the op) alike.
"""
import numpy as np

from ..autograd.function import Function


class Reshape(Function):
    """y = x.reshape(shape);   dx = dy.reshape(x.shape)"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y.reshape(ctx.shape)


class Transpose(Function):
    """y = x.transpose(axes);   dx = dy.transpose(argsort(axes))  (axes=None reverses them)"""

    @staticmethod
    def forward(ctx, x, axes=None):
        ctx.axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(a % x.ndim for a in axes)
        if sorted(ctx.axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
        return x.transpose(ctx.axes)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y.transpose(tuple(np.argsort(ctx.axes)))


class BroadcastTo(Function):
    """y = x broadcast to ``shape``;   dx = dy summed over the broadcast axes (by the engine)"""

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y  # engine.unbroadcast sums it down to x's shape


class GetItem(Function):
    """y = x[index];   dx = zeros like x, with dy added at ``index`` (repeats accumulate)"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.shape = index, x.shape   # apply made the index the graph's own (a copy)
        return x[index]

    @staticmethod
    def backward(ctx, grad_y):
        return index_add(grad_y, ctx.index, ctx.shape)


class IndexAdd(Function):
    """y = zeros(shape) with x added at ``index``;   dx = dy[index]   (GetItem's adjoint)"""

    @staticmethod
    def forward(ctx, x, index, shape):
        ctx.index = index
        return index_add(x, index, shape)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y[ctx.index]


def broadcast_to(x, shape):
    """np.broadcast_to for an array (a free view), the BroadcastTo op for a Tensor."""
    if isinstance(x, np.ndarray):
        return np.broadcast_to(x, shape)
    return BroadcastTo.apply(x, shape=shape)


def index_add(values, index, shape):
    """zeros(shape) with ``values`` added at ``index``; the IndexAdd op for a Tensor."""
    if not isinstance(values, np.ndarray):
        return IndexAdd.apply(values, index=index, shape=shape)
    out = np.zeros(shape, dtype=values.dtype)
    if _is_basic(index):
        out[index] = values            # slices and ints never repeat an entry
    else:
        np.add.at(out, index, values)  # integer arrays may repeat: accumulate
    return out


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in parts)
