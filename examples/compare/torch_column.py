"""The optional PyTorch column of the comparison: torch.nn.BatchNorm1d/2d on the same numbers.

torch is imported lazily, so nothing depends on it; absent, the case records one line saying
the column was skipped. It gets the case's inputs as arguments, so it imports no other part of
the comparison but its arithmetic.
"""
import time

import numpy as np

from .numbers import difference, medians


def torch_case(case, outputs, inputs, batches, use_torch=None):
    """(results or None, reason skipped or None). ``outputs``: minigrad's arrays per impl;
    ``inputs``: the case's (x, weight, bias, upstream gradient); ``batches``: its training batches."""
    if use_torch is False:
        return None, "PyTorch column skipped (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed: torch column skipped"
    shape, dtype, affine, eps = tuple(case["shape"]), np.dtype(case["dtype"]), case["affine"], case["eps"]
    x, w, b, g = inputs
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = (None if a is None else torch.tensor(a, requires_grad=True) for a in (w, b))
    y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True, eps=eps)
    y.backward(torch.from_numpy(g))
    got = {"y": y.detach().numpy(), "dx": xt.grad.numpy(),
           "dweight": None if wt is None else wt.grad.numpy(),
           "dbias": None if bt is None else bt.grad.numpy()}

    layer_class = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    layer = layer_class(shape[1], eps=eps, momentum=case["momentum"], affine=affine,
                                 dtype=getattr(torch, dtype.name))
    with torch.no_grad():
        if affine:
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
        layer.train()
        for batch in batches:
            layer(torch.from_numpy(batch))
        layer.eval()
        got["eval_y"] = layer(torch.from_numpy(x)).numpy()
    got["running_mean"], got["running_var"] = layer.running_mean.numpy(), layer.running_var.numpy()
    agreement = {k: {impl: difference(outputs[impl][k], got[k]) for impl in case["impls"]} for k in case["agreement"]}

    times, upstream, threads = [], torch.from_numpy(g), torch.get_num_threads()
    torch.set_num_threads(1)  # like numpy's elementwise ops; also spares us stalls on a busy machine
    try:
        for _ in range(case["cost"]["repeats"] + 1):       # the first run is a warm-up
            for t in (xt, wt, bt):
                if t is not None:
                    t.grad = None
            start = time.perf_counter()
            y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True, eps=eps)
            middle = time.perf_counter()
            y.backward(upstream)
            times.append((middle - start, time.perf_counter() - middle))
    finally:
        torch.set_num_threads(threads)
    return {"version": torch.__version__, "agreement": agreement, "cost": medians(times[1:])}, None
