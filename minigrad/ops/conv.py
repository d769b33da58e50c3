"""Convolution over n spatial axes (1-D and 2-D share every line) as three bilinear ops.

``Conv`` is y = conv(x, w) + b; ``ConvTranspose`` (dx = conv_transpose(dy, w)) is its adjoint in x
and ``ConvWeight`` (dw = conv_weight(x, dy)) its adjoint in w. Each backward is made of the other
two, through the helpers at the bottom (numpy kernels on arrays, the ops on Tensors), so gradients
of every order exist. With ``groups`` = G the channels split into G blocks convolved apart (one
batched matmul). Windows and padding come from ops/windows.py. Arrays only: no Tensor here.
"""
import numpy as np

from ..autograd.function import Function
from .windows import batch_innermost, col2im, from_matrix, im2col, to_matrix


def by_group(m, groups):
    """A matrix whose rows come in ``groups`` blocks, as a stack: (R, M) -> (G, R/G, M), a view."""
    return m.reshape(groups, m.shape[0] // groups, m.shape[1])


# --------------------------------------------------------------------------- numpy kernels
# Shapes: x (N, C_in, *size), w (C_out, C_in/G, *K), y (N, C_out, *out); group g is input channels
# g·C_in/G .. and output channels g·C_out/G .. . In the matrices below a group is one block of rows.

def conv_forward(x, weight, bias, stride, padding, dilation, groups):
    """conv(x, w) + b on arrays; also returns the im2col matrix (what dw needs)."""
    cols, out = im2col(x, weight.shape[2:], stride, padding, dilation)      # (C_in·K, P·N)
    w = by_group(weight.reshape(weight.shape[0], -1), groups)               # (G, C_out/G, C_in/G·K)
    y = (w @ by_group(cols, groups)).reshape(weight.shape[0], -1)           # (G, C_out/G, P·N) -> (C_out, P·N)
    if bias is not None:
        y += bias[:, None]                                                  # (C_out,) -> (C_out, 1)
    return from_matrix(y, x.shape[0], out), cols


def conv_transpose_forward(x, weight, size, stride, padding, dilation, groups):
    """conv_transpose(x, w) on arrays: x (N, C_out, *out) -> (N, C_in, *size)."""
    n, out, kernel = x.shape[0], x.shape[2:], weight.shape[2:]
    c, d = groups * weight.shape[1], len(kernel)
    w = by_group(weight.reshape(weight.shape[0], -1), groups)               # (G, C_out/G, C_in/G·K)
    cols = w.transpose(0, 2, 1) @ by_group(to_matrix(x), groups)            # (G, C_in/G·K, P·N)
    # (G, C_in/G·K, P·N) -> (C_in, *K, *out, N) -> (N, C_in, *out, *K), a view
    cols = cols.reshape(c, *kernel, *out, n)
    cols = cols.transpose(1 + 2 * d, 0, *range(1 + d, 1 + 2 * d), *range(1, 1 + d))
    return col2im(cols, size, kernel, stride, padding, dilation)


def conv_weight_forward(x, g, kernel, stride, padding, dilation, groups, cols=None):
    """conv_weight(x, g) on arrays: x (N, C_in, *size), g (N, C_out, *out) -> (C_out, C_in/G, *K)."""
    if cols is None:
        cols, _ = im2col(x, kernel, stride, padding, dilation)             # (C_in·K, P·N)
    cols = by_group(cols, groups).transpose(0, 2, 1)                        # (G, P·N, C_in/G·K)
    grad = by_group(to_matrix(g), groups) @ cols                            # (G, C_out/G, C_in/G·K)
    return grad.reshape(g.shape[1], x.shape[1] // groups, *kernel)


# --------------------------------------------------------------------------- the ops
class Conv(Function):
    """y[n,o,l] = Σ_c,k w[o,c,k] · x_pad[n,c,s·l + d·k] + b[o]   (l, k: tuples over the spatial axes;
    c over the input channels of o's group);  dx = conv_transpose(dy, w),  dw = conv_weight(x, dy),
    db[o] = Σ_n,l dy[n,o,l]"""

    saves_constants = True   # cols, a cache of im2col(x) that the Tensor path (create_graph) never reads

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        y, cols = conv_forward(x, weight, bias, stride, padding, dilation, groups)
        # cols is a cache for dw on arrays (None when w needs no gradient); under create_graph
        # conv_weight rebuilds it from x, so second derivatives flow through x
        ctx.save_for_backward(x, weight, cols if ctx.needs_input_grad[1] else None)
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return y

    @staticmethod
    def rebuild_saved(ctx, saved):
        """create_graph: no im2col cache (conv_weight on Tensors rebuilds it from x, differentiably)."""
        x, weight, _ = saved
        return x, weight, None

    # Derivation. For fixed w, y is linear in x: y = A_w x, so dx = A_wᵀ dy. Entry x_pad[n,c,s·l + d·k]
    # was read by window l with weight w[o,c,k] for every o of c's group, so dx_pad[n,c,s·l + d·k]
    # gets Σ_o w[o,c,k] dy[n,o,l], summed over every (l, k) that reads it: the transposed
    # convolution of dy with w (ConvTranspose), with the padding cropped. For fixed x, y is linear in
    # w: ∂y[n,o,l]/∂w[o,c,k] = x_pad[n,c,s·l + d·k], so dw[o,c,k] = Σ_n,l dy[n,o,l] x_pad[n,c,s·l + d·k],
    # x correlated with dy (ConvWeight). Groups never mix, so each adjoint keeps the same groups.
    # Both are again ops of this file, so this backward runs on Tensors too (create_graph) and its
    # own derivative is made of the same three ops.
    @staticmethod
    def backward(ctx, grad_y):
        x, weight, cols = ctx.saved_tensors
        geometry = ctx.stride, ctx.padding, ctx.dilation, ctx.groups
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_y = batch_innermost(grad_y)     # at most one copy, then every to_matrix below is free
        grad_x = conv_transpose(grad_y, weight, x.shape[2:], *geometry) if need_x else None
        grad_w = conv_weight(x, grad_y, weight.shape[2:], *geometry, cols=cols) if need_w else None
        grad_b = channel_sum(grad_y) if need_b else None
        return grad_x, grad_w, grad_b


class ConvTranspose(Function):
    """y = conv_transpose(x, w) = A_wᵀ x, conv's adjoint in its input
    (x: (N, C_out, *out) -> y: (N, C_in, *size));   dx = conv(dy, w),  dw = conv_weight(dy, x)"""

    @staticmethod
    def forward(ctx, x, weight, size, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return conv_transpose_forward(x, weight, size, stride, padding, dilation, groups)

    # Derivation. <dy, A_wᵀ x> = <A_w dy, x>: in x the adjoint of A_wᵀ is A_w, dx = conv(dy, w).
    # In w, <x, conv(dy, w)> is linear with ∂/∂w[o,c,k] = Σ_n,l x[n,o,l] dy_pad[n,c,s·l + d·k],
    # which is conv_weight with dy in the input's place and x in the output's: dw = conv_weight(dy, x).
    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        geometry = ctx.stride, ctx.padding, ctx.dilation, ctx.groups
        need_x, need_w = ctx.needs_input_grad
        grad_x = conv(grad_y, weight, None, *geometry) if need_x else None
        grad_w = conv_weight(grad_y, x, weight.shape[2:], *geometry) if need_w else None
        return grad_x, grad_w


class ConvWeight(Function):
    """y[o,c,k] = Σ_n,l g[n,o,l] · x_pad[n,c,s·l + d·k], conv's adjoint in its weight (c over the
    input channels of o's group; x: (N, C_in, *size), g: (N, C_out, *out) -> y: (C_out, C_in/G, *K));
    dx = conv_transpose(g, dy),  dg = conv(x, dy)"""

    @staticmethod
    def forward(ctx, x, g, kernel, stride, padding, dilation, groups):
        ctx.save_for_backward(x, g)
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return conv_weight_forward(x, g, kernel, stride, padding, dilation, groups)

    # Derivation. By construction <dy, conv_weight(x, g)> = <g, conv(x, dy)>: dy plays the weight.
    # In g that is linear with gradient conv(x, dy); in x it is <conv_transpose(g, dy), x>, so
    # dx = conv_transpose(g, dy).
    @staticmethod
    def backward(ctx, grad_y):
        x, g = ctx.saved_tensors
        geometry = ctx.stride, ctx.padding, ctx.dilation, ctx.groups
        need_x, need_g = ctx.needs_input_grad
        grad_x = conv_transpose(g, grad_y, x.shape[2:], *geometry) if need_x else None
        grad_g = conv(x, grad_y, None, *geometry) if need_g else None
        return grad_x, grad_g


# --------------------------------------------------------------------------- array or Tensor
# Each backward above calls these: on arrays (the fast path) the numpy kernel, on Tensors
# (create_graph) the op, so the backward pass is recorded and can be differentiated again.

def conv(x, weight, bias, stride, padding, dilation, groups):
    """conv(x, w) + b: the kernel on arrays, the Conv op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(weight, np.ndarray):
        return conv_forward(x, weight, bias, stride, padding, dilation, groups)[0]
    return Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_transpose(x, weight, size, stride, padding, dilation, groups):
    """conv_transpose(x, w) to spatial ``size``: the kernel on arrays, the ConvTranspose op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(weight, np.ndarray):
        return conv_transpose_forward(x, weight, size, stride, padding, dilation, groups)
    return ConvTranspose.apply(x, weight, size=tuple(size), stride=stride, padding=padding,
                               dilation=dilation, groups=groups)


def conv_weight(x, g, kernel, stride, padding, dilation, groups, cols=None):
    """conv_weight(x, g): the kernel on arrays (reusing ``cols`` = im2col(x) if given), the op otherwise."""
    if isinstance(x, np.ndarray) and isinstance(g, np.ndarray):
        return conv_weight_forward(x, g, kernel, stride, padding, dilation, groups, cols)
    return ConvWeight.apply(x, g, kernel=tuple(kernel), stride=stride, padding=padding, dilation=dilation,
                            groups=groups)


def channel_sum(g):
    """Σ over N and every position: (N, C, *out) -> (C,)."""
    if isinstance(g, np.ndarray):
        return to_matrix(g).sum(axis=1)          # (C, P·N) -> (C,): contiguous rows, one pass
    return g.sum(axis=(0, *range(2, g.ndim)))
