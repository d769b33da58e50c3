"""Functional forms of the layers: linear, relu, dropout, convolution, pooling, flatten, losses.

Pure functions of their arguments (only ``batch_norm`` updates the running buffers it is
given), each the one place that validates its arguments, before any work: a wrong one raises
TypeError or ValueError naming what was expected and what came. The layers check their
constructor arguments with the same helpers (``check_int``, ``int_tuple``, ``conv_padding``,
``pool_args``, ``pool_options``).
Batch norm lives in ``batchnorm.py`` and group and layer norm in ``normalization.py`` (composed
and fused side by side); they are re-exported here under torch.nn.functional's names.
"""
import math

import numpy as np

from .. import modes
from ..checks import check_int, check_probability, is_int  # noqa: F401 (also used by conv.py as F.*)
from ..ops.conv import Conv
from ..ops.fused import CrossEntropy
from ..ops.linalg import Affine
from ..ops.pool import AvgPool, MaxPool, avg_pool_divisor
from ..tensor import Tensor, _wrap
from .batchnorm import batch_norm, batch_norm_composed, batch_norm_eval, batch_norm_fused  # noqa: F401
from .normalization import (group_norm, group_norm_composed, group_norm_fused, layer_norm,  # noqa: F401
                            layer_norm_composed, layer_norm_fused)


def linear(x, weight, bias=None):
    """y = x @ Wᵀ + b.   x: (N, in) or (..., in), W: (out, in), b: (out,) -> y: (..., out)."""
    xa = x.data if isinstance(x, Tensor) else np.asarray(x)     # read once: this runs on
    wa = weight.data if isinstance(weight, Tensor) else np.asarray(weight)   # every call
    if xa.shape[-1:] != wa.shape[1:]:
        raise ValueError(f"linear: expected input with {wa.shape[1]} features (last axis) for "
                         f"a weight of shape {wa.shape}, got input of shape {xa.shape}")
    if xa.dtype != wa.dtype:
        raise TypeError(f"linear has {wa.dtype} parameters but got input of dtype {xa.dtype}; "
                        f"convert the input or call .to({xa.dtype}) on the model")
    if xa.ndim == 2:
        return Affine.apply(x, weight, bias)
    y = x @ weight.T
    return y if bias is None else y + bias


def relu(x):
    """y = max(x, 0), elementwise."""
    return x.relu()


def dropout(x, p=0.5, training=True):
    """Inverted dropout: zero each entry with probability p, scale the rest by 1/(1-p).
    p = 1 zeroes everything (as in PyTorch)."""
    check_probability(p)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = (modes.rng.random(x.shape) >= p).astype(x.dtype) / (1 - p)  # a constant mask
    return x * _wrap(keep, False)          # a Tensor of our own: the graph needs no copy of it


# --------------------------------------------------------------------------- convolution and pooling
INPUT_SHAPES = {1: "(N, C, L)", 2: "(N, C, H, W)"}
WEIGHT_SHAPES = {1: "(C_out, C_in, k)", 2: "(C_out, C_in, kh, kw)"}


# --------------------------------------------------------------------------- argument checks
def int_tuple(value, dims, name, minimum, op):
    """An int or a tuple/list of ``dims`` ints, each >= ``minimum`` -> a tuple of ``dims`` ints."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    ints = all(map(is_int, values))
    if not ints or len(values) != dims:
        raise (ValueError if ints else TypeError)(
            f"{op}: {name} must be an int or a tuple of {dims} int{'s' if dims > 1 else ''}, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def conv_padding(padding, kernel, stride, dilation, dims, op):
    """A conv's padding (an int, a tuple, "valid" or "same") -> a (before, after) pair per axis.
    "same" (stride 1 only) pads d·(k - 1) in all, the odd one after, as PyTorch: out = in."""
    if not isinstance(padding, str):
        return tuple((p, p) for p in int_tuple(padding, dims, "padding", 0, op))
    if padding not in ("valid", "same"):
        raise ValueError(f"{op}: Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    if padding == "valid":
        return ((0, 0),) * dims
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions, got stride={stride}")
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def pool_args(kernel_size, stride, padding, dilation, dims, op):
    """kernel, stride (None: the kernel), padding and dilation as tuples, with padding <= kernel / 2
    per axis (PyTorch's rule, and its wording: a window is never more than half padding)."""
    kernel = int_tuple(kernel_size, dims, "kernel_size", 1, op)
    stride = kernel if stride is None else int_tuple(stride, dims, "stride", 1, op)
    padding = int_tuple(padding, dims, "padding", 0, op)
    dilation = int_tuple(dilation, dims, "dilation", 1, op)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding should be at most half of kernel size, but got "
                         f"padding={padding} and kernel_size={kernel}")
    return kernel, stride, padding, dilation


