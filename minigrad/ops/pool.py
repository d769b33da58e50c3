"""Pooling over windows of n spatial axes (1-D and 2-D share every line): max and average.

MaxPool sends each window's gradient to one element, its maximum (PyTorch's choice on ties and
NaNs, below); it saves those positions as flat indices into x, which are piecewise constant in x,
and scatters with ``index_add`` (ops/shape.py), itself differentiable. AvgPool is linear: AvgPool
and AvgPoolTranspose are each other's backward. Windows, (before, after) padding pairs and col2im
come from ops/windows.py. Arrays only: this file never imports Tensor.
"""
import math

import numpy as np

from ..autograd.function import Function
from .shape import index_add
from .windows import batch_first, col2im, pad, windows


class MaxPool(Function):
    """y = max of each (dilated) window of x padded with -inf;   dx = dy added at each window's
    maximum (overlapping windows that share a maximum add up)"""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation):
        win = windows(pad(x, padding, -np.inf), kernel, stride, dilation)   # (N, C, *out, *K)
        # A loop over the K kernel offsets, each a strided (N, C, *out) view: a running maximum and
        # the offset it came from. PyTorch's rule: an entry takes over if it is greater, or NaN. So
        # a tie keeps the first maximum in row-major window order, a NaN wins and propagates, and
        # of several NaNs the last wins.
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
            better = ((v > y) | np.isnan(v)).view(np.int8)     # 1 where v takes over
            np.maximum(y, v, out=y)                    # (NaN propagates, as the offsets say)
            for a, k in zip(offsets, offset):
                a += better * (np.int16(k) - a)        # a = k where better, else unchanged
        ctx.save_for_backward(argmax_index(offsets, x.shape, stride, padding, dilation))
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


def argmax_index(offsets, shape, stride, padding, dilation):
    """Each window's maximum as a flat index into x (N, C, *S) stored batch-innermost, (C, *S, N),
    from its offset along each spatial axis (``offsets[i]``: (N, C, *out)): -> (N·C·P,).

    Along spatial axis i the position is s·o + d·a - p (o: the window, a: the offset, p: the
    padding before). A window whose real entries are all -inf peaks at offset 0, which may be
    padding (a negative position): it moves to the window's first real entry, position mod d,
    which is where PyTorch puts it. No position is past the end: a window starts before the end
    of x (ceil_mode's rule), and padding never takes over from an earlier entry; the functionals
    refuse the one exception, a dilated window that holds only padding."""
    n, c, *size = shape
    d = len(size)
    index = np.arange(c).reshape(1, -1, *[1] * d) * math.prod(size)          # c: (1, C, 1, ...)
    for i, a in enumerate(offsets):
        o = np.arange(a.shape[2 + i]).reshape(-1, *[1] * (d - 1 - i))        # window index along axis i
        position = dilation[i] * a + (stride[i] * o - padding[i][0])
        if padding[i][0]:
            position = np.maximum(position, position % dilation[i])          # negative -> its first real entry
        index = index + position * math.prod(size[i + 1:])                  # (N, C, *out)
    # (C, *S) offset, then times N and plus n: the batch-innermost flat index
    return (index * n + np.arange(n).reshape(-1, 1, *[1] * d)).reshape(-1)


class AvgPool(Function):
    """y = Σ of each window of x padded with zeros, / its divisor (a number, or one per window:
    ``avg_pool_divisor``);   dx = avg_pool_transpose(dy)"""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, divisor):
        ctx.size, ctx.kernel, ctx.stride, ctx.padding, ctx.divisor = x.shape[2:], kernel, stride, padding, divisor
        return avg_pool_forward(x, kernel, stride, padding, divisor)

    # Derivation. y = A x with A's row for a window holding 1/D at each of its K positions (D: its
    # divisor): dx = Aᵀ dy adds dy/D to every position of its window (AvgPoolTranspose), padding cropped.
    @staticmethod
    def backward(ctx, grad_y):
        return avg_pool_transpose(grad_y, ctx.size, ctx.kernel, ctx.stride, ctx.padding, ctx.divisor)


class AvgPoolTranspose(Function):
    """y = Aᵀ x, avg_pool's adjoint: x/D added to every position of its window, padding cropped
    (x: (N, C, *out) -> y: (N, C, *size));   dx = avg_pool(dy)"""

    @staticmethod
    def forward(ctx, x, size, kernel, stride, padding, divisor):
        ctx.kernel, ctx.stride, ctx.padding, ctx.divisor = kernel, stride, padding, divisor
        return avg_pool_transpose_forward(x, size, kernel, stride, padding, divisor)

    # Derivation. The adjoint of Aᵀ is A: dx = avg_pool(dy).
    @staticmethod
    def backward(ctx, grad_y):
        return avg_pool(grad_y, ctx.kernel, ctx.stride, ctx.padding, ctx.divisor)


def avg_pool_forward(x, kernel, stride, padding, divisor):
    d = len(kernel)
    win = windows(pad(x, padding), kernel, stride, (1,) * d)    # (N, C, *out, *K), a view
    total = win.sum(axis=tuple(range(-d, 0)))                   # (N, C, *out, *K) -> (N, C, *out)
    total /= divisor                                            # in place: x's dtype stays
    return total


def avg_pool_transpose_forward(x, size, kernel, stride, padding, divisor):
    d = len(kernel)
    share = np.divide(x, divisor, dtype=x.dtype).reshape(*x.shape, *[1] * d)   # (N, C, *out, 1, ...)
    cols = np.broadcast_to(share, (*x.shape, *kernel))                  # (N, C, *out, *K), a view
    return col2im(cols, size, kernel, stride, padding, (1,) * d)


def avg_pool_divisor(size, kernel, stride, padding, count_include_pad):
    """Each window's divisor, PyTorch's rule: how many of its positions lie inside x padded with
    ``before`` on both sides (count_include_pad), or inside x alone. ``padding``: (before, after)
    pairs, where ``after`` may also hold ceil_mode's extra, which never counts.
    -> prod(kernel) (an int) when every window has all of its K positions counted, else an array
    of shape out, one float per window."""
    divisor = np.ones(())
    for n, k, s, (lo, hi) in zip(size, kernel, stride, padding):
        start = s * np.arange((n + lo + hi - k) // s + 1) - lo      # each window's first position in x
        edge = lo if count_include_pad else 0
        length = np.minimum(start + k, n + edge) - np.maximum(start, -edge)
        divisor = np.multiply.outer(divisor, length)                # (*out so far, out_i)
    return math.prod(kernel) if (divisor == math.prod(kernel)).all() else divisor


# --------------------------------------------------------------------------- array or Tensor
def avg_pool(x, kernel, stride, padding, divisor):
    """avg_pool: the kernel on arrays, the AvgPool op on Tensors (create_graph)."""
    if isinstance(x, np.ndarray):
        return avg_pool_forward(x, kernel, stride, padding, divisor)
    return AvgPool.apply(x, kernel=kernel, stride=stride, padding=padding, divisor=divisor)


def avg_pool_transpose(x, size, kernel, stride, padding, divisor):
    """avg_pool's adjoint to spatial ``size``: the kernel on arrays, the AvgPoolTranspose op on Tensors."""
    if isinstance(x, np.ndarray):
        return avg_pool_transpose_forward(x, size, kernel, stride, padding, divisor)
    return AvgPoolTranspose.apply(x, size=tuple(size), kernel=kernel, stride=stride, padding=padding,
                                  divisor=divisor)
