"""Convolutional models: a training step of the two CNNs of examples/train_cnn.py against PyTorch,
and a convolution's forward + backward alone against the hand-written numpy im2col baseline.

Steps (float32, SGD momentum 0.9, training mode): the MNIST-1D CNN with BatchNorm1d (batch 100,
three Conv1d) and the digits CNN with BatchNorm2d and MaxPool2d (batch 64). Both frameworks start
from the same weights (minigrad's state_dict loaded strictly into the torch model) and their loss
and every gradient are compared before timing. Conv alone: the three MNIST-1D convolutions and
a 2-D one, minigrad's Conv op (forward, backward with a random upstream gradient) against
baselines.conv_forward/conv_backward, checked equal first. Timing: interleaved rounds, medians
of per-round ratios.

    python benchmarks/bench_cnn.py [--threads 1] [--budget 10] [--no-torch] [--json PATH]
"""
import sys

import harness

CONVS = {  # name -> (x shape, w shape, stride, padding, needs dx)
    "mnist1d conv1 (100,1,40) k5 s2 p1": ((100, 1, 40), (25, 1, 5), (2,), (1,), False),
    "mnist1d conv2 (100,25,19) k3 s2 p1": ((100, 25, 19), (25, 25, 3), (2,), (1,), True),
    "mnist1d conv3 (100,25,10) k3 s2 p1": ((100, 25, 10), (25, 25, 3), (2,), (1,), True),
    "digits conv2 (64,16,4,4) 3x3 p1": ((64, 16, 4, 4), (32, 16, 3, 3), (1, 1), (1, 1), True),
    "2-D (32,16,16,16) 3x3 p1": ((32, 16, 16, 16), (32, 16, 3, 3), (1, 1), (1, 1), True),
}


def minigrad_step(data, batch, seed=0):
    """(step, loss_and_grads, state_dict) for train_cnn's CNN on a fixed random batch."""
    import numpy as np

    import minigrad as mg
    from helpers import models   # examples/helpers: the models train_cnn.py trains
    mg.manual_seed(seed)
    model = models.build_model(data, "cnn", "fused")
    shape = (batch, 1, 40) if data == "mnist1d" else (batch, 1, 8, 8)
    rng = np.random.default_rng(seed)
    x, y = mg.tensor(rng.standard_normal(shape).astype(np.float32)), rng.integers(0, 10, batch)
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def loss():
        with mg.train_mode():
            return mg.nn.functional.cross_entropy(model(x), y)
    step, loss_and_grads = step_pair(loss, opt, lambda: {k: p.grad for k, p in model.named_parameters()})
    return step, loss_and_grads, model, (x.data, y)


def step_pair(loss, opt, named_grads):
    """(step, loss_and_grads) of one framework, from its loss, optimizer and gradients by name."""
    def forward_backward():
        value = loss()
        opt.zero_grad()
        value.backward()
        return value

    def step():
        forward_backward()
        opt.step()

    def loss_and_grads():
        return float(forward_backward().item()), named_grads()
    return step, loss_and_grads


def torch_step(torch, model, batch_data):
    """The same model in torch (built from the minigrad model's layers, weights copied strictly)."""
    from helpers import models   # examples/helpers: the models train_cnn.py trains
    twin = models.torch_twin(model, torch).train()
    x, y = torch.from_numpy(batch_data[0].copy()), torch.from_numpy(batch_data[1].copy())
    opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)

    return step_pair(lambda: torch.nn.functional.cross_entropy(twin(x), y), opt,
                     lambda: {k: p.grad.numpy() for k, p in twin.named_parameters()})


