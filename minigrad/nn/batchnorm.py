"""Everything batch norm, but the fused op itself (``ops/fused.py``): start reading here.

    batch_norm_composed   training-mode batch norm from primitive ops (every step a graph node)
    batch_norm_fused      the same as one op with a hand-written backward (BatchNormFused)
    batch_norm_eval       inference-mode batch norm with given statistics, the same two ways
    batch_norm            torch.nn.functional.batch_norm: batch or running statistics, EMA update
    BatchNorm1d/2d        the layers: own γ, β and the running statistics, read the global flag
    sync_batch_norm_composed / _fused, SyncBatchNorm   the same over every rank's batch (MPI)

The composed and the fused batch norm have the same signature and return the same things, and
are pure functions of their inputs; only ``batch_norm`` and the layers touch the running buffers.
(Population statistics after training: ``recompute_bn_stats`` in utils.py.)
"""
import math

import numpy as np

from .. import distributed, modes
from ..checks import check_int, check_real, float_dtype
from ..distributed import all_reduce
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
    channels, expected = shape[1], shape[1:2]
    for name, ref in (("running_mean", running_mean), ("running_var", running_var),
                      ("weight", weight), ("bias", bias)):
        if ref is None:
            continue
        ref = ref.data if isinstance(ref, Tensor) else ref
        if ref.dtype is dtype and ref.shape == expected:     # the usual case, at once
            continue
        if ref.shape != expected:
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
        training = modes.training and not self.frozen          # the global flag
        use_batch_stats = training or not self.track_running_stats
        update = training and self.track_running_stats
        factor = 0.0
        if update:
            tracked = self._buffers["num_batches_tracked"]   # a 0-d array: counted in place below
            factor = self.momentum if self.momentum is not None else 1.0 / (int(tracked) + 1)
        y = self._normalise(x, use_batch_stats, factor)
        if update:  # counted only after batch_norm succeeded: a rejected batch changes nothing
            tracked += 1
        return y

    def _normalise(self, x, training, momentum):
        """batch_norm with this layer's arrays (BatchRenorm trains otherwise). They are read
        from the tables: ``self.weight`` would fail first and go through Module.__getattr__."""
        params, buffers = self._parameters, self._buffers
        return batch_norm(x, buffers["running_mean"], buffers["running_var"], params["weight"],
                          params["bias"], training=training, momentum=momentum, eps=self.eps,
                          fused=self.fused)

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


# --------------------------------------------------------------------------- over every rank
# SyncBatchNorm: the statistics of the GLOBAL batch, every rank's. The job's loss is L = Σ_r L_r;
# rank r holds x_r, N_r samples of n_r = N_r·L values per channel (N_r may differ between ranks),
# and every rank normalises with n = Σ_r n_r, μ = Σ_r Σ x_r / n, σ² = Σ_r Σ (x_r - μ)² / n.
# Forward, two all-reduces: (Σ x, n_r) per channel, the count alongside so that each rank's batch
#   weighs by its size; then Σ (x - μ)², which needs the global μ first (the stable two-pass
#   variance, never E[x²] - μ²).
# Backward: x_r reaches every rank's loss through μ and σ², so batch norm's
#     dx = γ inv_std · (dy - Σ dy / n - (x - μ) · inv_std² Σ dy·(x - μ) / n)
#   holds with Σ over every rank's values: one all-reduce of (Σ dy, Σ dy·(x - μ)) per channel.
#   γ and β reach the loss only through this rank's y_r = γ x̂_r + β, so dγ = Σ dy_r·x̂_r and
#   dβ = Σ dy_r stay this rank's own (summing them here would count them P times): DDP averages
#   them over ranks with every other parameter's gradient.
# composed: autograd finds all of this by itself from the differentiable all_reduce (the adjoint
#   of a sum over ranks is a sum over ranks); fused: the kernel's ``sum_ranks`` hook carries
#   exactly these three sums. Both return (y, μ (C,), biased σ² (C,), n), n = Σ_r N_r·L.


