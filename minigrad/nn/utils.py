"""What practitioners do with batch norm after training: fold it away, freeze or recompute its statistics.

    fuse_linear_bn_eval(linear, bn)   a new Linear computing linear then bn (eval mode), in one
    fuse_conv_bn_eval(conv, bn)       the same for a Conv1d/Conv2d followed by batch norm
    fold_batch_norm(model)            a copy of a Sequential with every such pair folded
    freeze_batch_norm(model)          BN layers use (and keep) their running statistics always
    batch_renorm_schedule(model, step)  BatchRenorm's clip bounds at a training step (Ioffe 2017)
    recompute_bn_stats(model, batches)  population statistics after training (the paper's Algorithm 2)

In eval mode batch norm is an affine map per channel, y = x·s + (β - mean·s) with
s = γ / sqrt(running_var + eps), so it folds into the layer before it (PyTorch's formulas,
torch.nn.utils.fusion): W' = W·s per output channel, b' = (b - mean)·s + β. That algebra
needs batch norm's channel axis (axis 1) to be the layer's output axis: always so for a
convolution, (N, C_out, ...); for a Linear only on (N, features) input, which the folded
Linear (``FoldedLinear``) checks at every call. The original layers are never modified.
BatchRenorm folds too (its eval mode is BatchNorm's); GroupNorm and LayerNorm do not: their
statistics are per sample, computed at inference from the input itself.
"""
import copy
import functools
import numbers

import numpy as np

from .. import distributed, modes
from ..tensor import Tensor
from .batchnorm import BatchNorm1d, BatchNorm2d, SyncBatchNorm, _BatchNorm
from .batchrenorm import BatchRenorm1d, BatchRenorm2d, _BatchRenorm
from .layers import Linear
from .module import Module, Parameter, Sequential
from .normalization import GroupNorm, LayerNorm


class FoldedLinear(Linear):
    """Linear followed by BatchNorm1d (eval mode), folded: y = x @ W'ᵀ + b', x: (N, in_features).

    Equal to the pair only on (N, in_features) input: there batch norm's channel axis 1 is the
    Linear's output axis. On (N, C, L) input the Linear maps L and batch norm normalised C, so
    no Linear can stand for them; such input is refused (ValueError), never computed wrongly."""

    def __init__(self, weight, bias):
        Module.__init__(self)             # no random initialisation: the folded values are given
        self.out_features, self.in_features = weight.shape
        self.weight, self.bias = weight, bias

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(f"FoldedLinear (a Linear folded with the BatchNorm1d after it) takes input of "
                             f"shape (N, {self.in_features}), got shape {x.shape}: on input of another "
                             f"rank batch norm normalised another axis than the Linear's outputs, so the "
                             f"fold does not hold; use the unfolded model")
        return super().forward(x)


def fuse_linear_bn_eval(linear, bn):
    """A FoldedLinear equal to ``bn(linear(x))`` in eval mode for x of shape (N, in_features):
    W' = W·s, b' = (b - mean)·s + β, s = γ / sqrt(running_var + eps), per output feature.
    W: (out, in), all others (out,). ``linear`` a Linear, ``bn`` a BatchNorm1d."""
    return _fuse(linear, bn, "fuse_linear_bn_eval")


def fuse_conv_bn_eval(conv, bn):
    """A new Conv1d (Conv2d) equal to ``bn(conv(x))`` in eval mode, ``bn`` a BatchNorm1d
    (BatchNorm2d): the weight (C_out, C_in, *kernel) is scaled per output channel, and a bias
    is made if the conv had none."""
    return _fuse(conv, bn, "fuse_conv_bn_eval")


def _pairs(name):
    """What the fusion ``name`` takes: (how to say it, {layer class: its batch norm class})."""
    from .conv import Conv1d, Conv2d   # here: conv.py builds on this package's modules
    if name == "fuse_linear_bn_eval":
        return "a Linear", {Linear: (BatchNorm1d, BatchRenorm1d), FoldedLinear: (BatchNorm1d, BatchRenorm1d)}
    return "a Conv1d or Conv2d", {Conv1d: (BatchNorm1d, BatchRenorm1d), Conv2d: (BatchNorm2d, BatchRenorm2d)}


