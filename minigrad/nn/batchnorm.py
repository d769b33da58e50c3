"""Everything batch norm, but the fused op itself (``ops/fused.py``): start reading here.

    batch_norm_composed   training-mode batch norm from primitive ops (every step a graph node)
    batch_norm_fused      the same as one op with a hand-written backward (BatchNormFused)
    batch_norm_eval       inference-mode batch norm with given statistics, the same two ways
    batch_norm            torch.nn.functional.batch_norm: batch or running statistics, EMA update
    BatchNorm1d/2d        the layers: own γ, β and the running statistics, read the global flag
    recompute_bn_stats    population statistics after training (the paper's Algorithm 2)

The composed and the fused batch norm have the same signature and return the same things, and
are pure functions of their inputs; only ``batch_norm`` touches the running buffers.
"""
import math

import numpy as np

from .. import modes
from ..checks import check_int, check_real, float_dtype
from ..ops.fused import BatchNormFused, bn_axes, bn_param_shape
from ..tensor import Tensor
from .module import Module, Parameter

# --------------------------------------------------------------------------- the two batch norms
# Both return (y, batch_mean, batch_var): y a Tensor shaped like x, (N, C, ...); the batch mean
# and the *biased* batch variance as (C,) arrays, for the caller's running statistics.


def batch_norm_composed(x, weight, bias, eps=1e-5):
    """Training-mode batch norm from primitive ops (11 graph nodes); see batch_norm_fused."""
    axes, shape = bn_axes(x), bn_param_shape(x)
    mean = x.mean(axis=axes, keepdims=True)                # (N, C, ...) -> (1, C, 1...)
    centred = x - mean                                     # centre first: stable variance
    var = (centred * centred).mean(axis=axes, keepdims=True)  # biased σ², (1, C, 1...)
    y = centred / (var + eps).sqrt()                       # x̂, (N, C, ...)
    if weight is not None:
        y = y * weight.reshape(shape)                      # γ (C,) -> (1, C, 1...)
    if bias is not None:
        y = y + bias.reshape(shape)                        # β (C,) -> (1, C, 1...)
    return y, mean.data.reshape(-1), var.data.reshape(-1)


def batch_norm_fused(x, weight, bias, eps=1e-5):
    """Training-mode batch norm as one op with a hand-written backward (ops/fused.py).

    y = γ (x - μ) / sqrt(σ² + eps) + β with μ, σ² (biased) per channel C over N and every
    position. x: (N, C), (N, C, L) or (N, C, H, W); weight, bias: (C,) Tensors or None.
    """
    y, mean, var, _ = BatchNormFused.apply(x, weight, bias, eps)   # _: n, the values per channel
    return y, mean, var


def batch_norm_eval(x, mean, var, weight, bias, eps=1e-5, fused=True):
    """Inference-mode batch norm with given statistics (arrays (C,)); the same two ways.

    composed: the textbook (x - mean) / sqrt(var + eps) · γ + β, four elementwise nodes.
    fused: folded into one affine map, x · scale + shift with scale = γ / sqrt(var + eps) and
    shift = β - mean · scale (a (C,) computation), then two elementwise nodes over x.
    """
    shape = bn_param_shape(x)
    weight = None if weight is None else weight.reshape(shape)   # (C,) -> (1, C, 1...)
    bias = None if bias is None else bias.reshape(shape)
    mean, inv_std = mean.reshape(shape), 1.0 / np.sqrt(var.reshape(shape) + eps)
    if not fused:
        y = (x - mean) * inv_std
        y = y if weight is None else y * weight
        return y if bias is None else y + bias
    scale = inv_std if weight is None else weight * inv_std     # a Tensor when γ is learned
    shift = -mean * scale if bias is None else bias - mean * scale
    return x * scale + shift


# --------------------------------------------------------------------------- the functional form
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, fused=True):
    """torch.nn.functional.batch_norm: normalise x (N, C, ...) per channel C.

    training=True: batch statistics over N and every position (n = N·L or N·H·W values per
    channel); if the running buffers (ndarrays (C,)) are given they are updated in place:
    running = (1 - momentum) * running + momentum * batch, with the *unbiased* batch variance
    (n / (n - 1) times the biased one) fed to running_var.
    training=False: normalise with running_mean / running_var; nothing changes.
    """
    channels = _bn_channels(x, running_mean, running_var, weight, bias)
    if training:
        n = _values_per_channel(x, channels)
        normalise = batch_norm_fused if fused else batch_norm_composed
        y, mean, var = normalise(x, weight, bias, eps)
        _update_running_stats(running_mean, running_var, mean, var, n, momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    return batch_norm_eval(x, running_mean, running_var, weight, bias, eps, fused)


def _values_per_channel(x, channels):
    """n = N·L (or N·H·W): training needs two or more (one value has no variance)."""
    n = x.size // channels
    if n < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got input of "
                         f"shape {x.shape} ({n} value per channel)")
    return n


