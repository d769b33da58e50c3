"""Batch Renormalization (Ioffe 2017): batch norm that uses its moving averages in training too.

    renorm_corrections       r and d, per channel, from the batch and the running statistics
    batch_renorm_composed    training-mode batch renorm from primitive ops
    batch_renorm_fused       the same on the fused batch-norm op, with γ' = γ r and β' = γ d + β
    batch_renorm             a training step: the checks, the corrections, the EMA update
    BatchRenorm1d/2d         the layers: BatchNorm's buffers, eval mode and state_dict keys

A file of its own because batchnorm.py, where a student starts, is full; everything here
reuses it (the fused op, the checks, the running-statistics update, the layer). The composed
and the fused form have the same signature, return the same things and are pure functions.
"""
import numbers

import numpy as np

from ..ops.fused import BatchNormFused, bn_axes, bn_param_shape, group_dot
from .batchnorm import _BatchNorm, _bn_channels, _update_running_stats, _values_per_channel


def renorm_corrections(mean, var, running_mean, running_var, r_max, d_max, eps):
    """r = clip(σ_B / σ, 1/r_max, r_max),  d = clip((μ_B - μ) / σ, -d_max, d_max)

    with σ_B = sqrt(σ²_B + eps) from the batch (μ_B, biased σ²_B) and σ = sqrt(running_var + eps),
    μ = running_mean: arrays of one shape, (C,) or (1, C, 1...). Plain arrays, so no gradient
    flows through r and d: the paper's stop_gradient."""
    sigma = np.sqrt(running_var + eps)
    r = np.clip(np.sqrt(var + eps) / sigma, 1 / r_max, r_max)
    d = np.clip((mean - running_mean) / sigma, -d_max, d_max)
    return r, d


# --------------------------------------------------------------------------- the two batch renorms
# Both return (y, batch_mean, batch_var) as the batch norms do: y a Tensor like x, (N, C, ...);
# μ_B and the biased σ²_B as (C,) arrays; running_mean, running_var: (C,) arrays, read only.


def batch_renorm_composed(x, weight, bias, running_mean, running_var, r_max, d_max, eps=1e-5):
    """Training-mode batch renorm from primitive ops; see batch_renorm_fused."""
    axes, shape = bn_axes(x), bn_param_shape(x)
    mean = x.mean(axis=axes, keepdims=True)                # μ_B, (N, C, ...) -> (1, C, 1...)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)   # biased σ²_B, (1, C, 1...)
    r, d = renorm_corrections(mean.data, var.data, running_mean.reshape(shape),   # arrays: the
                              running_var.reshape(shape), r_max, d_max, eps)    # graph's constants
    y = centred / (var + eps).sqrt() * r + d               # x̂ r + d, (N, C, ...)
    if weight is not None:
        y = y * weight.reshape(shape)                      # γ (C,) -> (1, C, 1...)
    if bias is not None:
        y = y + bias.reshape(shape)                        # β (C,) -> (1, C, 1...)
    return y, mean.data.reshape(-1), var.data.reshape(-1)


def batch_renorm_fused(x, weight, bias, running_mean, running_var, r_max, d_max, eps=1e-5):
    """Training-mode batch renorm, y = γ (x̂ r + d) + β, on the fused batch-norm op (ops/fused.py).

    y = γ' x̂ + β' with γ' = γ r and β' = γ d + β: (C,)-sized nodes, r and d constants. So the op
    gives dx with γ' in place of γ (right: dx̂ = γ r dy), and the chain rule through the two small
    nodes gives dγ = r Σ dy·x̂ + d Σ dy = Σ dy·(x̂ r + d) and dβ = Σ dy. r and d need μ_B and σ²_B
    before the op runs, so they are computed first (the op computes them again: three passes
    over x, the price of reusing the batch-norm op unchanged).
    x: (N, C), (N, C, L) or (N, C, H, W); weight, bias: (C,) Tensors or None.
    """
    mean, var = _batch_statistics(x.data)
    r, d = renorm_corrections(mean, var, running_mean, running_var, r_max, d_max, eps)   # (C,)
    scale = r if weight is None else weight * r            # γ' = γ r
    shift = d if weight is None else weight * d            # γ d
    shift = shift if bias is None else shift + bias        # β' = γ d + β
    y, mean, var, _ = BatchNormFused.apply(x, scale, shift, eps)
    return y, mean, var


def _batch_statistics(x):
    """μ_B and the biased σ²_B per channel, (C,) arrays, as BatchNormFused computes them."""
    axes = bn_axes(x)
    n = x.size // x.shape[1]
    mean = x.sum(axis=axes, keepdims=True) / n             # (1, C, 1...)
    centred = x - mean
    return mean.reshape(-1), group_dot(centred, centred, axes) / n


