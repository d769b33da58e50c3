"""Layers without batch norm: Linear, ReLU, Dropout (batch norm is in ``batchnorm.py``).

Layers own parameters and read the global train/eval flag (``minigrad.modes``); the
arithmetic and the checks of call-time inputs are in ``functional.py``.
"""
import math

import numpy as np

from .. import modes
from ..checks import check_int, check_probability, float_dtype
from . import functional as F
from .module import Module, Parameter


class Linear(Module):
    """y = x @ Wᵀ + b.   x: (N, in_features) -> y: (N, out_features).

    weight: (out_features, in_features), bias: (out_features,); both start uniform in
    ±1/sqrt(in_features), PyTorch's default (kaiming_uniform with a=sqrt(5)).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        check_int(in_features, "in_features", "Linear", minimum=0)
        check_int(out_features, "out_features", "Linear", minimum=0)
        dtype = np.dtype(np.float32) if dtype is None else float_dtype(dtype, "Linear")
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(modes.rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        if bias:
            self.bias = Parameter(modes.rng.uniform(-bound, bound, out_features).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        params = self._parameters   # not self.weight: that goes through Module.__getattr__
        return F.linear(x, params["weight"], params["bias"])

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """y = max(x, 0), elementwise; any shape."""

    def forward(self, x):
        return F.relu(x)


class Dropout(Module):
    """Inverted dropout in training mode (global flag); the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x):
        return F.dropout(x, self.p, modes.is_training())

    def extra_repr(self):
        return f"p={self.p}"