def _update_running_stats(running_mean, running_var, mean, var, n, momentum):
    """In place (where given): running = (1 - momentum) · running + momentum · batch, with the
    unbiased n/(n - 1) · σ² into running_var. mean, var: the batch's (C,), var biased."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * n / (n - 1) * var


def _bn_channels(x, running_mean, running_var, weight, bias):
    """The one check of a batch norm call: x (N, C, ...) against the per-channel arrays and
    their dtype. Returns C."""
    if not isinstance(x, Tensor):
        raise TypeError(f"batch_norm expects a Tensor input, got {type(x).__name__}")
    shape, dtype = x.data.shape, x.data.dtype   # read once: this runs on every call
    if len(shape) < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got {len(shape)}-D input of "
                         f"shape {shape}")
    channels = shape[1]
    for name, ref in (("running_mean", running_mean), ("running_var", running_var),
                      ("weight", weight), ("bias", bias)):
        if ref is None:
            continue
        ref = ref.data if isinstance(ref, Tensor) else ref
        if ref.shape != (channels,):
            raise ValueError(f"batch_norm: input has C={channels} channels (shape {shape}) but "
                             f"{name} has shape {ref.shape}")
        if ref.dtype != dtype:
            raise TypeError(f"batch_norm has {ref.dtype} parameters but got input of dtype {dtype} "
                            f"({name}); convert the input or call .to({dtype}) on the model")
    return channels


# --------------------------------------------------------------------------- the layer
def check_bn_args(layer, num_features, eps, momentum):
    """A batch-norm layer's constructor arguments: C >= 1, eps > 0, momentum None or in [0, 1]."""
    check_int(num_features, "num_features", layer, minimum=1)
    if not 0 < check_real(eps, "eps", layer) < math.inf:
        raise ValueError(f"{layer}: eps must be a positive number (it keeps 1/sqrt(var + eps) "
                         f"finite), got {eps!r}")
    if momentum is not None and not 0 <= check_real(momentum, "momentum", layer) <= 1:
        raise ValueError(f"{layer}: momentum must be None (a cumulative average) or a number in "
                         f"[0, 1], got {momentum!r}")


class _BatchNorm(Module):
    """Batch normalisation of (N, C, ...) input, statistics per channel C (over N and every
    position); BatchNorm1d and BatchNorm2d only say which input ranks they accept.

    Training (global flag on): y = γ (x - μ_B) / sqrt(σ²_B + eps) + β with the batch mean μ_B and
    the *biased* batch variance σ²_B; then, if ``track_running_stats``,
        running_mean = (1 - momentum) · running_mean + momentum · μ_B
        running_var  = (1 - momentum) · running_var  + momentum · σ²_B · n/(n-1)   (unbiased)
    with n = N·L (or N·H·W) values per channel (other texts write decay · running +
    (1 - decay) · batch, with decay = 1 - momentum). ``momentum=None``: a cumulative average,
    factor 1/num_batches_tracked. The running statistics carry across epochs.
    Eval (flag off): normalise with the running statistics; nothing is updated. Without
    ``track_running_stats`` the buffers are None and batch statistics are used in both modes.
    ``frozen=True`` (set by ``nn.utils.freeze_batch_norm``): the one per-layer exception to the
    global flag: always normalise with the running statistics and never update them, while
    gradients still flow to x, γ and β (fine-tuning with fixed statistics).
    ``fused=True``: one op with a hand-written backward; ``fused=False``: primitive ops.
    """

    ranks = ()                         # the input ranks a subclass accepts
    layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 fused=True, dtype=None):
        super().__init__()
        check_bn_args(type(self).__name__, num_features, eps, momentum)
        dtype = np.dtype(np.float32) if dtype is None else float_dtype(dtype, type(self).__name__)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats, self.fused = affine, track_running_stats, fused
        self.frozen = False
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
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:  # the layer's contract;
            # batch_norm checks x against the arrays it is given (dtype, their shapes)
            layout = self.layout.format(C=self.num_features)
            raise ValueError(f"{type(self).__name__}({self.num_features}) expected input of shape "
                             f"{layout}, got shape {x.shape}")
        training = modes.is_training() and not self.frozen
        use_batch_stats = training or not self.track_running_stats
        update = training and self.track_running_stats
        factor = 0.0
        if update:
            batches = int(self.num_batches_tracked) + 1
            factor = 1.0 / batches if self.momentum is None else self.momentum
        y = self._normalise(x, use_batch_stats, factor)
        if update:  # counted only after batch_norm succeeded: a rejected batch changes nothing
            self.num_batches_tracked += 1
        return y

    def _normalise(self, x, training, momentum):
        """batch_norm with this layer's arrays (BatchRenorm trains otherwise)."""
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=training, momentum=momentum, eps=self.eps, fused=self.fused)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, fused={self.fused}"
                + (", frozen=True" if self.frozen else ""))


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input; see _BatchNorm for the full story."""

    ranks = (2, 3)
    layout = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, statistics per channel over N·H·W values (after a
    convolution); see _BatchNorm. Training needs N·H·W ≥ 2: N = 1 trains when H·W > 1."""

    ranks = (4,)
    layout = "(N, {C}, H, W)"


