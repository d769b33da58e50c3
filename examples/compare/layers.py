"""The other normalisations, fused against composed: BatchRenorm, GroupNorm and LayerNorm.

``layer_case(kind, shape, dtype, ...)`` returns a plain dict, as ``cases.compare_case`` does:
agreement of the fused and the composed form (y and every gradient, one random upstream
gradient), the same against torch.nn.functional's group_norm / layer_norm when installed
(PyTorch has no BatchRenorm), graph nodes, saved and retained bytes, and median forward and
backward seconds, torch's beside them. The table is ``report.format_layers``.
"""
import time

import numpy as np

import minigrad as mg
from minigrad.nn import batchrenorm, normalization
from minigrad.tensor import Tensor

from .numbers import difference, medians

EPS = 1e-5
GRADS = ("y", "dx", "dweight", "dbias")


def groups_for(channels):
    """GroupNorm's G for a case: Wu & He's default 32 when C allows it (two channels a group or
    more), else the largest of 16, 8, 4, 2 that does, else 1."""
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0 and (g < channels or g == 1))


def forms(kind, shape, dtype, seed):
    """{"fused": f, "composed": f} with f(x, w, b) -> y, the parameters' shape, a description,
    and torch's f (or None)."""
    channels = shape[1]
    if kind == "renorm":      # running statistics off the batch's, so r and d are clipped somewhere
        rng = np.random.default_rng(seed + 400)
        mean, var = rng.standard_normal(channels).astype(dtype), rng.uniform(0.2, 20, channels).astype(dtype)
        make = lambda fn: lambda x, w, b: fn(x, w, b, mean, var, 3.0, 5.0, EPS)[0]   # noqa: E731
        return ({"fused": make(batchrenorm.batch_renorm_fused), "composed": make(batchrenorm.batch_renorm_composed)},
                (channels,), "BatchRenorm, r_max 3, d_max 5", None)
    if kind == "group":
        g = groups_for(channels)
        make = lambda fn: lambda x, w, b: fn(x, g, w, b, EPS)                          # noqa: E731
        return ({"fused": make(normalization.group_norm_fused), "composed": make(normalization.group_norm_composed)},
                (channels,), f"GroupNorm, {g} group{'s' * (g > 1)}",
                lambda torch: lambda x, w, b: torch.nn.functional.group_norm(x, g, w, b, EPS))
    normalized = tuple(shape[1:])
    make = lambda fn: lambda x, w, b: fn(x, normalized, w, b, EPS)                   # noqa: E731
    return ({"fused": make(normalization.layer_norm_fused), "composed": make(normalization.layer_norm_composed)},
            normalized, f"LayerNorm over {normalized}",
            lambda torch: lambda x, w, b: torch.nn.functional.layer_norm(x, normalized, w, b, EPS))


def inputs(shape, param_shape, dtype, seed):
    """x, γ, β away from (1, 0), and a random upstream gradient (never ones), as arrays."""
    rng = np.random.default_rng(seed)
    arrays = (1 + 3 * rng.standard_normal(shape), 1 + 0.5 * rng.standard_normal(param_shape),
              rng.standard_normal(param_shape), rng.standard_normal(shape))
    return tuple(a.astype(dtype) for a in arrays)


def layer_case(kind, shape, dtype="float64", seed=0, repeats=11, use_torch=None):
    """Every measurement of one kind ("renorm", "group", "layer") on one shape and dtype."""
    dtype = np.dtype(dtype)
    fns, param_shape, title, torch_fn = forms(kind, tuple(shape), dtype, seed)
    x, w, b, g = inputs(tuple(shape), param_shape, dtype, seed)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out, cost, times = {}, {}, {impl: [] for impl in fns}
    for impl, fn in fns.items():
        y = fn(*tensors)
        cost[impl] = {"nodes": mg.graph.count_nodes(y), "saved_bytes": mg.graph.saved_bytes(y),
                      "retained_bytes": mg.graph.retained_bytes(y)}
        y.backward(g)                                   # also a warm-up
        out[impl] = dict(zip(GRADS, [y.data] + [t.grad for t in tensors]))
        for t in tensors:
            t.grad = None
    for _ in range(repeats):
        for impl, fn in fns.items():                    # interleaved: drift hits both alike
            start = time.perf_counter()
            y = fn(*tensors)
            middle = time.perf_counter()
            y.backward(g)
            times[impl].append((middle - start, time.perf_counter() - middle))
            for t in tensors:
                t.grad = None
    for impl in fns:
        cost[impl].update(medians(times[impl]))
    cost["ratio"] = {k: cost["composed"][k] / cost["fused"][k] for k in cost["fused"]}
    case = {"kind": kind, "title": title, "shape": list(shape), "dtype": dtype.name, "seed": seed,
            "repeats": repeats, "agreement": {k: difference(out["fused"][k], out["composed"][k]) for k in GRADS},
            "cost": cost}
    case["torch"], case["torch_skipped"] = _torch(torch_fn, (x, w, b, g), out, repeats, use_torch)
    return case


def _torch(torch_fn, arrays, out, repeats, use_torch):
    """(results or None, why skipped or None): torch's agreement with each form, and its time."""
    if torch_fn is None:
        return None, "PyTorch has no such layer"
    if use_torch is False:
        return None, "PyTorch column skipped (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed: torch column skipped"
    fn = torch_fn(torch)
    x, w, b = (torch.tensor(a, requires_grad=True) for a in arrays[:3])
    upstream = torch.from_numpy(arrays[3])
    y = fn(x, w, b)
    y.backward(upstream)
    got = dict(zip(GRADS, [y.detach().numpy()] + [t.grad.numpy() for t in (x, w, b)]))
    agreement = {k: {impl: difference(out[impl][k], got[k]) for impl in out} for k in GRADS}
    times, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)            # like numpy's elementwise ops
    try:
        for _ in range(repeats + 1):    # the first run is a warm-up
            for t in (x, w, b):
                t.grad = None
            start = time.perf_counter()
            y = fn(x, w, b)
            middle = time.perf_counter()
            y.backward(upstream)
            times.append((middle - start, time.perf_counter() - middle))
    finally:
        torch.set_num_threads(threads)
    return {"version": torch.__version__, "agreement": agreement, "cost": medians(times[1:])}, None
