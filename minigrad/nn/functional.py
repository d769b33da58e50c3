"""Functional forms of the layers: linear, relu, dropout, batch norm (two ways), losses.

The heart of the file is batch norm written twice with the same signature and results:
``batch_norm_composed`` (primitive ops: every step is a graph node) and ``batch_norm_fused``
(one op with the hand-written backward in ``ops/fused.py``). Both are pure functions of their
inputs; ``batch_norm`` adds the running statistics, like torch.nn.functional.batch_norm.
"""
import numpy as np

from .. import modes
from ..ops.fused import BatchNormFused, CrossEntropy, bn_axes, bn_param_shape
from ..ops.linalg import Linear, matmul
from ..tensor import Tensor


def linear(x, weight, bias=None):
    """y = x @ Wᵀ + b.   x: (N, in) or (..., in), W: (out, in), b: (out,) -> y: (..., out)."""
    if x.ndim == 2:
        return Linear.apply(x, weight, bias)
    y = matmul(x, weight.T)
    return y if bias is None else y + bias


def relu(x):
    """y = max(x, 0), elementwise."""
    return x.relu()


def dropout(x, p=0.5, training=True):
    """Inverted dropout: zero each entry with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = (modes.rng.random(x.shape) >= p).astype(x.dtype) / (1 - p)  # a constant mask
    return x * keep


# --------------------------------------------------------------------------- batch norm
# Both return (y, batch_mean, batch_var): y a Tensor (N, C[, L]); the batch mean and the
# *biased* batch variance as (C,) arrays, for the caller's running statistics.

def batch_norm_composed(x, weight, bias, eps=1e-5):
    """Training-mode batch norm from primitive ops (about 8 graph nodes); see batch_norm_fused."""
    axes, shape = bn_axes(x), bn_param_shape(x)
    mean = x.mean(axis=axes, keepdims=True)                # (N, C[, L]) -> (1, C[, 1])
    centred = x - mean                                     # centre first: stable variance
    var = (centred * centred).mean(axis=axes, keepdims=True)  # biased σ², (1, C[, 1])
    y = centred / (var + eps).sqrt()                       # x̂, (N, C[, L])
    if weight is not None:
        y = y * weight.reshape(shape)                      # γ (C,) -> (1, C[, 1])
    if bias is not None:
        y = y + bias.reshape(shape)                        # β (C,) -> (1, C[, 1])
    return y, mean.data.reshape(-1), var.data.reshape(-1)


def batch_norm_fused(x, weight, bias, eps=1e-5):
    """Training-mode batch norm as one op with a hand-written backward (ops/fused.py).

    y = γ (x - μ) / sqrt(σ² + eps) + β with μ, σ² (biased) over N (and L), per channel C.
    x: (N, C) or (N, C, L); weight, bias: (C,) Tensors or None.
    """
    return BatchNormFused.apply(x, weight, bias, eps)


def batch_norm_eval(x, mean, var, weight, bias, eps=1e-5, fused=True):
    """Inference-mode batch norm with given statistics (arrays (C,)); the same two ways.

    composed: the textbook (x - mean) / sqrt(var + eps) · γ + β, four elementwise nodes.
    fused: folded into one affine map, x · scale + shift with scale = γ / sqrt(var + eps) and
    shift = β - mean · scale (a (C,) computation), then two elementwise nodes over x.
    """
    shape = bn_param_shape(x)
    weight = None if weight is None else weight.reshape(shape)   # (C,) -> (1, C[, 1])
    bias = None if bias is None else bias.reshape(shape)
    mean, inv_std = mean.reshape(shape), 1.0 / np.sqrt(var.reshape(shape) + eps)
    if not fused:
        y = (x - mean) * inv_std
        y = y if weight is None else y * weight
        return y if bias is None else y + bias
    scale = inv_std if weight is None else weight * inv_std     # a Tensor when γ is learned
    shift = -mean * scale if bias is None else bias - mean * scale
    return x * scale + shift


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, fused=True):
    """torch.nn.functional.batch_norm: normalise x (N, C) or (N, C, L) per channel.

    training=True: batch statistics; if the running buffers (ndarrays (C,)) are given they are
    updated in place: running = (1 - momentum) * running + momentum * batch, with the
    *unbiased* batch variance (n / (n - 1) times the biased one) fed to running_var.
    training=False: normalise with running_mean / running_var; nothing changes.
    """
    channels = _bn_channels(x, running_mean, weight)
    if training:
        n = x.size // channels
        if n < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got input of "
                             f"shape {x.shape} ({n} value per channel)")
        normalise = batch_norm_fused if fused else batch_norm_composed
        y, mean, var = normalise(x, weight, bias, eps)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * n / (n - 1) * var
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    return batch_norm_eval(x, running_mean, running_var, weight, bias, eps, fused)


def _bn_channels(x, running_mean, weight):
    """Validate x's layout against the per-channel arrays; returns C."""
    if not isinstance(x, Tensor):
        raise TypeError(f"batch_norm expects a Tensor input, got {type(x).__name__}")
    if x.ndim not in (2, 3):
        raise ValueError(f"batch_norm expects input of shape (N, C) or (N, C, L), got {x.ndim}-D "
                         f"input of shape {x.shape}")
    for name, ref in (("running_mean", running_mean), ("weight", weight)):
        if ref is not None and ref.shape != (x.shape[1],):
            raise ValueError(f"batch_norm: input has C={x.shape[1]} channels (shape {x.shape}) but "
                             f"{name} has shape {ref.shape}")
    return x.shape[1]


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
