"""Fused against composed batch norm, side by side: agreement, truth, numerics and cost.

``compare_case`` measures one case (a shape and a dtype) and returns plain dicts of numbers, for
tests and plots; ``compare_report.py`` puts them into words (``format_case``, ``verdict``) and
``main`` is the command line of ``examples/compare_bn.py``. Both batch norms always see the same
inputs and the same *random* upstream gradient: with a constant one, dx is identically zero.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np

from . import graph, modes
from .compare_report import format_case, verdict
from .gradcheck import numerical_gradient
from .nn import functional as F
from .nn.layers import BatchNorm1d
from .tensor import Tensor

EPS = 1e-5
IMPLS = {"fused": F.batch_norm_fused, "composed": F.batch_norm_composed}
GRADS = ("dx", "dweight", "dbias")
TRUTH_KEEP = (8, 6, 4)   # finite differences on x[:8, :6(, :4)]: a reduced copy of the case
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


def difference(a, b):
    """{"abs": max |a - b|, "rel": that over the largest |entry| of a or b}; None if absent."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    worst = float(np.max(np.abs(a - b), initial=0.0))
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return {"abs": worst, "rel": worst / scale if scale > 0 else worst}


def relative_error(got, ref):
    """max |got - ref| / max |ref|: the error relative to the reference's scale (nan stays)."""
    if got is None or ref is None:
        return None
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = float(np.max(np.abs(ref), initial=0.0)) or 1.0
    return float(np.max(np.abs(got - ref), initial=0.0)) / scale


def layer_outputs(impl, x, weight, bias, batches, momentum):
    """Running statistics after one training step per batch, then the eval-mode output on x."""
    layer = BatchNorm1d(x.shape[1], eps=EPS, momentum=momentum, affine=weight is not None,
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


def truth(shape, affine, seed):
    """Each implementation's gradients against finite differences, float64, on a reduced copy."""
    x, w, b, g = make_inputs(shape, np.float64, affine, seed)
    keep = tuple(slice(0, k) for k in TRUTH_KEEP[:len(shape)])
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
    axes = F.bn_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    var = (x * x).mean(axis=axes, keepdims=True) - mean * mean    # two large, nearly equal numbers
    with np.errstate(invalid="ignore"):
        y = (x - mean) / np.sqrt(var + np.asarray(EPS, x.dtype))
    shape = F.bn_param_shape(x)
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


def closer(fused, composed, margin=1.5):
    """Which error is smaller: "fused", "composed", or "tie" (within a factor ``margin``)."""
    if fused is None or composed is None:
        return None
    if composed > margin * fused:
        return "fused"
    return "composed" if fused > margin * composed else "tie"


def cost(shape, dtype, affine, seed, repeats):
    """Graph nodes, saved and retained bytes, and median forward/backward/total seconds."""
    x, w, b, g = make_inputs(shape, dtype, affine, seed)
    tensors = [None if a is None else Tensor(a, requires_grad=True) for a in (x, w, b)]
    result, times = {}, {impl: [] for impl in IMPLS}
    for impl, fn in IMPLS.items():
        y, _, _ = fn(*tensors, EPS)
        result[impl] = {"nodes": graph.count_nodes(y), "saved_bytes": graph.saved_bytes(y),
                        "retained_bytes": graph.retained_bytes(y)}
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


def medians(times):
    """[(forward_s, backward_s), ...] -> median forward, backward and total (of the sums)."""
    forward, backward = zip(*times)
    return {"forward_s": statistics.median(forward), "backward_s": statistics.median(backward),
            "total_s": statistics.median(f + b for f, b in times)}


def compare_case(shape, dtype="float32", affine=True, momentum=0.1, seed=0, steps=3, repeats=11,
                 use_torch=None):
    """Every measurement for one case, as a dict of plain numbers, lists and strings.

    ``use_torch``: None = compare against torch.nn.BatchNorm1d when it is importable.
    """
    from .compare_torch import torch_case  # here, not at the top: it imports this module
    start = time.perf_counter()
    shape, dtype = tuple(shape), np.dtype(dtype)
    agree, outputs = agreement(shape, dtype, affine, momentum, seed, steps)
    case = {"shape": list(shape), "dtype": dtype.name, "affine": affine, "momentum": momentum,
            "seed": seed, "steps": steps, "eps": EPS, "agreement": agree,
            "truth": truth(shape, affine, seed), "numerics": numerics(shape, affine, seed),
            "cost": cost(shape, dtype, affine, seed, repeats)}
    case["torch"], case["torch_skipped"] = torch_case(case, outputs, use_torch)
    case["verdict"] = verdict(case)
    case["elapsed_s"] = time.perf_counter() - start
    return case


def parse_shape(text):
    """"64x128" -> (64, 128); "8x4x5" -> (8, 4, 5)."""
    shape = tuple(int(n) for n in text.lower().split("x"))
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape must be NxC or NxCxL, got {text!r}")
    if shape[0] * (shape[2] if len(shape) == 3 else 1) < 2:
        raise argparse.ArgumentTypeError(f"training needs 2 or more values per channel, got {text!r}")
    return shape


def jsonable(value):
    """Arrays -> lists, tuples -> lists, NaN/Inf -> None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def main(argv=None):
    """The command line of examples/compare_bn.py; returns the list of case dicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", type=parse_shape, default=[(4, 3), (64, 128), (256, 1024)],
                        help="NxC or NxCxL (default: 4x3 64x128 256x1024)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32")
    parser.add_argument("--affine", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--momentum", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3, help="training steps before comparing running stats")
    parser.add_argument("--repeats", type=int, default=11, help="timing repeats (the median is reported)")
    parser.add_argument("--no-torch", dest="use_torch", action="store_false", default=None,
                        help="skip the PyTorch column even when torch is installed")
    parser.add_argument("--json", metavar="PATH", help="also write every number to PATH")
    args = parser.parse_args(argv)
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    start, cases = time.perf_counter(), []
    for shape in args.shapes:
        for dtype in dtypes:
            cases.append(compare_case(shape, dtype, args.affine, args.momentum, args.seed, args.steps,
                                      args.repeats, args.use_torch))
            print(format_case(cases[-1]), end="\n\n", flush=True)
    print(f"{len(cases)} case{'s' * (len(cases) != 1)} in {time.perf_counter() - start:.1f} s")
    if args.json:
        options = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w") as f:
            json.dump(jsonable({"schema": "minigrad.compare/1", "options": options, "cases": cases}),
                      f, indent=1, allow_nan=False)
        print(f"wrote {args.json}")
    return cases
