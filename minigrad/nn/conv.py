"""Convolution and pooling layers: Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, Flatten.

PyTorch's constructors, defaults, parameter names (state_dict keys ``weight`` and ``bias``),
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

    def __init__(self, dims, in_channels, out_channels, kernel_size, stride, padding, dilation, bias, dtype):
        super().__init__()
        name = type(self).__name__
        F.check_int(in_channels, "in_channels", name, minimum=1)
        F.check_int(out_channels, "out_channels", name, minimum=1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F.int_tuple(kernel_size, dims, "kernel_size", 1, name)
        self.stride = F.int_tuple(stride, dims, "stride", 1, name)
        self.padding = F.int_tuple(padding, dims, "padding", 0, name)
        self.dilation = F.int_tuple(dilation, dims, "dilation", 1, name)
        dtype = np.dtype(dtype or np.float32)
        # PyTorch's default: kaiming_uniform with a=sqrt(5), i.e. uniform in ±1/sqrt(fan_in), for
        # the weight, and the same range for the bias; fan_in = C_in · prod(kernel)
        bound = 1 / math.sqrt(in_channels * math.prod(self.kernel_size))
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(modes.rng.uniform(-bound, bound, shape).astype(dtype))
        if bias:
            self.bias = Parameter(modes.rng.uniform(-bound, bound, out_channels).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """y = conv1d(x, W) + b:  (N, C_in, L) -> (N, C_out, L_out),
    L_out = floor((L + 2·padding - dilation·(kernel_size - 1) - 1) / stride) + 1.

    weight: (C_out, C_in, kernel_size), bias: (C_out,); both start uniform in ±1/sqrt(C_in·kernel_size).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None):
        super().__init__(1, in_channels, out_channels, kernel_size, stride, padding, dilation, bias, dtype)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class Conv2d(_ConvNd):
    """y = conv2d(x, W) + b:  (N, C_in, H, W) -> (N, C_out, H_out, W_out), each size as in Conv1d.

    kernel_size, stride, padding, dilation: an int or a pair (height, width).
    weight: (C_out, C_in, kh, kw), bias: (C_out,); both start uniform in ±1/sqrt(C_in·kh·kw).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, bias, dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class _PoolNd(Module):
    """What the pooling layers share: the arguments, checked at construction, kept as given (as
    PyTorch keeps and prints them; ``as_tuples``: AvgPool1d keeps 1-tuples, as PyTorch's does)."""

    dims, as_tuples = None, False

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        checked = F.pool_args(kernel_size, stride, padding, self.dims, type(self).__name__)
        if self.as_tuples:
            self.kernel_size, self.stride, self.padding = checked
        else:
            self.kernel_size, self.padding = kernel_size, padding
            self.stride = kernel_size if stride is None else stride

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_PoolNd):
    """Max over windows of (N, C, L); stride defaults to kernel_size; padding adds -inf."""

    dims = 1

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return super().extra_repr() + ", dilation=1, ceil_mode=False"   # PyTorch's repr, fixed values


class MaxPool2d(_PoolNd):
    """Max over windows of (N, C, H, W); arguments an int or a pair; see MaxPool1d."""

    dims = 2

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return super().extra_repr() + ", dilation=1, ceil_mode=False"


class AvgPool1d(_PoolNd):
    """Mean over windows of (N, C, L); zero padding counts in the divisor (count_include_pad=True)."""

    dims, as_tuples = 1, True

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_PoolNd):
    """Mean over windows of (N, C, H, W); arguments an int or a pair; see AvgPool1d."""

    dims = 2

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


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
