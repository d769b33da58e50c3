"""The measurements: fused against composed batch norm on one case (a shape and a dtype).

``compare_case`` returns plain dicts of numbers (for tests, JSON and plots): agreement, truth
(finite differences), numerics (float32 against float64) and cost (nodes, bytes, time), plus the
optional PyTorch column (``torch_column.py``) and the verdict in words (``report.py``). Both batch
norms always see the same inputs and the same *random* upstream gradient: with a constant one,
dx is identically zero.
"""
import time

import numpy as np

import minigrad as mg
from minigrad import modes
from minigrad.autograd.gradcheck import numerical_gradient
from minigrad.nn import batchnorm as bn
from minigrad.ops.fused import bn_axes, bn_param_shape
from minigrad.tensor import Tensor

from .folding import folding
from .numbers import closer, difference, medians, relative_error
from .report import verdict
from .second_order import second_order
from .torch_column import torch_case

EPS = 1e-5
IMPLS = {"fused": bn.batch_norm_fused, "composed": bn.batch_norm_composed}
GRADS = ("dx", "dweight", "dbias")
TRUTH_KEEP = {2: (8, 6), 3: (8, 6, 4), 4: (4, 3, 3, 3)}   # finite differences on a reduced copy
OFFSET = 1e4             # x = 1e4 + noise: E[x²] - E[x]² loses every digit of σ² in float32


def make_inputs(shape, dtype, affine, seed, offset=None):
    """x, weight, bias (None without affine) and a random upstream gradient g, as arrays.

    x = 1 + 3·noise by default, or ``offset`` + noise; γ and β are random too, so dγ and dβ are
    tested away from the (1, 0) initialisation."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    x = 1 + 3 * noise if offset is None else offset + noise
    channels = shape[1]
    weight = 1 + 0.5 * rng.standard_normal(channels) if affine else None
    bias = rng.standard_normal(channels) if affine else None
    g = rng.standard_normal(shape)                      # random upstream gradient, never ones
    return tuple(None if a is None else np.asarray(a, dtype=dtype) for a in (x, weight, bias, g))


def training_batches(shape, dtype, seed, steps):
    """The batches of the ``steps`` training steps before running statistics are compared."""
    return [make_inputs(shape, dtype, False, seed + 1 + k)[0] for k in range(steps)]


def run_bn(impl, x, weight, bias, g):
    """One training-mode forward and backward of ``impl``; returns y and the gradients."""
    xt = Tensor(x, requires_grad=True)
    wt = None if weight is None else Tensor(weight, requires_grad=True)
    bt = None if bias is None else Tensor(bias, requires_grad=True)
    y, _, _ = IMPLS[impl](xt, wt, bt, EPS)
    y.backward(g)
    return {"y": y.data, "dx": xt.grad, "dweight": None if wt is None else wt.grad,
            "dbias": None if bt is None else bt.grad}


def layer_outputs(impl, x, weight, bias, batches, momentum):
    """Running statistics after one training step per batch, then the eval-mode output on x."""
    layer_class = bn.BatchNorm2d if x.ndim == 4 else bn.BatchNorm1d
    layer = layer_class(x.shape[1], eps=EPS, momentum=momentum, affine=weight is not None,
                        fused=impl == "fused", dtype=x.dtype)
    if weight is not None:
        layer.weight.data[...], layer.bias.data[...] = weight, bias
    with modes.no_grad():
        with modes.train_mode():
            for batch in batches:
                layer(Tensor(batch))
        with modes.eval_mode():
            y_eval = layer(Tensor(x)).data
    return {"running_mean": layer.running_mean.copy(), "running_var": layer.running_var.copy(),
            "eval_y": y_eval}


def agreement(shape, dtype, affine, momentum, seed, steps):
    """Fused against composed: y and gradients, running statistics after ``steps``, eval y."""
    x, w, b, g = make_inputs(shape, dtype, affine, seed)
    batches = training_batches(shape, dtype, seed, steps)
    out = {impl: run_bn(impl, x, w, b, g) for impl in IMPLS}
    for impl in IMPLS:
        out[impl].update(layer_outputs(impl, x, w, b, batches, momentum))
    keys = ("y",) + GRADS + ("running_mean", "running_var", "eval_y")
    return {k: difference(out["fused"][k], out["composed"][k]) for k in keys}, out


def numeric_gradients(impl, arrays, g, h=1e-6):
    """Central differences of <g, y(x, γ, β)> for each array (float64): one gradient per input."""
    def objective():
        with modes.no_grad():
            y, _, _ = IMPLS[impl](*[None if a is None else Tensor(a) for a in arrays], EPS)
        return float((y.data * g).sum())

    return [None if a is None else numerical_gradient(objective, a, h) for a in arrays]


def reduced(shape):
    """The case's shape cut to TRUTH_KEEP: finite differences cost two forwards per entry."""
    return tuple(min(n, k) for n, k in zip(shape, TRUTH_KEEP[len(shape)]))


