"""Functional convolution, pooling and flatten: PyTorch's names, signatures and defaults.

Every argument is checked here, once, before any work: a wrong one raises TypeError or ValueError
naming what was expected and what came. The layers (nn/conv.py) check their constructor arguments
with the same helpers (``check_int``, ``int_tuple``, ``pool_args``) and nothing at call time.
Each function then calls one op of ops/conv.py or ops/pool.py. (To be merged into functional.py.)
"""
import math

import numpy as np

from ..ops.conv import Conv
from ..ops.pool import AvgPool, MaxPool
from ..tensor import Tensor

INPUT_SHAPES = {1: "(N, C, L)", 2: "(N, C, H, W)"}
WEIGHT_SHAPES = {1: "(C_out, C_in, k)", 2: "(C_out, C_in, kh, kw)"}


# --------------------------------------------------------------------------- argument checks
def is_int(value):
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(value, name, op, minimum=None):
    """``value`` must be an int (not a bool), and >= ``minimum`` if given."""
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")


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


def pool_args(kernel_size, stride, padding, dims, op):
    """kernel, stride (None: the kernel) and padding as tuples, with padding <= kernel / 2 per axis
    (PyTorch's rule, and its wording: a window must never be more than half padding)."""
    kernel = int_tuple(kernel_size, dims, "kernel_size", 1, op)
    stride = kernel if stride is None else int_tuple(stride, dims, "stride", 1, op)
    padding = int_tuple(padding, dims, "padding", 0, op)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding should be at most half of kernel size, but got "
                         f"padding={padding} and kernel_size={kernel}")
    return kernel, stride, padding


def check_input(x, dims, op):
    """x must be a Tensor of shape (N, C, *spatial) with ``dims`` spatial axes."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op} expects a Tensor input, got {type(x).__name__}")
    if x.ndim != dims + 2:
        raise ValueError(f"{op}: expected input of shape {INPUT_SHAPES[dims]} ({dims + 2}-D), "
                         f"got {x.ndim}-D input of shape {x.shape}")


def check_fits(x, kernel, padding, dilation, op):
    """The (dilated) kernel must fit in the padded input, so that there is at least one window."""
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], padding))
    if any(s > n for s, n in zip(spans, padded)):
        raise ValueError(f"{op}: kernel size {spans} (dilation included) can't be greater than the "
                         f"padded input size {padded} (input of shape {x.shape}, padding {padding})")


# --------------------------------------------------------------------------- convolution
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """1-D cross-correlation, as torch.nn.functional.conv1d (no groups).

    x: (N, C_in, L), weight: (C_out, C_in, k), bias: (C_out,) or None -> (N, C_out, L_out),
    L_out = floor((L + 2·padding - dilation·(k - 1) - 1) / stride) + 1; zero padding."""
    return _conv(x, weight, bias, stride, padding, dilation, 1, "conv1d")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation, as torch.nn.functional.conv2d (no groups).

    x: (N, C_in, H, W), weight: (C_out, C_in, kh, kw), bias: (C_out,) or None -> (N, C_out, H_out,
    W_out), each as in conv1d; stride, padding, dilation: an int or a pair (height, width)."""
    return _conv(x, weight, bias, stride, padding, dilation, 2, "conv2d")


def _conv(x, weight, bias, stride, padding, dilation, dims, op):
    stride = int_tuple(stride, dims, "stride", 1, op)
    padding = int_tuple(padding, dims, "padding", 0, op)
    dilation = int_tuple(dilation, dims, "dilation", 1, op)
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
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: weight of shape {weight.shape} expects input with C_in="
                         f"{weight.shape[1]} channels, got {x.shape[1]} (input of shape {x.shape})")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, got weight of shape {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: expected bias of shape ({weight.shape[0]},) for weight of shape "
                         f"{weight.shape}, got {bias.shape}")
    check_fits(x, weight.shape[2:], padding, dilation, op)
    return Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


# --------------------------------------------------------------------------- pooling
def max_pool1d(x, kernel_size, stride=None, padding=0):
    """Max over windows, as torch.nn.functional.max_pool1d: x (N, C, L) -> (N, C, L_out).

    stride defaults to kernel_size; padding (<= kernel_size / 2) adds -inf on both sides, so it
    is never the maximum. The gradient goes to each window's first maximum (PyTorch's choice)."""
    return _pool(MaxPool, x, kernel_size, stride, padding, 1, "max_pool1d")


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over windows, as torch.nn.functional.max_pool2d: x (N, C, H, W) -> (N, C, H_out, W_out).
    Arguments: an int or a pair; see max_pool1d."""
    return _pool(MaxPool, x, kernel_size, stride, padding, 2, "max_pool2d")


def avg_pool1d(x, kernel_size, stride=None, padding=0):
    """Mean over windows, as torch.nn.functional.avg_pool1d with count_include_pad=True and
    ceil_mode=False: the zeros of the padding count, every window divides by kernel_size."""
    return _pool(AvgPool, x, kernel_size, stride, padding, 1, "avg_pool1d")


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over windows, as torch.nn.functional.avg_pool2d (count_include_pad=True, ceil_mode=False):
    every window divides by kh·kw. Arguments: an int or a pair."""
    return _pool(AvgPool, x, kernel_size, stride, padding, 2, "avg_pool2d")


def _pool(op_class, x, kernel_size, stride, padding, dims, op):
    kernel, stride, padding = pool_args(kernel_size, stride, padding, dims, op)
    check_input(x, dims, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating-point input, got dtype {x.dtype}")
    check_fits(x, kernel, padding, (1,) * dims, op)
    return op_class.apply(x, kernel=kernel, stride=stride, padding=padding)


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
