"""Pooling over windows of n spatial axes (1-D and 2-D share every line): max and average.

MaxPool sends each window's gradient to one element, its first maximum in row-major window order
(PyTorch's choice on ties); it saves those positions as flat indices into x, which are piecewise
constant in x, and scatters with ``index_add`` (ops/shape.py), itself differentiable. AvgPool is
linear: AvgPool and AvgPoolTranspose are each other's backward. Windows, padding and col2im
come from ops/conv.py. Ops see only arrays: this file never imports Tensor.
"""
import math

import numpy as np

from ..autograd.function import Function
from .conv import batch_first, col2im, pad, windows
from .shape import index_add


class MaxPool(Function):
    """y = max of each window of x padded with -inf;   dx = dy added at each window's first maximum
    (overlapping windows that share a maximum add up)"""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        win = windows(pad(x, padding, -np.inf), kernel, stride, (1,) * len(kernel))  # (N, C, *out, *K)
        # A loop over the K kernel offsets, each a strided (N, C, *out) view: a running maximum and
        # the offset it came from. Strictly greater wins, so a tie keeps the first maximum in
        # row-major window order (PyTorch's choice); a NaN wins once and stays (it propagates).
        # y and the offsets keep the windows' memory layout (batch-innermost for a conv's output),
        # and every update is branch-free arithmetic: masked writes with a random mask, and
        # elementwise ops over arrays of mixed layouts, cost several times more.
        y, offsets = None, None                        # offsets: the maximum's offset along each axis
        for offset in np.ndindex(*kernel):
            v = win[(..., *offset)]                    # (N, C, *out), a strided view
            if y is None:
                y = v.copy(order="K")
                offsets = [np.zeros_like(y, dtype=np.int16) for _ in kernel]
                continue
            better = ((v > y) | (np.isnan(v) & ~np.isnan(y))).view(np.int8)   # 1 where v takes over
            np.maximum(y, v, out=y)                    # (NaN propagates, as the offsets say)
            for a, k in zip(offsets, offset):
                a += better * (np.int16(k) - a)        # a = k where better, else unchanged
        ctx.save_for_backward(argmax_index(offsets, x.shape, stride, padding))
        ctx.shape = x.shape
        return y

    # Derivation. Away from ties y = x[m(window)], a selection, so dx = dy scattered to m:
    # dx[m] = Σ of dy over the windows whose maximum is at m. The positions m are constant
    # between ties, so under create_graph they stay a constant index (an integer array, which
    # Context.differentiable leaves as it is) and index_add records.
    @staticmethod
    def backward(ctx, grad_y):
        (index,) = ctx.saved_tensors
        n, c, *size = ctx.shape
        # (N, C, *out) -> (N·C·P,) added into x's N·C·prod(S) positions, which argmax_index numbers
        # batch-innermost, as (C, *S, N): the gradient then has the layout of the conv outputs it
        # meets next (ReLU's and batch norm's backward), and this is a view, not a copy
        flat = index_add(grad_y.reshape(-1), index, (math.prod(ctx.shape),))
        return batch_first(flat.reshape(c, *size, n))


def argmax_index(offsets, shape, stride, padding):
    """Each window's maximum as a flat index into x (N, C, *S) stored batch-innermost, (C, *S, N),
    from its offset along each spatial axis (``offsets[i]``: (N, C, *out)): -> (N·C·P,).

    Along spatial axis i the position is s·o + a - p (o: the window, a: the offset, p: the padding).
    A window whose real entries are all -inf peaks at offset 0, which may be padding: raising it to
    0 moves it to the window's first real entry, which is where PyTorch puts it. No position is
    past the end: a window starts at most at S + p - k ≤ S - 1 (p ≤ k/2), and padding never takes
    over from an earlier entry (the running max replaces only on >)."""
    n, c, *size = shape
    d = len(size)
    index = np.arange(c).reshape(1, -1, *[1] * d) * math.prod(size)          # c: (1, C, 1, ...)
    for i, a in enumerate(offsets):
        o = np.arange(a.shape[2 + i]).reshape(-1, *[1] * (d - 1 - i))        # window index along axis i
        position = a + (stride[i] * o - padding[i])
        if padding[i]:
            position = np.maximum(position, 0)
        index = index + position * math.prod(size[i + 1:])                  # (N, C, *out)
    # (C, *S) offset, then times N and plus n: the batch-innermost flat index
    return (index * n + np.arange(n).reshape(-1, 1, *[1] * d)).reshape(-1)


class AvgPool(Function):
    """y = mean of each window of x padded with zeros (padding counts in the divisor K = prod(kernel));
    dx = avg_pool_transpose(dy)"""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.size, ctx.kernel, ctx.stride, ctx.padding = x.shape[2:], kernel, stride, padding
        return avg_pool_forward(x, kernel, stride, padding)

    # Derivation. y = A x with A's row for a window holding 1/K at each of its K positions:
    # dx = Aᵀ dy adds dy/K to every position of its window (AvgPoolTranspose), padding cropped.
    @staticmethod
    def backward(ctx, grad_y):
        return avg_pool_transpose(grad_y, ctx.size, ctx.kernel, ctx.stride, ctx.padding)


class AvgPoolTranspose(Function):
    """y = Aᵀ x, avg_pool's adjoint: x/K added to every position of its window, padding cropped
    (x: (N, C, *out) -> y: (N, C, *size));   dx = avg_pool(dy)"""

    @staticmethod
    def forward(ctx, x, size, kernel, stride, padding):
        ctx.kernel, ctx.stride, ctx.padding = kernel, stride, padding
        return avg_pool_transpose_forward(x, size, kernel, stride, padding)

    # Derivation. The adjoint of Aᵀ is A: dx = avg_pool(dy).
    @staticmethod
    def backward(ctx, grad_y):
        return avg_pool(grad_y, ctx.kernel, ctx.stride, ctx.padding)


def avg_pool_forward(x, kernel, stride, padding):
    d = len(kernel)
    win = windows(pad(x, padding), kernel, stride, (1,) * d)    # (N, C, *out, *K), a view
    return win.mean(axis=tuple(range(-d, 0)))                   # (N, C, *out, *K) -> (N, C, *out)


def avg_pool_transpose_forward(x, size, kernel, stride, padding):
    d = len(kernel)
    share = (x / math.prod(kernel)).reshape(*x.shape, *[1] * d)          # (N, C, *out, 1, ...)
    cols = np.broadcast_to(share, (*x.shape, *kernel))                  # (N, C, *out, *K), a view
    return col2im(cols, size, kernel, stride, padding, (1,) * d)


# --------------------------------------------------------------------------- array or Tensor
def avg_pool(x, kernel, stride, padding):
    """avg_pool: the kernel on arrays, the AvgPool op on Tensors (create_graph)."""
    if isinstance(x, np.ndarray):
        return avg_pool_forward(x, kernel, stride, padding)
    return AvgPool.apply(x, kernel=kernel, stride=stride, padding=padding)


def avg_pool_transpose(x, size, kernel, stride, padding):
    """avg_pool's adjoint to spatial ``size``: the kernel on arrays, the AvgPoolTranspose op on Tensors."""
    if isinstance(x, np.ndarray):
        return avg_pool_transpose_forward(x, size, kernel, stride, padding)
    return AvgPoolTranspose.apply(x, size=tuple(size), kernel=kernel, stride=stride, padding=padding)
