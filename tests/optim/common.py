"""What the optimizer tests share: numpy transcriptions of PyTorch's update rules (the
references every trajectory is checked against), a quadratic problem, and helpers that prove a
refused call changed nothing."""
import math

import numpy as np

import minigrad as mg
from minigrad import nn, optim


def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Yields p after each step; ``grads`` is called with the current p."""
    p, buf = p.copy(), None
    for _ in range(grads.steps):
        g = grads(p)
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        yield p


def adam_reference(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t in range(1, grads.steps + 1):
        g = grads(p)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p = p - step_size * m / denom
        yield p


class Quadratic:
    """Gradient of 0.5 ||A p - b||² at p, with a fixed number of steps."""

    def __init__(self, steps=6, n=5, seed=0):
        rng = np.random.default_rng(seed)
        self.A, self.b, self.steps = rng.standard_normal((n + 2, n)), rng.standard_normal(n + 2), steps
        self.p0 = rng.standard_normal(n)

    def __call__(self, p):
        return self.A.T @ (self.A @ p - self.b)

    def loss(self, p):
        """The same objective on a Tensor, so minigrad computes the gradient itself."""
        r = mg.tensor(self.A) @ p - mg.tensor(self.b)
        return 0.5 * (r * r).sum()


def run_minigrad(make_optimizer, problem):
    p = nn.Parameter(problem.p0.copy())
    opt = make_optimizer([p])
    trajectory = []
    for _ in range(problem.steps):
        opt.zero_grad()
        problem.loss(p).backward()
        opt.step()
        trajectory.append(p.data.copy())
    return trajectory


ALL = [
    ("sgd", lambda ps: optim.SGD(ps, lr=0.1)),
    ("sgd_nesterov_decay", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("sgd_damped", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1)),
    ("adam_l2", lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=0.1)),
]


def train(model, opt, batches):
    losses = []
    for x, target in batches:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(mg.tensor(x)), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def snapshot(opt):
    """Everything load_state_dict could change, as plain values, to prove a refusal changed nothing."""
    groups = [{k: (list(map(id, v)) if k == "params" else v) for k, v in g.items()} for g in opt.param_groups]
    state = {id(p): {k: np.array(v, copy=True) for k, v in s.items()} for p, s in opt.state.items()}
    return groups, state


def assert_unchanged(opt, before):
    groups, state = snapshot(opt)
    assert groups == before[0]
    assert state.keys() == before[1].keys()
    for key, entries in state.items():
        assert entries.keys() == before[1][key].keys()
        for name, value in entries.items():
            np.testing.assert_array_equal(value, before[1][key][name], err_msg=name)


def trained(make, shapes=((3,), (2, 2))):
    params = [nn.Parameter(np.ones(s, dtype=np.float32)) for s in shapes]
    opt = make(params)
    for p in params:
        p.grad = np.full(p.shape, 0.5, dtype=np.float32)
    opt.step()
    return opt


def sgd_momentum(ps):
    return optim.SGD(ps, lr=0.1, momentum=0.9)


def with_entry(sd, index, name, value):
    sd["state"][index][name] = value
    return sd
