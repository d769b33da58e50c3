"""Convolution and pooling layers: Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, Flatten.

PyTorch's constructors (groups, padding "same"/"valid", dilation, ceil_mode, count_include_pad,
divisor_override), defaults, parameter names (state_dict keys ``weight`` and ``bias``),
initialisation and reprs. A constructor checks its own arguments with the helpers of
functional.py; forward only calls the functional, which checks the input (rank, channels,
dtype) once, so no check is written twice.
"""
import math

import numpy as np

from .. import modes
from . import functional as F
from .module import Module, Parameter


class _ConvNd(Module):
    """What Conv1d and Conv2d share: arguments, parameters and their initialisation, the repr."""

    def __init__(self, dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 dtype):
        super().__init__()
        name = type(self).__name__
        F.check_int(in_channels, "in_channels", name, minimum=1)
        F.check_int(out_channels, "out_channels", name, minimum=1)
        F.check_int(groups, "groups", name, minimum=1)
        for which, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"{name}: {which} must be divisible by groups, got {which}={channels} "
                                 f"and groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F.int_tuple(kernel_size, dims, "kernel_size", 1, name)
        self.stride = F.int_tuple(stride, dims, "stride", 1, name)
        self.dilation = F.int_tuple(dilation, dims, "dilation", 1, name)
        pairs = F.conv_padding(padding, self.kernel_size, self.stride, self.dilation, dims, name)
        # "same" and "valid" are kept as given (PyTorch keeps and prints them), ints as a tuple
        self.padding = padding if isinstance(padding, str) else tuple(lo for lo, _ in pairs)
        dtype = np.dtype(dtype or np.float32)
        # PyTorch's default: kaiming_uniform with a=sqrt(5), i.e. uniform in ±1/sqrt(fan_in), for
        # the weight, and the same range for the bias; fan_in = C_in / groups · prod(kernel)
        bound = 1 / math.sqrt(in_channels // groups * math.prod(self.kernel_size))
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(modes.rng.uniform(-bound, bound, shape).astype(dtype))
        if bias:
            self.bias = Parameter(modes.rng.uniform(-bound, bound, out_channels).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """y = conv1d(x, W) + b:  (N, C_in, L) -> (N, C_out, L_out),
    L_out = floor((L + 2·padding - dilation·(kernel_size - 1) - 1) / stride) + 1.

    padding: an int, "valid" (0) or "same" (L_out = L; stride 1 only). groups: C_in and C_out
    split into that many blocks, each output block seeing only its input block (groups = C_in:
    depthwise). weight: (C_out, C_in / groups, kernel_size), bias: (C_out,); both start uniform in
    ±1/sqrt(C_in / groups · kernel_size).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, dtype=None):
        super().__init__(1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         dtype)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """y = conv2d(x, W) + b:  (N, C_in, H, W) -> (N, C_out, H_out, W_out), each size as in Conv1d.

    kernel_size, stride, padding, dilation: an int or a pair (height, width); padding also "valid"
    or "same". weight: (C_out, C_in / groups, kh, kw), bias: (C_out,); see Conv1d.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, dtype=None):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _PoolNd(Module):
    """What the pooling layers share: the arguments, checked at construction, kept as given (as
    PyTorch keeps and prints them; ``as_tuples``: AvgPool1d keeps 1-tuples, as PyTorch's does)."""

    dims, as_tuples = None, False

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode):
        super().__init__()
        checked = F.pool_args(kernel_size, stride, padding, dilation, self.dims, type(self).__name__)
        if self.as_tuples:
            self.kernel_size, self.stride, self.padding = checked[:3]
        else:
            self.kernel_size, self.padding = kernel_size, padding
            self.stride = kernel_size if stride is None else stride
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPoolNd(_PoolNd):
    """MaxPool1d and MaxPool2d: PyTorch's arguments, in its order; return_indices=True is refused."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        F.pool_options(type(self).__name__, ceil_mode, return_indices=return_indices)
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.dilation, self.return_indices = dilation, return_indices

    def extra_repr(self):
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L): stride defaults to kernel_size; padding adds -inf; window
    entries are dilation apart; ceil_mode lets a last, partial window start inside the input."""

    dims = 1

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class MaxPool2d(_MaxPoolNd):
    """Max over windows of (N, C, H, W); arguments an int or a pair; see MaxPool1d."""

    dims = 2

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class AvgPool1d(_PoolNd):
    """Mean over windows of (N, C, L); with count_include_pad (the default) the zero padding counts
    in each window's divisor, else only the input does; ceil_mode as in MaxPool1d."""

    dims, as_tuples = 1, True

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        F.pool_options("AvgPool1d", ceil_mode, count_include_pad)
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class AvgPool2d(_PoolNd):
    """Mean over windows of (N, C, H, W); arguments an int or a pair; see AvgPool1d.
    divisor_override: a nonzero int every window divides by instead."""

    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        F.pool_options("AvgPool2d", ceil_mode, count_include_pad, divisor_override)
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)


class Flatten(Module):
    """Axes start_dim .. end_dim merged into one: (N, C, L) -> (N, C·L) with the defaults."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        F.check_int(start_dim, "start_dim", "Flatten")
        F.check_int(end_dim, "end_dim", "Flatten")
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