def _fuse(layer, bn, name):
    """The one implementation of both fusions (they differ only in the weight's trailing axes)."""
    if isinstance(bn, (GroupNorm, LayerNorm)):
        raise TypeError(f"{name}: {type(bn).__name__} does not fold: it normalises each sample with "
                        f"statistics computed at inference from that sample itself, so no fixed "
                        f"affine map, and no folded layer, reproduces it")
    expected, pairs = _pairs(name)
    if type(layer) not in pairs:       # exact types: a subclass may compute something else
        raise TypeError(f"{name}: expected {expected} first, got {type(layer).__name__}")
    if type(bn) not in pairs[type(layer)]:
        raise TypeError(f"{name}: expected a {' or '.join(c.__name__ for c in pairs[type(layer)])} second "
                        f"(the batch norm that folds into a {type(layer).__name__}), got {type(bn).__name__}")
    if not bn.track_running_stats:
        raise ValueError(f"{name}: {bn!r} has no running statistics (track_running_stats=False), "
                         f"so it normalises with batch statistics and does not fold")
    if modes.is_training() and not bn.frozen:
        raise RuntimeError(f"{name}: fusion is for evaluation only (in training mode batch norm uses "
                           f"batch statistics, which no fixed layer can reproduce): call it under "
                           f"`with mg.eval_mode():`, or freeze the batch norm first")
    weight = layer.weight.data
    out = weight.shape[0]
    if bn.num_features != out:
        raise ValueError(f"{name}: {type(layer).__name__} has {out} outputs but {type(bn).__name__} has "
                         f"{bn.num_features} features" + (": it must normalise another axis (as after a "
                         f"Linear on (N, C, L) input), and then it does not fold" if isinstance(layer, Linear) else ""))
    if bn.running_var.dtype != weight.dtype:
        raise TypeError(f"{name}: {type(layer).__name__} is {weight.dtype} but "
                        f"{type(bn).__name__} is {bn.running_var.dtype}")
    gamma = np.ones(out, weight.dtype) if bn.weight is None else bn.weight.data
    beta = np.zeros(out, weight.dtype) if bn.bias is None else bn.bias.data
    scale = gamma / np.sqrt(bn.running_var + bn.eps)                       # s: (out,)
    bias = np.zeros(out, weight.dtype) if layer.bias is None else layer.bias.data
    trainable = layer.weight.requires_grad
    fused_weight = Parameter(weight * scale.reshape((out,) + (1,) * (weight.ndim - 1)),
                             requires_grad=trainable)                      # (out, ...) · (out, 1...)
    fused_bias = Parameter((bias - bn.running_mean) * scale + beta, requires_grad=trainable)
    if isinstance(layer, Linear):
        return FoldedLinear(fused_weight, fused_bias)
    fused = copy.deepcopy(layer)
    fused.weight, fused.bias = fused_weight, fused_bias
    return fused


def fold_batch_norm(model):
    """A copy of the Sequential ``model`` in which every Linear/Conv directly followed by its
    batch norm (Linear or Conv1d and BatchNorm1d, Conv2d and BatchNorm2d; BatchRenorm as BatchNorm) is replaced by their
    fusion, and that batch norm is gone (nested Sequentials too). For inference: equal to
    ``model`` in eval mode; a folded Linear refuses input other than (N, features), the only
    input on which its fold holds. The original is untouched."""
    if not isinstance(model, Sequential):
        raise TypeError(f"fold_batch_norm expects a Sequential, got {type(model).__name__}")
    pairs = {**_pairs("fuse_conv_bn_eval")[1], Linear: (BatchNorm1d, BatchRenorm1d)}
    layers, i, folded = list(model), 0, []
    while i < len(layers):
        layer = layers[i]
        after = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) in pairs and type(after) in pairs[type(layer)]:
            folded.append(_fuse(layer, after, "fuse_linear_bn_eval" if type(layer) is Linear else "fuse_conv_bn_eval"))
            i += 2
            continue
        folded.append(fold_batch_norm(layer) if isinstance(layer, Sequential) else copy.deepcopy(layer))
        i += 1
    return Sequential(*folded)


