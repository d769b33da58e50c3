"""examples/helpers/bn_stats.py: the batch-norm layers of a model and the gap between two models'
running statistics (means in the reference's standard deviations, variances as ratios)."""
import copy

import numpy as np

import minigrad as mg
from minigrad import nn

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from helpers import bn_stats  # noqa: E402


def model():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Conv1d(1, 2, 1), nn.BatchNorm2d(5))


def test_bn_layers_in_module_order():
    m = model()
    assert bn_stats.bn_layers(m) == [m[1], m[4]]


def test_stats_gap():
    a = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(2))
    b = copy.deepcopy(a)
    assert bn_stats.stats_gap(a, b) == (0.0, 0.0)
    b[0].running_var[...] = [4.0, 1.0, 1.0]                      # reference std 2 in channel 0
    a[0].running_mean[...] = [1.0, 0.0, 0.0]
    a[1].running_var[...] = [1.0, 1.5]
    per_layer = bn_stats.stats_gap_per_layer(a, b)
    np.testing.assert_allclose(per_layer, [(0.5, 0.75), (0.0, 0.5)])   # |1 - 0| / 2; |1/4 - 1|; |1.5 - 1|
    assert bn_stats.stats_gap(a, b) == (0.5, 0.75)
    assert bn_stats.stats_gap(nn.Linear(2, 2), nn.Linear(2, 2)) == (0.0, 0.0)
