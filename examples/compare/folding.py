"""Folding batch norm into the layer before it (nn.utils.fold_batch_norm), measured.

For an (N, C) case the layer before BN is Linear(C, C); for (N, C, L) a Conv1d(C, C, 3, padding=1)
and for (N, C, H, W) a Conv2d(C, C, 3, padding=1), each followed by its batch norm with running
statistics from a few training steps. Measured: folded against original in eval mode (float64
and float32), the same in training mode (where folding is wrong: BN then uses batch statistics),
and what folding saves: graph nodes of an eval forward and its time.
"""
import statistics
import time

import numpy as np

import minigrad as mg
from minigrad import nn

from .numbers import relative_error


def pair(shape, dtype, seed):
    """Sequential(layer, batch norm) for the case's layout, with γ, β and statistics away from (1, 0)."""
    channels, rng = shape[1], np.random.default_rng(seed + 200)
    mg.manual_seed(seed)
    if len(shape) == 2:
        layer, norm = nn.Linear(channels, channels, dtype=dtype), nn.BatchNorm1d(channels, dtype=dtype)
    elif len(shape) == 3:
        layer, norm = nn.Conv1d(channels, channels, 3, padding=1, dtype=dtype), nn.BatchNorm1d(channels, dtype=dtype)
    else:
        layer, norm = nn.Conv2d(channels, channels, 3, padding=1, dtype=dtype), nn.BatchNorm2d(channels, dtype=dtype)
    norm.weight.data[...] = rng.uniform(0.5, 2.0, channels)
    norm.bias.data[...] = rng.standard_normal(channels)
    model = nn.Sequential(layer, norm)
    with mg.train_mode(), mg.no_grad():
        for _ in range(3):
            model(mg.tensor((2 + 3 * rng.standard_normal(shape)).astype(dtype)))
    return model


def folding(shape, seed, repeats):
    """{"eval_float64", "eval_float32", "training_float64": max rel differences folded vs original,
    "nodes": (original, folded), "eval_s": (original, folded) median seconds per eval batch}."""
    result = {}
    x64 = 2 + 3 * np.random.default_rng(seed + 300).standard_normal(shape)
    for dtype in (np.float64, np.float32):
        model = pair(shape, dtype, seed)
        x = mg.tensor(x64.astype(dtype))
        with mg.eval_mode(), mg.no_grad():
            folded = nn.utils.fold_batch_norm(model)
            result[f"eval_{np.dtype(dtype).name}"] = relative_error(folded(x).data, model(x).data)
        if dtype is np.float64:
            with mg.train_mode(), mg.no_grad():
                result["training_float64"] = relative_error(folded(x).data, model(x).data)
            result["nodes"], result["eval_s"] = cost(model, folded, x, repeats)
    return result


def cost(model, folded, x, repeats):
    """Graph nodes of one eval forward (x requiring grad, so every op is recorded) and the
    median time of an eval forward under no_grad, interleaved."""
    xg = mg.tensor(x.data, requires_grad=True)
    with mg.eval_mode():
        nodes = (mg.graph.count_nodes(model(xg)), mg.graph.count_nodes(folded(xg)))
    times = ([], [])
    with mg.eval_mode(), mg.no_grad():
        for _ in range(repeats + 1):
            for k, net in enumerate((model, folded)):
                start = time.perf_counter()
                net(x)
                times[k].append(time.perf_counter() - start)
    return nodes, tuple(statistics.median(t[1:]) for t in times)      # the first run warms up
