"""Shared pieces of the benchmarks: configurations, one problem (data and initial weights) for
every implementation, the implementations' training steps, the correctness check and the
interleaved timer.

Import it only after ``_threads.limit_threads`` (it imports numpy, and torch when installed).
"""
import os
import platform
import statistics
import sys
import time

import numpy as np

import minigrad as mg
from minigrad.nn import functional as F
from numpy_mlp import NumpyMLP

try:
    import torch
except ImportError:  # PyTorch is optional: its columns are left out
    torch = None

# name -> (batch size, layer widths: input, hidden..., classes)
CONFIGS = {
    "small": (64, (64, 128, 128, 10)),
    "medium": (128, (784, 256, 256, 10)),
    "large": (512, (784, 1024, 1024, 10)),
}
LR, MOMENTUM, EPS = 0.01, 0.9, 1e-5


def set_torch_threads(threads):
    if torch is not None:
        torch.set_num_threads(threads)


def start(script, threads):
    """What every benchmark does first: torch's thread count, then a header naming the command
    and the machine. Returns the machine description (for the JSON output)."""
    set_torch_threads(threads)
    info = machine_info(threads)
    print(f"# {script}: {' '.join(['python', f'benchmarks/{script}.py'] + sys.argv[1:])}")
    print(f"# machine: {describe_machine(info)}\n")
    return info


# --------------------------------------------------------------------------- the problem
def make_problem(config, seed=0):
    """One batch (x float32 (N, in), y int64 (N,)) and initial weights as a flat list
    [W1, b1, γ1, β1, ..., W_out, b_out] of float32 arrays, shared by every implementation.

    γ and β start away from 1 and 0 so the gradient check exercises them.
    """
    batch, widths = CONFIGS[config]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], batch).astype(np.int64)
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        bound = 1 / np.sqrt(fan_in)
        params += [rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                   rng.uniform(-bound, bound, fan_out).astype(np.float32)]
        if k < len(widths) - 2:  # hidden block: batch norm's γ, β
            params += [(1 + 0.1 * rng.standard_normal(fan_out)).astype(np.float32),
                       (0.1 * rng.standard_normal(fan_out)).astype(np.float32)]
    return x, y, params


