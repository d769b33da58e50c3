"""Convolution over n spatial axes (1-D and 2-D share every line) as three bilinear ops.

``Conv`` is y = conv(x, w) + b; ``ConvTranspose`` (dx = conv_transpose(dy, w)) is its adjoint in x
and ``ConvWeight`` (dw = conv_weight(x, dy)) its adjoint in w. Each backward is made of the other
two, through the helpers at the bottom (numpy kernels on arrays, the ops on Tensors), so gradients
of every order exist. Ops see only arrays: this file never imports Tensor.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd.function import Function


def out_size(size, kernel, stride, padding, dilation):
    """Output length per spatial axis: floor((L + 2p - d(k - 1) - 1) / s) + 1."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))


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
    return (slice(None), slice(None)) + tuple(slice(p, p + n) for n, p in zip(size, padding))


def pad(x, padding, value=0.0):
    """x (N, C, *S) with ``padding[i]`` entries of ``value`` on both sides of spatial axis i."""
    if not any(padding):
        return x
    n, c, size = x.shape[0], x.shape[1], x.shape[2:]
    padded = np.full((c, *(m + 2 * p for m, p in zip(size, padding)), n), value, dtype=x.dtype)
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

    Row (c, k) is channel c at kernel offset k; column (p, n) is window p of sample n.
    Returns the matrix and the output size ``out``."""
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
    padded = np.zeros((c, *(m + 2 * p for m, p in zip(size, padding)), n), dtype=cols.dtype)
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


# --------------------------------------------------------------------------- numpy kernels
def conv_forward(x, weight, bias, stride, padding, dilation):
    """conv(x, w) + b on arrays; also returns the im2col matrix (what dw needs)."""
    cols, out = im2col(x, weight.shape[2:], stride, padding, dilation)      # (C·K, P·N)
    y = weight.reshape(weight.shape[0], -1) @ cols          # (C_out, C·K) @ (C·K, P·N)
    if bias is not None:
        y += bias[:, None]                                  # (C_out,) -> (C_out, 1)
    return from_matrix(y, x.shape[0], out), cols


def conv_transpose_forward(x, weight, size, stride, padding, dilation):
    """conv_transpose(x, w) on arrays: x (N, C_out, *out) -> (N, C_in, *size)."""
    n, out, (c, *kernel) = x.shape[0], x.shape[2:], weight.shape[1:]
    d = len(kernel)
    cols = weight.reshape(weight.shape[0], -1).T @ to_matrix(x)     # (C·K, C_out) @ (C_out, P·N)
    # (C·K, P·N) -> (C, *K, *out, N) -> (N, C, *out, *K), a view
    cols = cols.reshape(c, *kernel, *out, n)
    cols = cols.transpose(1 + 2 * d, 0, *range(1 + d, 1 + 2 * d), *range(1, 1 + d))
    return col2im(cols, size, kernel, stride, padding, dilation)


def conv_weight_forward(x, g, kernel, stride, padding, dilation, cols=None):
    """conv_weight(x, g) on arrays: x (N, C_in, *size), g (N, C_out, *out) -> (C_out, C_in, *K)."""
    if cols is None:
        cols, _ = im2col(x, kernel, stride, padding, dilation)     # (C·K, P·N)
    grad = to_matrix(g) @ cols.T                            # (C_out, P·N) @ (P·N, C·K)
    return grad.reshape(g.shape[1], x.shape[1], *kernel)    # (C_out, C·K) -> (C_out, C_in, *K)


# --------------------------------------------------------------------------- the ops
class Conv(Function):
    """y[n,o,l] = Σ_c,k w[o,c,k] · x_pad[n,c,s·l + d·k] + b[o]   (l, k: tuples over the spatial axes);
    dx = conv_transpose(dy, w),  dw = conv_weight(x, dy),  db[o] = Σ_n,l dy[n,o,l]"""

    saves_constants = True   # cols, a cache of im2col(x) that the Tensor path (create_graph) never reads

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        y, cols = conv_forward(x, weight, bias, stride, padding, dilation)
        # cols is a cache for dw on arrays (None when w needs no gradient); under create_graph
        # conv_weight rebuilds it from x, so second derivatives flow through x
        ctx.save_for_backward(x, weight, cols if ctx.needs_input_grad[1] else None)
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        return y

    # Derivation. For fixed w, y is linear in x: y = A_w x, so dx = A_wᵀ dy. Entry x_pad[n,c,s·l + d·k]
    # was read by window l with weight w[o,c,k] for every o, so dx_pad[n,c,s·l + d·k] gets
    # Σ_o w[o,c,k] dy[n,o,l], summed over every (l, k) that reads it: the transposed convolution
    # of dy with w (ConvTranspose), with the padding cropped. For fixed x, y is linear in w:
    # ∂y[n,o,l]/∂w[o,c,k] = x_pad[n,c,s·l + d·k], so dw[o,c,k] = Σ_n,l dy[n,o,l] x_pad[n,c,s·l + d·k],
    # x correlated with dy (ConvWeight). Both are again ops of this file, so this backward runs on
    # Tensors too (create_graph) and its own derivative is made of the same three ops.
    @staticmethod
    def backward(ctx, grad_y):
        x, weight, cols = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_y = batch_innermost(grad_y)     # at most one copy, then every to_matrix below is free
        geometry = ctx.stride, ctx.padding, ctx.dilation
        grad_x = conv_transpose(grad_y, weight, x.shape[2:], *geometry) if need_x else None
        grad_w = conv_weight(x, grad_y, weight.shape[2:], *geometry, cols=cols) if need_w else None
        grad_b = channel_sum(grad_y) if need_b else None
        return grad_x, grad_w, grad_b


class ConvTranspose(Function):
    """y = conv_transpose(x, w) = A_wᵀ x, conv's adjoint in its input
    (x: (N, C_out, *out) -> y: (N, C_in, *size));   dx = conv(dy, w),  dw = conv_weight(dy, x)"""

    @staticmethod
    def forward(ctx, x, weight, size, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        return conv_transpose_forward(x, weight, size, stride, padding, dilation)

    # Derivation. <dy, A_wᵀ x> = <A_w dy, x>: in x the adjoint of A_wᵀ is A_w, dx = conv(dy, w).
    # In w, <x, conv(dy, w)> is linear with ∂/∂w[o,c,k] = Σ_n,l x[n,o,l] dy_pad[n,c,s·l + d·k],
    # which is conv_weight with dy in the input's place and x in the output's: dw = conv_weight(dy, x).
    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        geometry = ctx.stride, ctx.padding, ctx.dilation
        grad_x = conv(grad_y, weight, None, *geometry) if ctx.needs_input_grad[0] else None
        grad_w = conv_weight(grad_y, x, weight.shape[2:], *geometry) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


class ConvWeight(Function):
    """y[o,c,k] = Σ_n,l g[n,o,l] · x_pad[n,c,s·l + d·k], conv's adjoint in its weight
    (x: (N, C_in, *size), g: (N, C_out, *out) -> y: (C_out, C_in, *kernel));
    dx = conv_transpose(g, dy),  dg = conv(x, dy)"""

    @staticmethod
    def forward(ctx, x, g, kernel, stride, padding, dilation):
        ctx.save_for_backward(x, g)
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        return conv_weight_forward(x, g, kernel, stride, padding, dilation)

    # Derivation. By construction <dy, conv_weight(x, g)> = <g, conv(x, dy)>: dy plays the weight.
    # In g that is linear with gradient conv(x, dy); in x it is <conv_transpose(g, dy), x>, so
    # dx = conv_transpose(g, dy).
    @staticmethod
    def backward(ctx, grad_y):
        x, g = ctx.saved_tensors
        geometry = ctx.stride, ctx.padding, ctx.dilation
        grad_x = conv_transpose(g, grad_y, x.shape[2:], *geometry) if ctx.needs_input_grad[0] else None
        grad_g = conv(x, grad_y, None, *geometry) if ctx.needs_input_grad[1] else None
        return grad_x, grad_g


# --------------------------------------------------------------------------- array or Tensor
# Each backward above calls these: on arrays (the fast path) the numpy kernel, on Tensors
# (create_graph) the op, so the backward pass is recorded and can be differentiated again.

def conv(x, weight, bias, stride, padding, dilation):
    """conv(x, w) + b: the kernel on arrays, the Conv op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(weight, np.ndarray):
        return conv_forward(x, weight, bias, stride, padding, dilation)[0]
    return Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def conv_transpose(x, weight, size, stride, padding, dilation):
    """conv_transpose(x, w) to spatial ``size``: the kernel on arrays, the ConvTranspose op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(weight, np.ndarray):
        return conv_transpose_forward(x, weight, size, stride, padding, dilation)
    return ConvTranspose.apply(x, weight, size=tuple(size), stride=stride, padding=padding, dilation=dilation)


def conv_weight(x, g, kernel, stride, padding, dilation, cols=None):
    """conv_weight(x, g): the kernel on arrays (reusing ``cols`` = im2col(x) if given), the op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(g, np.ndarray):
        return conv_weight_forward(x, g, kernel, stride, padding, dilation, cols)
    return ConvWeight.apply(x, g, kernel=tuple(kernel), stride=stride, padding=padding, dilation=dilation)


def channel_sum(g):
    """Σ over N and every position: (N, C, *out) -> (C,)."""
    if isinstance(g, np.ndarray):
        return to_matrix(g).sum(axis=1)          # (C, P·N) -> (C,): contiguous rows, one pass
    return g.sum(axis=(0, *range(2, g.ndim)))
