"""Functional forms of the layers: linear, relu, dropout, batch norm, losses.

Pure functions of their arguments (only ``batch_norm`` updates the running buffers it is
given), each the one place that validates its arguments. Batch norm lives in ``batchnorm.py``
(composed and fused side by side); it is re-exported here under torch.nn.functional's names.
"""
import numbers

import numpy as np

from .. import modes
from ..ops.fused import CrossEntropy
from ..ops.linalg import Affine
from ..tensor import Tensor, _wrap
from .batchnorm import batch_norm, batch_norm_composed, batch_norm_eval, batch_norm_fused  # noqa: F401


def linear(x, weight, bias=None):
    """y = x @ Wᵀ + b.   x: (N, in) or (..., in), W: (out, in), b: (out,) -> y: (..., out)."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: expected input with {weight.shape[1]} features (last axis) for "
                         f"a weight of shape {weight.shape}, got input of shape {x.shape}")
    if x.dtype != weight.dtype:
        raise TypeError(f"linear has {weight.dtype} parameters but got input of dtype {x.dtype}; "
                        f"convert the input or call .to({x.dtype}) on the model")
    if x.ndim == 2:
        return Affine.apply(x, weight, bias)
    y = x @ weight.T
    return y if bias is None else y + bias


def relu(x):
    """y = max(x, 0), elementwise."""
    return x.relu()


def check_probability(p):
    """Dropout's p must be a number in [0, 1]; the layer and the function share this one check."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    return p


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
