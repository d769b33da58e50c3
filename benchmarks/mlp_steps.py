"""The MLP training step that bench_step, bench_memory and profile_step measure: its sizes, one
problem (data and initial weights) for every implementation, the three implementations of the
step (minigrad, hand-written numpy, PyTorch) and the check that they compute the same thing.

Import it only after ``harness.parse`` (it imports numpy; torch is loaded, when installed, the
first time a PyTorch step is built, so the test suite never pays for importing it).
"""
import numpy as np

import minigrad as mg
from baselines import NumpyMLP
from harness import load_torch
from minigrad.nn import functional as F

# name -> (batch size, layer widths: input, hidden..., classes)
CONFIGS = {
    "small": (64, (64, 128, 128, 10)),
    "medium": (128, (784, 256, 256, 10)),
    "large": (512, (784, 1024, 1024, 10)),
}
LR, MOMENTUM, EPS = 0.01, 0.9, 1e-5


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
    """The hand-written numpy step (baselines.NumpyMLP)."""

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

    def __init__(self, problem, torch):
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
    torch = load_torch() if include_torch else None
    if torch is not None:
        steps["torch"] = TorchStep(problem, torch)
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