# --------------------------------------------------------------------------- after training
def recompute_bn_stats(model, batches, estimator="paper"):
    """Replace every batch-norm layer's running statistics by population statistics computed
    over ``batches`` (arrays X, or (X, y) pairs; Tensors or ndarrays) with the weights as they
    are now, instead of the moving average. Per channel, batch b has n_b values, mean μ_b and
    biased variance σ²_b; N = Σ n_b, and the population mean is μ = Σ n_b μ_b / N. Variance:

    ``estimator="paper"``: the BN paper's Algorithm 2, the size-weighted mean of the *unbiased*
    batch variances, Σ n_b · σ²_b · n_b/(n_b - 1) / N (= m/(m-1) · E[σ²_B] for equal sizes m).
    ``estimator="pooled"``: PreciseBN's default (fvcore), the variance of all N values around μ,
    Σ n_b (σ²_b + (μ_b - μ)²) / N (biased; computed centred, never as E[x²] - μ²). It also counts
    how the batch means scatter, which the paper's estimator leaves out: the two differ most for
    small batches.

    Runs forward in training mode under no_grad (frozen layers included); the global flag and
    each layer's momentum, frozen flag and num_batches_tracked are as before afterwards. All or
    nothing: on an error, or if ``batches`` is empty, every buffer is put back as it was.
    Returns the number of batches.
    """
    if estimator not in ("paper", "pooled"):
        raise ValueError(f"recompute_bn_stats: estimator must be 'paper' or 'pooled', got {estimator!r}")
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.frozen, m.running_mean.copy(), m.running_var.copy(),
              m.num_batches_tracked.copy()) for m in layers]
    stats = {id(m): [] for m in layers}                 # per layer: (n_b, μ_b, σ²_b) per batch
    sizes = {}
    handles = [m.register_forward_pre_hook(lambda m, args: sizes.__setitem__(id(m), args[0].size // args[0].shape[1]))
               for m in layers]
    count, done = 0, False
    try:
        for m in layers:
            m.momentum, m.frozen = 1.0, False           # running = exactly this batch's statistics
        with modes.no_grad(), modes.train_mode():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x if isinstance(x, Tensor) else Tensor(x))
                for m in layers:
                    n = sizes[id(m)]                    # values per channel in this batch
                    stats[id(m)].append((n, m.running_mean.copy(), m.running_var * ((n - 1) / n)))
                count += 1
        if count == 0:
            raise ValueError("recompute_bn_stats: no batches were given")
        for m in layers:
            n, mean, var = (np.array(column) for column in zip(*stats[id(m)]))   # (B,), (B, C), (B, C)
            total, w = n.sum(), n[:, None]
            mu = (w * mean).sum(axis=0) / total
            if estimator == "paper":
                pop_var = (w * var * (w / (w - 1))).sum(axis=0) / total
            else:
                pop_var = (w * (var + (mean - mu) ** 2)).sum(axis=0) / total
            m.running_mean[...], m.running_var[...] = mu, pop_var
        done = True
    finally:
        for h in handles:
            h.remove()
        for m, (momentum, frozen, mean, var, tracked) in zip(layers, saved):
            m.momentum, m.frozen = momentum, frozen
            if not done:
                m.running_mean[...], m.running_var[...] = mean, var
            m.num_batches_tracked[...] = tracked
    return count