def pool_options(op, ceil_mode, count_include_pad=True, divisor_override=None, return_indices=False):
    """PyTorch's pooling options: bools, and a nonzero int or None; return_indices=True is refused."""
    for name, flag in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad),
                       ("return_indices", return_indices)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must be a bool, got {flag!r}")
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not supported: max pooling returns "
                                  f"the pooled values only (their gradient goes to each window's maximum)")
    if divisor_override is not None:
        check_int(divisor_override, "divisor_override", op)
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be zero")


def check_input(x, dims, op):
    """x must be a float Tensor of shape (N, C, *spatial) with ``dims`` spatial axes (PyTorch has
    no integer convolution or pooling either)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op} expects a Tensor input, got {type(x).__name__}")
    if x.ndim != dims + 2:
        raise ValueError(f"{op}: expected input of shape {INPUT_SHAPES[dims]} ({dims + 2}-D), "
                         f"got {x.ndim}-D input of shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating-point input, got dtype {x.dtype}")


def check_fits(x, kernel, padding, dilation, op):
    """The (dilated) kernel must fit in the input padded with ``padding`` (before, after) pairs."""
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    if any(s > n for s, n in zip(spans, padded)):
        raise ValueError(f"{op}: kernel size {spans} (dilation included) can't be greater than the "
                         f"padded input size {padded} (input of shape {x.shape}, padding {padding})")


def pool_padding(x, kernel, stride, padding, dilation, ceil_mode, op):
    """A pooling's (before, after) padding per axis: ``padding`` both sides and, with ceil_mode, as
    much more after as the last window needs. PyTorch's rule: out = ceil((S + 2p - span) / s) + 1,
    less one if that window would start in the padding after. Refuses an input with no window, and
    a (dilated) window holding only padding (PyTorch: -inf, its gradient sent to a wrong entry)."""
    size, spans = x.shape[2:], tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    pairs = []
    for n, span, s, p, d in zip(size, spans, stride, padding, dilation):
        out = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= n + p:
            out -= 1
        if out < 1:
            raise ValueError(f"{op}: kernel size {spans} (dilation included) can't be greater than the padded "
                             f"input size {tuple(m + 2 * q for m, q in zip(size, padding))}"
                             f"{' + stride - 1 (ceil_mode)' if ceil_mode else ''} (input of shape {x.shape}, "
                             f"padding {padding})")
        # a window starting at s·o - p < 0 (o < p / s) has its first entry in x at (s·o - p) mod d
        if any((s * o - p) % d >= n for o in range(min(out, -(-p // s)))):
            raise ValueError(f"{op}: a window holds only padding (kernel size {kernel}, dilation {dilation}, "
                             f"padding {padding}, input of shape {x.shape}); use less padding or dilation")
        pairs.append((p, max(p, s * (out - 1) + span - n - p)))
    return tuple(pairs)


# --------------------------------------------------------------------------- convolution
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, as torch.nn.functional.conv1d.

    x: (N, C_in, L), weight: (C_out, C_in / groups, k), bias: (C_out,) or None -> (N, C_out, L_out),
    L_out = floor((L + 2·padding - dilation·(k - 1) - 1) / stride) + 1; zero padding, an int,
    "valid" (0) or "same" (L_out = L, stride 1 only). groups: C_in and C_out split into that many
    blocks, each output block computed from its input block only (groups = C_in: depthwise)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    x: (N, C_in, H, W), weight: (C_out, C_in / groups, kh, kw), bias: (C_out,) or None -> (N, C_out,
    H_out, W_out), each as in conv1d; stride, padding, dilation: an int or a pair (height, width)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def _conv(x, weight, bias, stride, padding, dilation, groups, dims, op):
    stride = int_tuple(stride, dims, "stride", 1, op)
    dilation = int_tuple(dilation, dims, "dilation", 1, op)
    check_int(groups, "groups", op, minimum=1)
    check_input(x, dims, op)
    for name, t in (("weight", weight), ("bias", bias)):
        if not (isinstance(t, (Tensor, np.ndarray)) or (name == "bias" and t is None)):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: input and {name} must have the same dtype, got input "
                            f"{x.dtype} and {name} {t.dtype}")
    if weight.ndim != dims + 2:
        raise ValueError(f"{op}: expected weight of shape {WEIGHT_SHAPES[dims]} ({dims + 2}-D), "
                         f"got {weight.ndim}-D weight of shape {weight.shape}")
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0, but got weight of shape {weight.shape}")
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"{op}: weight of shape {weight.shape}{f' with groups={groups}' if groups > 1 else ''} "
                         f"expects input with C_in={weight.shape[1] * groups} channels, got {x.shape[1]} "
                         f"(input of shape {x.shape})")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, got weight of shape {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: expected bias of shape ({weight.shape[0]},) for weight of shape "
                         f"{weight.shape}, got {bias.shape}")
    padding = conv_padding(padding, weight.shape[2:], stride, dilation, dims, op)
    check_fits(x, weight.shape[2:], padding, dilation, op)
    return Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=int(groups))


# --------------------------------------------------------------------------- pooling
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows, as torch.nn.functional.max_pool1d: x (N, C, L) -> (N, C, L_out),
    L_out = floor or ceil((L + 2·padding - dilation·(kernel_size - 1) - 1) / stride) + 1.

    stride defaults to kernel_size; padding (<= kernel_size / 2) adds -inf on both sides, so it is
    never the maximum; window entries are dilation apart; ceil_mode lets a last, partial window
    start inside the input. The gradient goes to each window's maximum: the first of ties, the
    last of NaNs (PyTorch's choices). return_indices=True is not supported."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows, as torch.nn.functional.max_pool2d: x (N, C, H, W) -> (N, C, H_out, W_out).
    kernel_size, stride, padding, dilation: an int or a pair; see max_pool1d."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows, as torch.nn.functional.avg_pool1d: x (N, C, L) -> (N, C, L_out), L_out as
    in max_pool1d. Each window divides by its positions inside x padded with zeros
    (count_include_pad, the default: kernel_size, except for a ceil_mode window running past the
    padding) or inside x alone."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over windows, as torch.nn.functional.avg_pool2d: x (N, C, H, W) -> (N, C, H_out, W_out).
    kernel_size, stride, padding: an int or a pair; see avg_pool1d. divisor_override: a nonzero int
    that every window divides by instead."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                     "avg_pool2d")


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, dims, op):
    kernel, stride, padding, dilation = pool_args(kernel_size, stride, padding, dilation, dims, op)
    pool_options(op, ceil_mode, return_indices=return_indices)
    check_input(x, dims, op)
    padding = pool_padding(x, kernel, stride, padding, dilation, ceil_mode, op)
    return MaxPool.apply(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dims, op):
    kernel, stride, padding, dilation = pool_args(kernel_size, stride, padding, 1, dims, op)
    pool_options(op, ceil_mode, count_include_pad, divisor_override)
    check_input(x, dims, op)
    padding = pool_padding(x, kernel, stride, padding, dilation, ceil_mode, op)
    divisor = (int(divisor_override) if divisor_override is not None else
               avg_pool_divisor(x.shape[2:], kernel, stride, padding, count_include_pad))
    return AvgPool.apply(x, kernel=kernel, stride=stride, padding=padding, divisor=divisor)


# --------------------------------------------------------------------------- flatten
def flatten(x, start_dim=0, end_dim=-1):
    """torch.flatten: axes start_dim .. end_dim (inclusive, negative counts from the end) merged
    into one; (N, C, L) with start_dim=1 -> (N, C·L). A 0-D input counts as 1-D."""
    if not isinstance(x, Tensor):
        raise TypeError(f"flatten expects a Tensor input, got {type(x).__name__}")
    ndim = max(x.ndim, 1)
    for name, dim in (("start_dim", start_dim), ("end_dim", end_dim)):
        check_int(dim, name, "flatten")
        if not -ndim <= dim < ndim:
            raise ValueError(f"flatten: {name} must be in [{-ndim}, {ndim - 1}] for an input of shape "
                             f"{x.shape}, got {dim}")
    start, end = start_dim % ndim, end_dim % ndim
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim}) "
                         f"for an input of shape {x.shape}")
    return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


# --------------------------------------------------------------------------- losses
def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy as one stable op. logits: (N, K) Tensor; target: (N,) integer
    class indices (ndarray or int Tensor) in [0, K). reduction: "mean" | "sum" | "none"."""
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, K), got shape {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy expects integer class targets, got dtype {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"({logits.shape[0]},), got {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: targets must be in [0, {logits.shape[1]}), got values in "
                         f"[{target.min()}, {target.max()}]")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return CrossEntropy.apply(logits, target, reduction)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input - target)²), or its "sum" / "none" per element."""
    if tuple(np.shape(target)) != input.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {np.shape(target)} differ")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    diff = input - target
    squared = diff * diff
    if reduction == "none":
        return squared
    return squared.mean() if reduction == "mean" else squared.sum()