def freeze_batch_norm(module, frozen=True):
    """Set ``frozen`` on every batch-norm layer in ``module`` (itself included); returns module.

    A frozen layer normalises with its running statistics and never updates them, whatever the
    global train/eval flag says: the one per-layer exception to that flag, for fine-tuning with
    fixed statistics (a batch of one is fine). Gradients still flow through it to x, and to γ and
    β unless you also call ``requires_grad_(False)`` on them. ``frozen`` is an attribute, not
    state: it survives ``copy.deepcopy`` and ``load_state_dict``, and is not in ``state_dict``
    (which stays PyTorch's).
    """
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    if frozen:
        without = [type(m).__name__ for m in layers if not m.track_running_stats]
        if without:
            raise ValueError(f"freeze_batch_norm: {', '.join(without)} without running statistics "
                             f"(track_running_stats=False) cannot be frozen")
    for m in layers:
        m.frozen = bool(frozen)
    return module


def batch_renorm_schedule(model, step, r_max=3.0, d_max=5.0, warmup=5000, r_max_step=40000,
                          d_max_step=25000):
    """Set ``r_max`` and ``d_max`` of every BatchRenorm layer in ``model`` for training step
    ``step`` (0, 1, ...), and return the pair.

    Ioffe 2017 (Batch Renormalization, Section 4): batch norm alone (r_max = 1, d_max = 0) for
    the first 5,000 steps, then the bounds "gradually relaxed" to reach r_max = 3 at 40k steps
    and d_max = 5 at 25k steps. The paper does not give the ramp's shape; we ramp linearly
    from ``warmup`` to ``r_max_step`` (and to ``d_max_step``), as common implementations do
    (Chainer's, torchrl's). Those steps suit the paper's ImageNet runs; scale them to yours
    (the point: plain batch norm while the running statistics settle, then a slow release).
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"batch_renorm_schedule: step must be an int >= 0, got {step!r}")
    if isinstance(r_max, bool) or not isinstance(r_max, numbers.Real) or not r_max >= 1 \
            or isinstance(d_max, bool) or not isinstance(d_max, numbers.Real) or not d_max >= 0:
        raise ValueError(f"batch_renorm_schedule: the final bounds must be r_max >= 1 and d_max >= 0, "
                         f"got r_max={r_max!r}, d_max={d_max!r}")
    if not 0 <= warmup <= min(r_max_step, d_max_step):
        raise ValueError(f"batch_renorm_schedule: the ramp must start (warmup={warmup}) at 0 or later "
                         f"and no later than it ends (r_max_step={r_max_step}, d_max_step={d_max_step})")
    layers = [m for m in model.modules() if isinstance(m, _BatchRenorm)]
    if not layers:
        raise ValueError(f"batch_renorm_schedule: {type(model).__name__} has no BatchRenorm layer")

    def ramp(start, final, end_step):              # start until warmup, final from end_step on
        if step >= end_step:
            return float(final)
        if step <= warmup:
            return start
        return start + (final - start) * (step - warmup) / (end_step - warmup)   # warmup < step < end

    bounds = ramp(1.0, r_max, r_max_step), ramp(0.0, d_max, d_max_step)
    for m in layers:
        m.r_max, m.d_max = bounds                   # the layer's setters check the values
    return bounds


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

    Several ranks: every rank calls it with as many batches (its shard, from a DistributedSampler's
    loader). SyncBatchNorm layers then get the statistics of every rank's batches together, the
    same on every rank (global μ_b and σ²_b per step, weighted by the global n_b); plain batch norm
    layers keep this rank's own, as in training.
    """
    if estimator not in ("paper", "pooled"):
        raise ValueError(f"recompute_bn_stats: estimator must be 'paper' or 'pooled', got {estimator!r}")
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.frozen, m.running_mean.copy(), m.running_var.copy(),
              m.num_batches_tracked.copy()) for m in layers]
    stats = {id(m): [] for m in layers}                 # per layer: (n_b, μ_b, σ²_b) per batch
    sizes = {}
    handles = [m.register_forward_pre_hook(functools.partial(_count_values, sizes)) for m in layers]
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


def _count_values(sizes, layer, args):
    """recompute_bn_stats' pre-hook: the values per channel the layer's statistics are over, n_b
    = N·L, all ranks' for SyncBatchNorm (one all-reduce), into ``sizes[id(layer)]``."""
    n = args[0].size // args[0].shape[1]
    if isinstance(layer, SyncBatchNorm):
        n = int(distributed.all_reduce(np.array(n, np.int64)))
    sizes[id(layer)] = n
