"""The hand-written numpy baseline for convolution: forward and backward with no autograd at all.

What a competent person writes by hand, cs231n style (``conv_forward_im2col`` /
``conv_backward_im2col``): np.pad, im2col by sliding windows into one (C·K, P·N) matrix (samples
innermost, as cs231n's im2col), one matmul, the output a transposed view of it; backward: db summed
over the axes, two matmuls, col2im by a loop over the kernel offsets into a zeroed padded array.
Any number of spatial axes, so 1-D and 2-D share it. tests/benchmarks/test_conv_baseline.py checks it
against minigrad before any benchmark may use it.
"""
import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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