def conv_pair(x_shape, w_shape, stride, padding, need_dx, seed=0):
    """(minigrad fn, numpy fn, check): the same convolution forward + backward."""
    import numpy as np

    import baselines
    import minigrad as mg
    from minigrad.ops.conv import Conv
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(x_shape).astype(np.float32)
    w0 = (0.1 * rng.standard_normal(w_shape)).astype(np.float32)
    b0 = rng.standard_normal(w_shape[0]).astype(np.float32)
    x, w, b = mg.tensor(x0, requires_grad=need_dx), mg.tensor(w0, requires_grad=True), mg.tensor(b0, requires_grad=True)
    dilation = (1,) * len(stride)
    pairs = tuple((p, p) for p in padding)      # the op's padding: (before, after) per axis
    out = {}

    def ours():
        x.grad = w.grad = b.grad = None
        y = Conv.apply(x, w, b, stride=stride, padding=pairs, dilation=dilation, groups=1)
        if "g" not in out:
            out["g"] = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(out["g"])
        return [x.grad, w.grad, b.grad]

    def numpy_conv():
        y, cache = baselines.conv_forward(x0, w0, b0, stride, padding, dilation)
        return list(baselines.conv_backward(out["g"], cache, need_dx))

    def check():
        got, ref = ours(), numpy_conv()
        for g, r in zip(got, ref):
            if g is None or r is None:
                assert g is None and r is None
                continue
            error = float(np.abs(g - r).max() / np.abs(r).max())
            assert error < 1e-4, f"conv gradients differ from the numpy baseline by {error:.1e}"
    return ours, numpy_conv, check


def check_steps(ours, theirs, rtol=2e-4):
    loss, grads = ours()
    loss_t, grads_t = theirs()
    assert abs(loss - loss_t) <= rtol * abs(loss_t), f"loss {loss} vs torch {loss_t}"
    import numpy as np
    for key, g in grads.items():
        error = float(np.abs(g - grads_t[key]).max() / max(np.abs(grads_t[key]).max(), 1e-3))
        assert error <= rtol, f"{key}: gradient differs from torch by {error:.1e}"


def main(argv=None):
    args = harness.parse(__doc__, argv, budget=10.0)
    sys.path.insert(0, harness.EXAMPLES)
    info = harness.start("bench_cnn", args)
    torch = harness.use_torch(args)
    results, rows = {"machine": info, "steps": {}, "convs": {}}, []
    for name, data, batch in (("MNIST-1D CNN + BatchNorm1d, batch 100", "mnist1d", 100),
                              ("digits CNN + BatchNorm2d + MaxPool2d, batch 64", "digits", 64)):
        step, loss_and_grads, model, batch_data = minigrad_step(data, batch)
        fns = {"minigrad": step}
        if torch is not None:
            t_step, t_loss_and_grads = torch_step(torch, model, batch_data)
            check_steps(loss_and_grads, t_loss_and_grads)
            fns["torch"] = t_step
        times = harness.interleaved(fns, args.budget)
        entry = {"median_ms": {k: 1e3 * harness.median(v) for k, v in times.items()}, "rounds": len(times["minigrad"])}
        if torch is not None:
            entry["minigrad / torch"] = harness.median_ratio(times, "minigrad", "torch")
        results["steps"][name] = entry
        rows.append([name, entry["rounds"], f"{entry['median_ms']['minigrad']:.3f}",
                     f"{entry['median_ms']['torch']:.3f}" if torch else "-",
                     f"{entry['minigrad / torch']:.3f}" if torch else "-"])
        print(f"{name}: checked against torch, {entry['rounds']} rounds" if torch else f"{name}: timed", flush=True)
    print()
    print(harness.table(["training step (float32, SGD momentum)", "rounds", "minigrad ms", "torch ms",
                         "minigrad/torch"], rows))
    rows = []
    for name, case in CONVS.items():
        ours, numpy_conv, check = conv_pair(*case)
        check()
        times = harness.interleaved({"minigrad": ours, "numpy": numpy_conv}, args.budget / 2, block_seconds=0.01)
        ratio = harness.median_ratio(times, "minigrad", "numpy")
        entry = {"median_us": {k: 1e6 * harness.median(v) for k, v in times.items()}, "minigrad / numpy": ratio}
        results["convs"][name] = entry
        rows.append([name + ("" if case[4] else ", no dx"), f"{entry['median_us']['numpy']:.0f}",
                     f"{entry['median_us']['minigrad']:.0f}", f"{ratio:.3f}"])
    print()
    print(harness.table(["conv forward + backward (float32)", "numpy im2col µs", "minigrad µs",
                         "minigrad/numpy"], rows))
    print("\nms/µs: medians over interleaved rounds; ratios: medians of per-round ratios. Every "
          "implementation was checked against its reference before timing.")
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
