"""Batch-norm layers of a model, and how far two models' running statistics are apart.

bn_inference.py and the after-training study compare the running statistics of a model with
those of a copy (population statistics, an average, ...). Nothing here changes a model.
"""
import numpy as np

from minigrad import nn


def bn_layers(model):
    """The model's BatchNorm1d / BatchNorm2d / SyncBatchNorm layers, in module order."""
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm))]


def stats_gap_per_layer(model, reference):
    """Per BN layer, over its channels: (max |mean difference| in the reference's standard
    deviations, max |variance ratio - 1|) between the two models' running statistics."""
    return [(float(np.max(np.abs(a.running_mean - b.running_mean) / np.sqrt(b.running_var))),
             float(np.max(np.abs(a.running_var / b.running_var - 1))))
            for a, b in zip(bn_layers(model), bn_layers(reference))]


def stats_gap(model, reference):
    """The same over all BN channels of the model: the worst layer's (mean gap, variance gap),
    each maximised on its own; (0.0, 0.0) for a model without batch norm."""
    per_layer = stats_gap_per_layer(model, reference)
    return max([0.0] + [d_mean for d_mean, _ in per_layer]), max([0.0] + [d_var for _, d_var in per_layer])
