"""GroupNorm and LayerNorm: each sample normalised with its own statistics, as PyTorch's
torch/nn/modules/normalization.py; composed and fused side by side, as batch norm is.

    group_norm_composed / _fused   μ, σ² per (sample, group of C/G channels), over the group's
                                   channels and every position; γ, β per channel
    layer_norm_composed / _fused   μ, σ² per sample over the trailing normalized_shape;
                                   γ, β one per element of normalized_shape
    group_norm, layer_norm         torch.nn.functional's: check the arguments, pick a form
    GroupNorm, LayerNorm           the layers: own γ and β, and no running statistics

Neither keeps running statistics: a sample is normalised with its own in training and in
evaluation alike, so the global train/eval flag changes nothing here (unlike batch norm).
"""
import numbers

import numpy as np

from ..ops.fused import GroupNormFused, LayerNormFused, bn_axes, bn_param_shape
from ..tensor import Tensor
from .module import Module, Parameter

# --------------------------------------------------------------------------- the two group norms
# Same signature, same result: y, a Tensor shaped like x.


def group_norm_composed(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm from primitive ops; see group_norm_fused."""
    n = x.shape[0]
    groups = x.reshape(n, num_groups, x.size // (n * num_groups))   # (N, C, *) -> (N, G, C/G·L)
    mean = groups.mean(axis=2, keepdims=True)              # (N, G, 1)
    centred = groups - mean                                # centre first: stable variance
    var = (centred * centred).mean(axis=2, keepdims=True)  # biased σ², (N, G, 1)
    y = (centred / (var + eps).sqrt()).reshape(x.shape)    # x̂, back to (N, C, *)
    if weight is not None:
        y = y * weight.reshape(bn_param_shape(x))          # γ (C,) -> (1, C, 1...)
    if bias is not None:
        y = y + bias.reshape(bn_param_shape(x))            # β (C,) -> (1, C, 1...)
    return y


def group_norm_fused(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm as one op with a hand-written backward (GroupNormFused, ops/fused.py).

    y = γ (x - μ) / sqrt(σ² + eps) + β, μ and σ² (biased) per sample and group of C/G channels,
    over those channels and every position. x: (N, C, *); weight, bias: (C,) Tensors or None.
    """
    return GroupNormFused.apply(x, weight, bias, eps, num_groups)[0]


# --------------------------------------------------------------------------- the two layer norms
def layer_norm_composed(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm from primitive ops; see layer_norm_fused."""
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))   # the trailing axes
    mean = x.mean(axis=axes, keepdims=True)                # (*, 1, ...): one μ per sample
    centred = x - mean                                     # centre first: stable variance
    var = (centred * centred).mean(axis=axes, keepdims=True)   # biased σ², (*, 1, ...)
    y = centred / (var + eps).sqrt()                       # x̂, (*, *normalized_shape)
    if weight is not None:
        y = y * weight                                     # γ (*normalized_shape): broadcasts
    if bias is not None:
        y = y + bias                                       # β, the same
    return y


def layer_norm_fused(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm as one op with a hand-written backward (LayerNormFused, ops/fused.py).

    y = γ (x - μ) / sqrt(σ² + eps) + β, μ and σ² (biased) per sample over the trailing
    ``normalized_shape``; x: (*, *normalized_shape); weight, bias: normalized_shape or None.
    """
    return LayerNormFused.apply(x, weight, bias, eps, len(normalized_shape))[0]


# --------------------------------------------------------------------------- the functional forms
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, fused=True):
    """torch.nn.functional.group_norm: normalise x (N, C, *) per sample and group of C/G channels.

    No running statistics, no training mode: the same in training and in evaluation.
    ``fused=True``: one op (group_norm_fused); ``fused=False``: primitive ops.
    """
    _check_input(x, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input of shape (N, C, *) (at least 2 dimensions), "
                         f"got {x.ndim}-D input of shape {x.shape}")
    _check_count(num_groups, "num_groups", "group_norm")
    n, channels = x.shape[:2]
    if channels % num_groups:
        raise ValueError(f"group_norm: expected the number of channels to be divisible by num_groups, "
                         f"got input of shape {x.shape} and num_groups={num_groups}")
    if n * channels // num_groups * (x.size // max(n * channels, 1)) == 1:   # PyTorch's rule
        raise ValueError(f"group_norm: expected more than 1 value to normalise, got input of shape "
                         f"{x.shape}: one sample, groups of one value (y would be β)")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param(t, (channels,), name, x, "group_norm")
    normalise = group_norm_fused if fused else group_norm_composed
    return normalise(x, num_groups, weight, bias, eps)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, fused=True):
    """torch.nn.functional.layer_norm: normalise x (*, *normalized_shape) per sample over its
    trailing ``normalized_shape`` (an int or a tuple of ints).

    No running statistics, no training mode: the same in training and in evaluation.
    ``fused=True``: one op (layer_norm_fused); ``fused=False``: primitive ops.
    """
    _check_input(x, "layer_norm")
    normalized_shape = normalized_tuple(normalized_shape, "layer_norm")
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape or x.ndim < len(normalized_shape):
        raise ValueError(f"layer_norm: normalized_shape={normalized_shape} expects input of shape "
                         f"(*, {', '.join(map(str, normalized_shape))}), got input of shape {x.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param(t, normalized_shape, name, x, "layer_norm")
    normalise = layer_norm_fused if fused else layer_norm_composed
    return normalise(x, normalized_shape, weight, bias, eps)


# --------------------------------------------------------------------------- argument checks
def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_count(value, name, op):
    """A positive int (not a bool)."""
    if not _is_int(value) or value < 1:
        raise (ValueError if _is_int(value) else TypeError)(
            f"{op}: {name} must be a positive int, got {value!r}")


def normalized_tuple(normalized_shape, op):
    """An int or a non-empty tuple/list of positive ints -> a tuple of ints."""
    shape = (normalized_shape,) if _is_int(normalized_shape) else normalized_shape
    if not isinstance(shape, (tuple, list)) or not shape or not all(_is_int(s) and s >= 1 for s in shape):
        raise ValueError(f"{op}: normalized_shape must be a positive int or a non-empty tuple of "
                         f"positive ints, got {normalized_shape!r}")
    return tuple(int(s) for s in shape)


def _check_input(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op} expects a Tensor input, got {type(x).__name__}")
    if x.size == 0:      # PyTorch returns an empty result; we refuse rather than divide by 0
        raise ValueError(f"{op}: expected a non-empty input, got shape {x.shape}")


def _check_param(t, shape, name, x, op):
    """γ or β: None, or a Tensor of ``shape`` and x's dtype."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != shape:
        raise ValueError(f"{op}: expected {name} of shape {shape} for input of shape {x.shape}, "
                         f"got {name} of shape {t.shape}")
    if t.dtype != x.dtype:
        raise TypeError(f"{op} has {t.dtype} parameters but got input of dtype {x.dtype} ({name}); "
                        f"convert the input or call .to({x.dtype}) on the model")


def _check_eps(layer, eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < float("inf"):
        raise ValueError(f"{layer}: eps must be a positive number (it keeps 1/sqrt(var + eps) "
                         f"finite), got {eps!r}")


# --------------------------------------------------------------------------- the layers
def _affine_parameters(layer, shape, dtype, weight, bias):
    """γ = 1 and β = 0 of ``shape`` as the layer's weight and bias, or None where not wanted."""
    for name, value, wanted in (("weight", 1, weight), ("bias", 0, bias)):
        if wanted:
            setattr(layer, name, Parameter(np.full(shape, value, dtype)))
        else:
            layer.register_parameter(name, None)


class GroupNorm(Module):
    """Group normalisation (Wu & He 2018) of (N, C, *) input, as torch.nn.GroupNorm.

    The C channels split into ``num_groups`` groups of C/G; each sample's group is normalised
    with its own mean and *biased* variance over its C/G channels and every position:
    y = γ (x - μ) / sqrt(σ² + eps) + β, with γ, β (C,) per channel (``affine``; ``bias=False``
    drops β). G = 1 normalises each sample over (C, *) (like LayerNorm with per-channel γ);
    G = C is instance norm. No running statistics: training and evaluation (the global flag)
    compute the same thing, a batch of one is fine, and the state_dict holds weight and bias
    only. ``fused=True``: one op with a hand-written backward; ``fused=False``: primitive ops.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, fused=True, dtype=None, *,
                 bias=True):
        super().__init__()
        _check_count(num_groups, "num_groups", "GroupNorm")
        _check_count(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        _check_eps("GroupNorm", eps)
        dtype = np.dtype(dtype or np.float32)
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.affine, self.fused = affine, fused
        _affine_parameters(self, (num_channels,), dtype, affine, affine and bias)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:     # the layer's contract
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expected input of "
                             f"shape (N, {self.num_channels}, *), got shape {x.shape}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps, self.fused)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}, fused={self.fused}")


class LayerNorm(Module):
    """Layer normalisation (Ba et al. 2016) over the trailing ``normalized_shape``, as
    torch.nn.LayerNorm.

    Each sample (each position of the leading axes) is normalised with its own mean and *biased*
    variance over the last len(normalized_shape) axes: y = γ (x - μ) / sqrt(σ² + eps) + β,
    γ and β shaped ``normalized_shape``, one per element (``elementwise_affine``; ``bias=False``
    drops β). For (N, C, L) input, normalized_shape=(C, L) normalises each sample as a whole,
    normalized_shape=L each (sample, channel) row. No running statistics: training and
    evaluation (the global flag) compute the same thing, and the state_dict holds weight and
    bias only. ``fused=True``: one op with a hand-written backward; ``fused=False``: primitive ops.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, fused=True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = normalized_tuple(normalized_shape, "LayerNorm")
        _check_eps("LayerNorm", eps)
        dtype = np.dtype(dtype or np.float32)
        self.eps, self.elementwise_affine, self.fused = eps, elementwise_affine, fused
        _affine_parameters(self, self.normalized_shape, dtype, elementwise_affine, elementwise_affine and bias)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps, self.fused)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}, fused={self.fused}")
