"""SyncBatchNorm: batch norm whose training statistics are those of the GLOBAL batch, all ranks.

    sync_batch_norm_composed   primitive ops plus the differentiable all_reduce: autograd
                               derives the synchronised backward by itself
    SyncBatchNorm              the layer (PyTorch's), and convert_sync_batchnorm(model)

Invariant: every rank computes bitwise the same μ, σ² and running statistics (all come from
all-reduced sums); ranks may hold unequal batches (count-weighted); at world size 1 it is
batch norm exactly. Compare ``batchnorm.py``: the same layer, with per-replica statistics.
"""
import numpy as np

from .. import modes
from ..distributed import all_reduce
from ..ops.fused import bn_axes, bn_param_shape
from .batchnorm import _BatchNorm, _bn_channels, batch_norm


# Returns (y, μ (C,), biased σ² (C,), n): y a Tensor shaped like x, (N, C, ...); n the number of
# values per channel in the global batch, Σ_r N_r·L (ranks' N_r may differ).
def sync_batch_norm_composed(x, weight, bias, eps=1e-5):
    """Training-mode batch norm over every rank's batch, from primitive ops and all_reduce.

    Centred first, as batch norm: all-reduce (n, Σx) for μ, then Σ(x - μ)² for σ², never
    E[x²] - μ². Why autograd gets the backward right: the job's loss is L = Σ_r L_r, and the
    only path from one rank's x to another rank's loss runs through the two all_reduce nodes,
    whose backward sums the incoming gradients over ranks (the adjoint of a sum over ranks is a
    sum over ranks). Written out, the result is batch norm's backward with global sums,
        dx = γ inv_std · (dy - Σ_all dy / n - x̂ · Σ_all dy·x̂ / n),
    two all-reduces per layer, of (Σ dy, Σ dy·(x - μ)) — what a fused op would send.
    """
    axes, shape = bn_axes(x), bn_param_shape(x)
    n = int(all_reduce(np.array(x.size // x.shape[1], dtype=np.int64)))   # Σ_r N_r·L, exact
    if n < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got {n} over all "
                         f"ranks (input of shape {x.shape} here)")
    mean = all_reduce(x.sum(axis=axes, keepdims=True)) / n     # (N, C, ...) -> (1, C, 1...), μ
    centred = x - mean                                         # centre first: stable variance
    var = all_reduce((centred * centred).sum(axis=axes, keepdims=True)) / n   # biased σ²
    y = centred / (var + eps).sqrt()                           # x̂, (N, C, ...)
    if weight is not None:
        y = y * weight.reshape(shape)                          # γ (C,) -> (1, C, 1...)
    if bias is not None:
        y = y + bias.reshape(shape)                            # β (C,) -> (1, C, 1...)
    return y, mean.data.reshape(-1), var.data.reshape(-1), n


class SyncBatchNorm(_BatchNorm):
    """Batch norm of (N, C, ...) input whose training statistics are the global batch's.

    Training: y = γ (x - μ) / sqrt(σ² + eps) + β, with μ and the *biased* σ² per channel over
    every rank's N_r·L values (a rank's N_r may differ from another's: each value counts once).
    Running statistics as BatchNorm's, with the global n in the unbiased factor n/(n-1), so
    every rank holds the same buffers. Eval mode, frozen layers and track_running_stats=False
    are as in BatchNorm. Every rank must call it in training mode (it is a collective); at world
    size 1 it computes exactly what BatchNorm1d/2d(fused=False) computes.
    Composed for now (primitive ops, autograd's backward); a fused op will join it.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, fused=False,
                         dtype=dtype)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}) expected input of shape "
                             f"(N, {self.num_features}, ...), got shape {x.shape}")
        training = modes.is_training() and not self.frozen
        if not training and self.track_running_stats:
            return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              training=False, eps=self.eps, fused=self.fused)
        _bn_channels(x, self.running_mean, self.running_var, self.weight, self.bias)
        y, mean, var, n = sync_batch_norm_composed(x, self.weight, self.bias, self.eps)
        if training and self.track_running_stats:
            self.num_batches_tracked += 1
            factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean *= 1 - factor
            self.running_mean += factor * mean
            self.running_var *= 1 - factor
            self.running_var += factor * n / (n - 1) * var              # unbiased, global n
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}" + (", frozen=True" if self.frozen else ""))

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every BatchNorm1d/2d in ``module``'s tree by a SyncBatchNorm, in place, and
        return the module (a new one if ``module`` itself is a batch norm). As in PyTorch the
        new layer takes over the very Parameters and buffer arrays (an optimizer built before
        still holds them), and the frozen flag."""
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            like = module.running_mean if module.track_running_stats else module.weight
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, dtype=None if like is None else like.dtype)
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            if module.track_running_stats:
                for name in ("running_mean", "running_var", "num_batches_tracked"):
                    setattr(converted, name, getattr(module, name))
            converted.frozen = module.frozen
        for name, child in list(converted.named_children()):
            converted._modules[name] = cls.convert_sync_batchnorm(child)
        return converted