def truth(shape, affine, seed):
    """Each implementation's gradients against finite differences, float64, on a reduced copy."""
    x, w, b, g = make_inputs(shape, np.float64, affine, seed)
    keep = tuple(slice(0, k) for k in TRUTH_KEEP[len(shape)])
    x, g = np.ascontiguousarray(x[keep]), np.ascontiguousarray(g[keep])
    w, b = (None if a is None else a[:x.shape[1]].copy() for a in (w, b))
    result = {"shape": list(x.shape)}
    for impl in IMPLS:
        analytic = run_bn(impl, x, w, b, g)
        numeric = numeric_gradients(impl, [x, w, b], g)
        result[impl] = {k: relative_error(analytic[k], n) for k, n in zip(GRADS, numeric)}
    return result


def naive_y(x, weight, bias):
    """Batch norm with the one-pass variance E[x²] - E[x]², in x's dtype: what not to do.
    Returns y and how many channels got a negative variance (their y is NaN)."""
    axes = bn_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    var = (x * x).mean(axis=axes, keepdims=True) - mean * mean    # two large, nearly equal numbers
    with np.errstate(invalid="ignore"):
        y = (x - mean) / np.sqrt(var + np.asarray(EPS, x.dtype))
    shape = bn_param_shape(x)
    y = y if weight is None else y * weight.reshape(shape) + bias.reshape(shape)
    return y, int((var + EPS < 0).sum())


def numerics(shape, affine, seed):
    """float32 against a float64 reference: the fused op in float64 (which agrees with the
    composed one to ~1e-16) on the *same* float32 inputs, so only the arithmetic is measured,
    not the rounding of the inputs themselves. Plus the naive one-pass variance, for contrast."""
    result = {}
    for kind, offset in (("standard", None), ("offset_1e4", OFFSET)):
        arrays = make_inputs(shape, np.float32, affine, seed, offset)
        ref = run_bn("fused", *[None if a is None else a.astype(np.float64) for a in arrays])
        row = {impl: {k: relative_error(v, ref[k]) for k, v in run_bn(impl, *arrays).items()}
               for impl in IMPLS}
        y, negative = naive_y(*arrays[:3])
        row["naive_y"], row["naive_negative_var_channels"] = relative_error(y, ref["y"]), negative
        row["closer"] = {k: closer(row["fused"][k], row["composed"][k]) for k in ref}
        result[kind] = row
    return result


def cost(shape, dtype, affine, seed, repeats):
    """Graph nodes, saved and retained bytes, and median forward/backward/total seconds."""
    x, w, b, g = make_inputs(shape, dtype, affine, seed)
    tensors = [None if a is None else Tensor(a, requires_grad=True) for a in (x, w, b)]
    result, times = {}, {impl: [] for impl in IMPLS}
    for impl, fn in IMPLS.items():
        y, _, _ = fn(*tensors, EPS)
        result[impl] = {"nodes": mg.graph.count_nodes(y), "saved_bytes": mg.graph.saved_bytes(y),
                        "retained_bytes": mg.graph.retained_bytes(y)}
        y.backward(g)                                   # also a warm-up
    for _ in range(repeats):
        for impl, fn in IMPLS.items():                  # interleaved: drift hits both alike
            for t in tensors:
                if t is not None:
                    t.grad = None
            start = time.perf_counter()
            y, _, _ = fn(*tensors, EPS)
            middle = time.perf_counter()
            y.backward(g)
            times[impl].append((middle - start, time.perf_counter() - middle))
    for impl in IMPLS:
        result[impl].update(medians(times[impl]))
    result["ratio"] = {k: result["composed"][k] / result["fused"][k] if result["fused"][k] else None
                       for k in result["fused"]}
    result["repeats"] = repeats
    return result


def compare_case(shape, dtype="float32", affine=True, momentum=0.1, seed=0, steps=3, repeats=11,
                 use_torch=None):
    """Every measurement for one case, as a dict of plain numbers, lists and strings.

    ``use_torch``: None = compare against torch.nn.BatchNorm1d/2d when it is importable.
    """
    start = time.perf_counter()
    shape, dtype = tuple(shape), np.dtype(dtype)
    agree, outputs = agreement(shape, dtype, affine, momentum, seed, steps)
    case = {"impls": list(IMPLS), "shape": list(shape), "dtype": dtype.name, "affine": affine,
            "momentum": momentum, "seed": seed, "steps": steps, "eps": EPS, "agreement": agree,
            "truth": truth(shape, affine, seed), "numerics": numerics(shape, affine, seed),
            "second_order": second_order(reduced(shape), affine, seed, EPS, make_inputs),
            "cost": cost(shape, dtype, affine, seed, repeats),
            "folding": folding(shape, seed, repeats)}
    case["torch"], case["torch_skipped"] = torch_case(
        case, outputs, make_inputs(shape, dtype, affine, seed),
        training_batches(shape, dtype, seed, steps), use_torch)
    case["verdict"] = verdict(case)
    case["elapsed_s"] = time.perf_counter() - start
    return case