# --------------------------------------------------------------------------- implementations
class MinigradStep:
    """minigrad: Sequential(Linear, BatchNorm1d, ReLU, ..., Linear), cross_entropy, SGD."""

    def __init__(self, problem, fused):
        x, y, params = problem
        layers = []
        for k in range((len(params) - 2) // 4):
            fan_out, fan_in = params[4 * k].shape
            layers += [mg.nn.Linear(fan_in, fan_out), mg.nn.BatchNorm1d(fan_out, fused=fused), mg.nn.ReLU()]
        layers.append(mg.nn.Linear(params[-2].shape[1], params[-2].shape[0]))
        self.model = mg.nn.Sequential(*layers)
        self.params = list(self.model.parameters())
        assert len(self.params) == len(params)
        for p, value in zip(self.params, params):
            p.data[...] = value
        self.model.train()
        self.x, self.y = mg.tensor(x), y.copy()
        self.optimizer = mg.optim.SGD(self.params, lr=LR, momentum=MOMENTUM)

    def step(self):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def loss_and_grads(self):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        return float(loss.item()), [p.grad for p in self.params]

    def weights(self):
        return [p.data for p in self.params]


class NumpyStep:
    """The hand-written numpy step (numpy_mlp.py)."""

    def __init__(self, problem):
        x, y, params = problem
        self.net = NumpyMLP(params, LR, MOMENTUM, eps=EPS)
        self.x, self.y = x.copy(), y.copy()

    def step(self):
        return self.net.step(self.x, self.y)

    def loss_and_grads(self):
        loss, grads = self.net.loss_and_grads(self.x, self.y)
        return float(loss), grads

    def weights(self):
        return self.net.params


class TorchStep:
    """PyTorch: the same model with torch.nn modules, F.cross_entropy and torch.optim.SGD."""

    def __init__(self, problem):
        x, y, params = problem
        layers = []
        for k in range((len(params) - 2) // 4):
            fan_out, fan_in = params[4 * k].shape
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.BatchNorm1d(fan_out), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(params[-2].shape[1], params[-2].shape[0]))
        self.model = torch.nn.Sequential(*layers).train()
        self.params = list(self.model.parameters())
        assert len(self.params) == len(params)
        with torch.no_grad():
            for p, value in zip(self.params, params):
                p.copy_(torch.from_numpy(value))
        self.x, self.y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
        self.optimizer = torch.optim.SGD(self.params, lr=LR, momentum=MOMENTUM)
        self.loss_fn = torch.nn.functional.cross_entropy

    def step(self):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def loss_and_grads(self):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        return float(loss.item()), [p.grad.numpy() for p in self.params]

    def weights(self):
        return [p.detach().numpy() for p in self.params]


def make_steps(problem, include_torch=True):
    """name -> implementation, every one built from the same problem."""
    steps = {"minigrad fused": MinigradStep(problem, fused=True),
             "minigrad composed": MinigradStep(problem, fused=False),
             "numpy": NumpyStep(problem)}
    if include_torch and torch is not None:
        steps["torch"] = TorchStep(problem)
    return steps


def check_steps(steps, reference="numpy", rtol=2e-4, train_steps=3):
    """Raise AssertionError unless every implementation's loss and gradients match the reference
    at the initial weights, and its weights still match after ``train_steps`` SGD steps.

    Errors are relative to each array's largest entry (float32 arithmetic in a different order),
    but to no less than 1e-3: a Linear bias in front of batch norm has an exactly zero gradient
    in exact arithmetic, so its float32 value is rounding noise in every implementation.
    """
    ref_loss, ref_grads = steps[reference].loss_and_grads()
    report = {}
    for name, impl in steps.items():
        loss, grads = impl.loss_and_grads()
        assert len(grads) == len(ref_grads), f"{name}: {len(grads)} gradients, {len(ref_grads)} expected"
        assert abs(loss - ref_loss) <= rtol * abs(ref_loss), f"{name}: loss {loss} vs {reference} {ref_loss}"
        report[name] = max(_relative_error(g, r) for g, r in zip(grads, ref_grads))
        assert report[name] <= rtol, f"{name}: gradients differ from {reference} by {report[name]:.2e}"
    for impl in steps.values():
        for _ in range(train_steps):
            impl.step()
    ref_weights = steps[reference].weights()
    for name, impl in steps.items():
        worst = max(_relative_error(w, r) for w, r in zip(impl.weights(), ref_weights))
        assert worst <= 10 * rtol, f"{name}: weights after {train_steps} steps differ by {worst:.2e}"
    return report


def _relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-3))


# --------------------------------------------------------------------------- timing
def interleaved(fns, budget, warmup=0.5, block_seconds=0.02, min_rounds=15):
    """Time each callable in ``fns`` (name -> fn) round-robin until ``budget`` seconds pass.

    Warm-up for ``warmup`` seconds each, then rounds: every fn runs one block of ``block``
    calls (sized to about ``block_seconds``), the order rotating each round so no fn always
    follows the same neighbour. Returns name -> list of seconds per call, one per round.
    """
    names = list(fns)
    per_call = {}
    for name in names:
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < warmup:
            fns[name]()
            calls += 1
        per_call[name] = (time.perf_counter() - start) / calls
    blocks = {name: max(1, round(block_seconds / per_call[name])) for name in names}
    round_seconds = sum(blocks[n] * per_call[n] for n in names)
    rounds = max(min_rounds, int(budget / round_seconds))
    times = {name: [] for name in names}
    clock = time.perf_counter
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, block = fns[name], blocks[name]
            start = clock()
            for _ in range(block):
                fn()
            times[name].append((clock() - start) / block)
    return times


def median_ratio(times, a, b):
    """Median over rounds of time[a] / time[b] (the two ran in the same round)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def median(values):
    return statistics.median(values)


# --------------------------------------------------------------------------- reporting
def machine_info(threads):
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: no dict mode
        blas = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "torch": None if torch is None else torch.__version__, "minigrad": mg.__version__}


def describe_machine(info):
    return (f"{info['cpu']} ({info['cores']} cores), {info['threads']} BLAS thread(s); "
            f"Python {info['python']}, numpy {info['numpy']} ({info['blas']}), "
            f"torch {info['torch'] or 'not installed'}; {info['platform']}")


def table(header, rows, labels=1):
    """A GitHub-markdown table: the first ``labels`` columns left-aligned, numbers right-aligned."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i < labels else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ("-" if i < labels else ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
