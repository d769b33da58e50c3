"""What practitioners do with batch norm after training: fold it away, or freeze its statistics.

    fuse_linear_bn_eval(linear, bn)   a new Linear computing linear then bn (eval mode), in one
    fuse_conv_bn_eval(conv, bn)       the same for a Conv1d/Conv2d followed by batch norm
    fold_batch_norm(model)            a copy of a Sequential with every such pair folded
    freeze_batch_norm(model)          BN layers use (and keep) their running statistics always

In eval mode batch norm is an affine map per channel, y = x·s + (β - mean·s) with
s = γ / sqrt(running_var + eps), so it folds into the layer before it (PyTorch's formulas,
torch.nn.utils.fusion): W' = W·s per output channel, b' = (b - mean)·s + β. The original
layers are never modified.
"""
import copy

import numpy as np

from .. import modes
from .batchnorm import BatchNorm1d, _BatchNorm
from .layers import Linear
from .module import Parameter, Sequential


def fuse_linear_bn_eval(linear, bn):
    """A new Linear equal to ``bn(linear(x))`` in eval mode: W' = W·s, b' = (b - mean)·s + β,
    s = γ / sqrt(running_var + eps), per output feature. W: (out, in), all others (out,)."""
    return _fuse(linear, bn, "fuse_linear_bn_eval")


def fuse_conv_bn_eval(conv, bn):
    """A new Conv (1-D or 2-D) equal to ``bn(conv(x))`` in eval mode: the weight (C_out, C_in,
    *kernel) is scaled per output channel, and a bias is made if the conv had none."""
    return _fuse(conv, bn, "fuse_conv_bn_eval")


def _fuse(layer, bn, name):
    """The one implementation of both fusions (they differ only in the weight's trailing axes)."""
    if not isinstance(bn, _BatchNorm):
        raise TypeError(f"{name}: expected a BatchNorm layer second, got {type(bn).__name__}")
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
        raise ValueError(f"{name}: {type(layer).__name__} has {out} outputs but "
                         f"{type(bn).__name__} has {bn.num_features} features")
    if bn.running_var.dtype != weight.dtype:
        raise TypeError(f"{name}: {type(layer).__name__} is {weight.dtype} but "
                        f"{type(bn).__name__} is {bn.running_var.dtype}")
    gamma = np.ones(out, weight.dtype) if bn.weight is None else bn.weight.data
    beta = np.zeros(out, weight.dtype) if bn.bias is None else bn.bias.data
    scale = gamma / np.sqrt(bn.running_var + bn.eps)                       # s: (out,)
    bias = np.zeros(out, weight.dtype) if layer.bias is None else layer.bias.data
    fused = copy.deepcopy(layer)
    fused.weight = Parameter(weight * scale.reshape((out,) + (1,) * (weight.ndim - 1)),
                             requires_grad=layer.weight.requires_grad)     # (out, ...) · (out, 1...)
    fused.bias = Parameter((bias - bn.running_mean) * scale + beta,
                           requires_grad=layer.weight.requires_grad)
    return fused


def _foldable():
    """Which layer a BN layer folds into: {layer class: BN class}."""
    from .conv import Conv1d, Conv2d   # here: conv.py builds on this package's modules
    from .batchnorm import BatchNorm2d
    return {Linear: BatchNorm1d, Conv1d: BatchNorm1d, Conv2d: BatchNorm2d}


def fold_batch_norm(model):
    """A copy of the Sequential ``model`` in which every Linear/Conv directly followed by its
    batch norm is replaced by their fusion, and that batch norm is gone (nested Sequentials
    too). For inference: equal to ``model`` in eval mode; the original is untouched."""
    if not isinstance(model, Sequential):
        raise TypeError(f"fold_batch_norm expects a Sequential, got {type(model).__name__}")
    pairs, layers, i = _foldable(), list(model), 0
    folded = []
    while i < len(layers):
        layer = layers[i]
        after = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) in pairs and type(after) is pairs[type(layer)]:
            name = "fuse_linear_bn_eval" if isinstance(layer, Linear) else "fuse_conv_bn_eval"
            folded.append(_fuse(layer, after, name))
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