def sync_batch_norm_composed(x, weight, bias, eps=1e-5):
    """Training-mode batch norm over every rank's batch: primitive ops and all_reduce."""
    axes, shape = bn_axes(x), bn_param_shape(x)
    n = _enough(int(all_reduce(np.array(x.size // x.shape[1]))), x)   # Σ_r N_r·L, exact
    mean = all_reduce(x.sum(axis=axes, keepdims=True)) / n  # (N, C, ...) -> (1, C, 1...), μ
    centred = x - mean                                      # centre first: stable variance
    var = all_reduce((centred * centred).sum(axis=axes, keepdims=True)) / n   # biased σ²
    y = centred / (var + eps).sqrt()                        # x̂, (N, C, ...)
    if weight is not None:
        y = y * weight.reshape(shape)                       # γ (C,) -> (1, C, 1...)
    if bias is not None:
        y = y + bias.reshape(shape)                         # β (C,) -> (1, C, 1...)
    return y, mean.data.reshape(-1), var.data.reshape(-1), n


def sync_batch_norm_fused(x, weight, bias, eps=1e-5):
    """The same as one op, BatchNormFused with ``sum_ranks``: two small all-reduces forward, one
    backward, unchecked (every rank passes the same C and dtype; SyncBatchNorm checks that once).
    Under create_graph its backward and ``rebuild_saved`` sum over ranks with the differentiable
    all_reduce, one call per sum, so second derivatives cross ranks too. World size 1: exactly
    batch_norm_fused (no hook at all)."""
    several = distributed.get_world_size() > 1
    y, mean, var, n = BatchNormFused.apply(x, weight, bias, eps, sum_ranks=_sum_over_ranks if several else None)
    return y, mean, var, _enough(n, x)     # n is known after the first sum, the same on every rank


def _sum_over_ranks(a):
    """The fused op's hook: arrays through the plain collective (the fast path), Tensors
    (create_graph) through the differentiable all_reduce."""
    return distributed._sum(a) if isinstance(a, np.ndarray) else all_reduce(a)


def _enough(n, x):
    """n, the values per channel over every rank, if training can use it (two or more)."""
    if n < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got {n} over all "
                         f"ranks (input of shape {x.shape} here)")
    return n


class SyncBatchNorm(_BatchNorm):
    """Batch norm of (N, C, ...) input whose training statistics are the global batch's.

    Training: y = γ (x - μ) / sqrt(σ² + eps) + β, with μ and the *biased* σ² per channel over
    every rank's N_r·L values (N_r may differ between ranks: each value counts once); running
    statistics as BatchNorm's, with the global n in the unbiased factor n/(n-1), so every rank
    holds the same buffers. Every rank must call it, in the same mode: training is a collective
    (the first such call checks that every rank's layer has the same form, C and dtype). Eval
    mode, frozen layers and track_running_stats=False out of training are BatchNorm's, on this
    rank alone. ``fused`` chooses sync_batch_norm_fused or _composed. World size 1: exactly
    BatchNorm1d/2d with the same ``fused``.
    """

    _agreed = None             # (fused, C, dtype) every rank was found to run (its first training call)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}) expected input of shape "
                             f"(N, {self.num_features}, ...), got shape {x.shape}")
        if not modes.is_training() or self.frozen:          # BatchNorm's, no collective
            return self._normalise(x, not self.track_running_stats, 0.0)
        _bn_channels(x, self.running_mean, self.running_var, self.weight, self.bias)
        layer = (self.fused, x.shape[1], x.dtype)          # a tuple: no text to format per call
        if self._agreed != layer:                          # once, and again if this layer changes:
            distributed._agree("SyncBatchNorm", f"{'fused' if self.fused else 'composed'} SyncBatchNorm("
                               f"{x.shape[1]}) on {x.dtype} input", "every rank must run the same layer")
            self._agreed = layer                           # (one Allgather of a checksum)
        normalise = sync_batch_norm_fused if self.fused else sync_batch_norm_composed
        y, mean, var, n = normalise(x, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            self.num_batches_tracked += 1
            factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
            _update_running_stats(self.running_mean, self.running_var, mean, var, n, factor)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every BatchNorm1d/2d in ``module``'s tree by a SyncBatchNorm, in place, and
        return the module (a new one if ``module`` itself is a batch norm). As in PyTorch the
        new layer takes over the very Parameters and buffer arrays (an optimizer built before
        still holds them); it keeps ``fused`` and the frozen flag."""
        converted = module
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            like = module.running_mean if module.track_running_stats else module.weight
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, module.fused,
                            dtype=None if like is None else like.dtype)
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            if module.track_running_stats:
                for name in ("running_mean", "running_var", "num_batches_tracked"):
                    setattr(converted, name, getattr(module, name))
            converted.frozen = module.frozen
        for name, child in list(converted.named_children()):
            converted._modules[name] = cls.convert_sync_batchnorm(child)
        return converted
