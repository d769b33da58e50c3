"""Windows over n spatial axes, shared by convolution (ops/conv.py) and pooling (ops/pool.py).

Padding, every window as a strided view, im2col and its adjoint col2im, and the batch-innermost
memory layout they keep. ``padding`` is always a (before, after) pair per spatial axis: the
functionals turn PyTorch's ints, "same" and ceil_mode into pairs. Arrays only, no Tensor.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Memory layout. Shapes are PyTorch's, (N, C, *spatial), but the arrays made here are stored
# batch-innermost, as (C, *spatial, N) (cs231n's im2col does the same): numpy's strided copies and
# adds cost a fixed amount per row of the innermost axis, and on small images N is the long axis.
# A conv output fed to the next conv is then read in the order it was written. Results are views
# with the usual shapes; only their strides differ from a C-ordered array.


def batch_first(a):
    """(C, *S, N) -> (N, C, *S), a view (a transpose: np.moveaxis costs several µs per call)."""
    return a.transpose(a.ndim - 1, *range(a.ndim - 1))


def batch_last(a):
    """(N, C, *S) -> (C, *S, N), a view."""
    return a.transpose(*range(1, a.ndim), 0)


def batch_innermost(y):
    """An array stored as (C, *S, N), copied only if it is not; a Tensor passes unchanged."""
    if isinstance(y, np.ndarray):
        return batch_first(np.ascontiguousarray(batch_last(y)))
    return y


def interior(size, padding):
    """The index of the unpadded region in a padded (N, C, *padded) array."""
    return (slice(None), slice(None)) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, padding))


def pad(x, padding, value=0.0):
    """x (N, C, *S) with ``padding[i] = (before, after)`` entries of ``value`` around spatial axis i."""
    if not any(lo or hi for lo, hi in padding):
        return x
    n, c, size = x.shape[0], x.shape[1], x.shape[2:]
    padded = np.full((c, *(m + lo + hi for m, (lo, hi) in zip(size, padding)), n), value, dtype=x.dtype)
    padded = batch_first(padded)                 # stored (C, *Sp, N) -> (N, C, *Sp), a view
    padded[interior(size, padding)] = x
    return padded


def windows(padded, kernel, stride, dilation):
    """Every window as a view, no copy: (N, C, *Sp) -> (N, C, *out, *kernel).

    Window o along axis i reads the positions s·o + d·k, k = 0 .. kernel-1."""
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(padded, spans, axis=tuple(range(2, padded.ndim)))  # (N, C, *, *spans)
    return view[(..., *(slice(None, None, s) for s in stride), *(slice(None, None, d) for d in dilation))]


def im2col(x, kernel, stride, padding, dilation):
    """conv's input as one matrix: (N, C, *S) -> (C·K, P·N), K = prod(kernel), P = prod(out).

    Row (c, k) is channel c at kernel offset k (so the rows of a group of channels are one
    block); column (p, n) is window p of sample n. Returns the matrix and the output size ``out``."""
    win = windows(pad(x, padding), kernel, stride, dilation)     # (N, C, *out, *K), a view
    d = len(kernel)
    # (N, C, *out, *K) -> (C, *K, *out, N) -> (C·K, P·N): the one copy, batch innermost
    cols = win.transpose(1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d), 0)
    out = win.shape[2:2 + d]
    return cols.reshape(x.shape[1] * math.prod(kernel), math.prod(out) * x.shape[0]), out


def col2im(cols, size, kernel, stride, padding, dilation):
    """The adjoint of windows(pad(x)): every window entry added back where it was read from, the
    padding cropped. cols: (N, C, *out, *K), any strides -> (N, C, *size), a view."""
    n, c, out = cols.shape[0], cols.shape[1], cols.shape[2:2 + len(kernel)]
    padded = np.zeros((c, *(m + lo + hi for m, (lo, hi) in zip(size, padding)), n), dtype=cols.dtype)
    padded = batch_first(padded)                 # stored (C, *Sp, N) -> (N, C, *Sp), a view
    for offset in np.ndindex(*kernel):           # a loop over kernel offsets, not positions
        window = tuple(slice(d * k, d * k + s * (m - 1) + 1, s)
                       for k, s, d, m in zip(offset, stride, dilation, out))
        padded[(..., *window)] += cols[(..., *offset)]   # (N, C, *out) to positions s·o + d·k
    return padded[interior(size, padding)]


def to_matrix(y):
    """(N, C, *out) -> (C, P·N); free for arrays stored batch-innermost (those made here)."""
    return batch_last(y).reshape(y.shape[1], math.prod(y.shape[2:]) * y.shape[0])


def from_matrix(y, n, out):
    """(C, P·N) -> (N, C, *out), a view."""
    return batch_first(y.reshape(y.shape[0], *out, n))
