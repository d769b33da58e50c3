"""Layers: Linear, ReLU, Dropout, BatchNorm1d, and the paper's population statistics.

Layers own parameters and buffers and read the global train/eval flag (``minigrad.modes``);
the arithmetic is in ``functional.py``. BatchNorm1d owns the running statistics and picks
the composed or the fused batch norm with ``fused=``.
"""
import math

import numpy as np

from .. import modes
from . import functional as F
from .module import Module, Parameter


def _check_dtype(layer, x, expected):
    if x.dtype != expected:
        raise TypeError(f"{type(layer).__name__} has {expected} parameters but got input of dtype "
                        f"{x.dtype}; convert the input or call .to({x.dtype}) on the model")


class Linear(Module):
    """y = x @ Wᵀ + b.   x: (N, in_features) -> y: (N, out_features).

    weight: (out_features, in_features), bias: (out_features,); both start uniform in
    ±1/sqrt(in_features), PyTorch's default (kaiming_uniform with a=sqrt(5)).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        dtype = np.dtype(dtype or np.float32)
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(modes.rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        if bias:
            self.bias = Parameter(modes.rng.uniform(-bound, bound, out_features).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expected input with {self.in_features} features (last axis), "
                             f"got input of shape {x.shape}")
        _check_dtype(self, x, self.weight.dtype)
        return F.linear(x, self.weight, self.bias)

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
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, modes.is_training())

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalisation over (N, C) or (N, C, L) input, statistics per channel C.

    Training (global flag on): y = γ (x - μ_B) / sqrt(σ²_B + eps) + β with the batch mean μ_B and
    the *biased* batch variance σ²_B; then, if ``track_running_stats``,
        running_mean = (1 - momentum) · running_mean + momentum · μ_B
        running_var  = (1 - momentum) · running_var  + momentum · σ²_B · n/(n-1)   (unbiased)
    (other texts write decay · running + (1 - decay) · batch, with decay = 1 - momentum).
    ``momentum=None``: a cumulative average, factor 1/num_batches_tracked.
    Eval (flag off): normalise with the running statistics; nothing is updated. Without
    ``track_running_stats`` the buffers are None and batch statistics are used in both modes.
    ``fused=True``: one op with a hand-written backward; ``fused=False``: primitive ops.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 fused=True, dtype=None):
        super().__init__()
        dtype = np.dtype(dtype or np.float32)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats, self.fused = affine, track_running_stats, fused
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expected input of shape (N, "
                             f"{self.num_features}) or (N, {self.num_features}, L), got shape {x.shape}")
        dtype = self.weight.dtype if self.affine else (
            self.running_mean.dtype if self.track_running_stats else x.dtype)
        _check_dtype(self, x, dtype)
        use_batch_stats = modes.is_training() or not self.track_running_stats
        update = modes.is_training() and self.track_running_stats
        factor = 0.0
        if update:
            batches = int(self.num_batches_tracked) + 1
            factor = 1.0 / batches if self.momentum is None else self.momentum
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         training=use_batch_stats, momentum=factor, eps=self.eps, fused=self.fused)
        if update:  # counted only after batch_norm succeeded: a rejected batch changes nothing
            self.num_batches_tracked += 1
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, fused={self.fused}")


def recompute_bn_stats(model, batches):
    """Replace every BatchNorm1d's running statistics by population statistics (the original
    paper's Algorithm 2): mean of batch means and mean of *unbiased* batch variances over
    ``batches`` (arrays X, or (X, y) pairs; Tensors or ndarrays), weighted by batch size.

    Runs forward in training mode under no_grad. Batch b of size n_b is folded in with momentum
    n_b / (n_1 + ... + n_b), which leaves exactly the size-weighted average. The global flag
    and each layer's momentum are restored afterwards. Returns the number of batches used.
    """
    from ..tensor import Tensor
    layers = [m for m in model.modules() if isinstance(m, BatchNorm1d) and m.track_running_stats]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
    seen, count = 0, 0
    try:
        with modes.no_grad(), modes.train_mode():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = x if isinstance(x, Tensor) else Tensor(x)
                seen += x.shape[0]
                for m in layers:
                    m.momentum = x.shape[0] / seen
                model(x)
                count += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
    if count == 0:
        raise ValueError("recompute_bn_stats: no batches were given")
    return count