# --------------------------------------------------------------------------- the training step
def batch_renorm(x, running_mean, running_var, weight, bias, r_max, d_max, momentum=0.1, eps=1e-5,
                 fused=True):
    """One training step of batch renorm on x (N, C, ...): normalise with r, d from the running
    statistics as they are, then update those in place exactly as ``batch_norm`` does (momentum,
    unbiased σ² into running_var). Eval mode is batch norm's: ``batch_norm(training=False)``."""
    channels = _bn_channels(x, running_mean, running_var, weight, bias)
    if running_mean is None or running_var is None:
        raise ValueError("batch_renorm: running_mean and running_var are required (r and d come from them)")
    n = _values_per_channel(x, channels)
    normalise = batch_renorm_fused if fused else batch_renorm_composed
    y, mean, var = normalise(x, weight, bias, running_mean, running_var, r_max, d_max, eps)
    _update_running_stats(running_mean, running_var, mean, var, n, momentum)
    return y


# --------------------------------------------------------------------------- the layers
class _BatchRenorm(_BatchNorm):
    """Batch renormalization of (N, C, ...) input (Ioffe 2017, "Batch Renormalization: Towards
    Reducing Minibatch Dependence in Batch-Normalized Models", Algorithm 1).

    Training (global flag on): y = γ (x̂ r + d) + β, x̂ = (x - μ_B) / σ_B the batch-normalised
    input, σ_B = sqrt(σ²_B + eps) (biased σ²_B), and per channel
        r = clip(σ_B / σ, 1/r_max, r_max),   d = clip((μ_B - μ) / σ, -d_max, d_max),
        σ = sqrt(running_var + eps),  μ = running_mean,
    taken from the running statistics *before* this batch updates them, and treated as
    constants (no gradient flows through r and d). Unclipped, x̂ r + d = (x - μ) / σ: training
    normalises as evaluation does. Then the running statistics are updated exactly as
    BatchNorm's (same momentum convention, unbiased σ² into running_var, num_batches_tracked,
    ``momentum=None`` for the cumulative average). The paper averages σ rather than σ²; we keep
    BatchNorm's buffers so that evaluation, folding and state_dict stay BatchNorm's.
    Eval (flag off), or ``frozen``: BatchNorm's eval, y = γ (x - μ) / σ + β; nothing is updated.

    ``r_max`` (>= 1) and ``d_max`` (>= 0) are the clip bounds in use, attributes you may set
    at any time. r_max = 1, d_max = 0 (the defaults) is BatchNorm exactly. The paper trains with
    BatchNorm alone (1, 0) for its first 5,000 steps, then relaxes the bounds gradually to
    r_max = 3 at 40k steps and d_max = 5 at 25k steps (its Inception-v3 runs, minibatches of
    32): ``nn.utils.batch_renorm_schedule`` sets both per step, on that ramp by default.
    Always tracks running statistics (r and d need them). state_dict: BatchNorm's keys (weight,
    bias, running_mean, running_var, num_batches_tracked); PyTorch has no such layer to match.
    ``fused=True``: the fused batch-norm op with γ r, γ d + β; ``fused=False``: primitive ops.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, r_max=1.0, d_max=0.0,
                 fused=True, dtype=None):
        super().__init__(num_features, eps, momentum, affine, True, fused, dtype)
        self.r_max, self.d_max = r_max, d_max         # checked by the setters below

    @property
    def r_max(self):
        return self._r_max

    @r_max.setter
    def r_max(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 1:
            raise ValueError(f"{type(self).__name__}: r_max must be a number >= 1 (r is clipped to "
                             f"[1/r_max, r_max]), got {value!r}")
        object.__setattr__(self, "_r_max", float(value))

    @property
    def d_max(self):
        return self._d_max

    @d_max.setter
    def d_max(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{type(self).__name__}: d_max must be a number >= 0 (d is clipped to "
                             f"[-d_max, d_max]), got {value!r}")
        object.__setattr__(self, "_d_max", float(value))

    def _normalise(self, x, training, momentum):
        if not training:          # eval or frozen: BatchNorm's, with the running statistics
            return super()._normalise(x, training, momentum)
        return batch_renorm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.r_max, self.d_max, momentum, self.eps, self.fused)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"r_max={self.r_max:g}, d_max={self.d_max:g}, fused={self.fused}"
                + (", frozen=True" if self.frozen else ""))


class BatchRenorm1d(_BatchRenorm):
    """Batch renorm over (N, C) or (N, C, L) input; see _BatchRenorm for the full story."""

    ranks = (2, 3)
    layout = "(N, {C}) or (N, {C}, L)"


class BatchRenorm2d(_BatchRenorm):
    """Batch renorm over (N, C, H, W) input (after a convolution); see _BatchRenorm."""

    ranks = (4,)
    layout = "(N, {C}, H, W)"
