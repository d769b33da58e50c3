"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW, step by step
against numpy transcriptions of PyTorch's update rules; in-place updates that leave gradients
alone; state_dict round trips (through mg.save / mg.load) that resume training exactly."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim


# ------------------------------------------------------------------ numpy references (torch/optim/*.py)
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


SGD_CASES = {
    "plain": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.05, weight_decay=0.1),
    "everything": dict(lr=0.03, momentum=0.7, weight_decay=0.05, nesterov=True),
    "decay_damped": dict(lr=0.03, momentum=0.5, dampening=0.5, weight_decay=0.2),
}


@pytest.mark.parametrize("case", SGD_CASES, ids=SGD_CASES.keys())
def test_sgd_matches_the_pytorch_formula(case):
    problem = Quadratic()
    got = run_minigrad(lambda params: optim.SGD(params, **SGD_CASES[case]), problem)
    for step, (g, want) in enumerate(zip(got, sgd_reference(problem.p0, problem, **SGD_CASES[case]))):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def test_sgd_first_steps_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5, dampening=0.5)
    p.grad = np.array([1.0, 2.0])
    opt.step()                 # buffer = g (no dampening on the first step)
    np.testing.assert_allclose(p.data, [0.9, -2.2])
    p.grad = np.array([3.0, -1.0])
    opt.step()                 # buffer = 0.5 [1, 2] + 0.5 [3, -1] = [2, 0.5]
    np.testing.assert_allclose(p.data, [0.7, -2.25])


ADAM_CASES = {
    "adam": (optim.Adam, dict(lr=0.1), False),
    "adam_betas_eps": (optim.Adam, dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3), False),
    "adam_l2": (optim.Adam, dict(lr=0.05, weight_decay=0.3), False),
    "adamw_default_decay": (optim.AdamW, dict(lr=0.1), True),
    "adamw": (optim.AdamW, dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.5), True),
}


@pytest.mark.parametrize("case", ADAM_CASES, ids=ADAM_CASES.keys())
def test_adam_and_adamw_match_the_pytorch_formula(case):
    cls, kwargs, decoupled = ADAM_CASES[case]
    problem = Quadratic(seed=1)
    got = run_minigrad(lambda params: cls(params, **kwargs), problem)
    if cls is optim.AdamW and "weight_decay" not in kwargs:
        kwargs = dict(kwargs, weight_decay=1e-2)                # AdamW's default, as in PyTorch
    want = adam_reference(problem.p0, problem, decoupled=decoupled, **kwargs)
    for step, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def test_adam_first_step_moves_each_coordinate_by_lr():
    # bias correction makes the first step lr · g / (|g| + eps'): lr · sign(g), whatever |g|
    p = nn.Parameter(np.array([1.0, 1.0, 1.0]))
    p.grad = np.array([1e-3, -5.0, 300.0])
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [0.99, 1.01, 0.99], rtol=1e-6)


def test_adamw_decays_weights_that_adam_does_not():
    p_adam = nn.Parameter(np.array([2.0]))
    p_adamw = nn.Parameter(np.array([2.0]))
    for p in (p_adam, p_adamw):
        p.grad = np.array([0.5])
    optim.Adam([p_adam], lr=0.1).step()
    optim.AdamW([p_adamw], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p_adam.data, [1.9], rtol=1e-7)
    np.testing.assert_allclose(p_adamw.data, [2.0 * (1 - 0.05) - 0.1], rtol=1e-7)


# ------------------------------------------------------------------ mechanics
ALL = [
    ("sgd", lambda ps: optim.SGD(ps, lr=0.1)),
    ("sgd_nesterov_decay", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("sgd_damped", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1)),
    ("adam_l2", lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=0.1)),
]


@pytest.mark.parametrize("make", [m for _, m in ALL], ids=[n for n, _ in ALL])
def test_step_updates_in_place_and_leaves_gradients_alone(make):
    rng = np.random.default_rng(2)
    p = nn.Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    opt = make([p])
    data = p.data
    for _ in range(3):
        grad = rng.standard_normal((3, 2)).astype(np.float32)
        p.grad = grad
        before = grad.copy()
        old = data.copy()
        opt.step()
        assert p.data is data                       # the same array, updated in place
        assert p.grad is grad
        np.testing.assert_array_equal(grad, before)  # the gradient is read, never written
        assert not np.array_equal(data, old)
        assert p.data.dtype == np.float32


@pytest.mark.parametrize("make", [m for _, m in ALL], ids=[n for n, _ in ALL])
def test_parameters_without_gradient_are_skipped(make):
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = make([a, b])
    a.grad = np.array([1.0, -1.0])
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert not np.array_equal(a.data, [1.0, 1.0])


def test_params_may_be_a_generator():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.data.copy() for p in model.parameters()]
    opt = optim.SGD((p for p in model.parameters()), lr=0.1, momentum=0.9)
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    for _ in range(2):                              # a consumed generator would update nothing
        opt.zero_grad()
        model(x).backward(np.ones((5, 2), dtype=np.float32))
        opt.step()
    assert len(opt.params) == 4
    for b, p in zip(before, model.parameters()):
        assert not np.array_equal(b, p.data)


def test_zero_grad_clears_gradients():
    p = nn.Parameter(np.ones(2))
    p.grad = np.ones(2)
    opt = optim.Adam([p])
    opt.zero_grad()
    assert p.grad is None


def test_hyperparameters_are_readable_and_writable():
    p = nn.Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1)
    assert opt.lr == 0.1 and opt.momentum == 0.0
    opt.lr = 0.5                                    # a schedule: step() must use the new rate
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.5])
    assert opt.state_dict()["hyperparameters"]["lr"] == 0.5


@pytest.mark.parametrize("build, message", [
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: optim.SGD(ps, lr=-1.0), "lr, momentum, weight_decay >= 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.Adam(ps, betas=(0.9, 1.0)), "invalid Adam"),
    (lambda ps: optim.AdamW(ps, lr=-0.1), "invalid Adam"),
])
def test_invalid_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build([nn.Parameter(np.ones(1))])


# ------------------------------------------------------------------ state_dict and resuming
def train(model, opt, batches):
    losses = []
    for x, target in batches:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(mg.tensor(x)), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


RESUMABLE = {
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd_damped": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.2),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("name", RESUMABLE, ids=RESUMABLE.keys())
def test_resuming_from_a_checkpoint_continues_the_same_trajectory(name, tmp_path):
    make = RESUMABLE[name]
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32))
               for _ in range(8)]

    def fresh(seed):
        mg.manual_seed(seed)
        model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
        return model, make(model.parameters())

    model, opt = fresh(0)
    train(model, opt, batches[:4])
    path = tmp_path / "checkpoint"
    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 4}, path)
    uninterrupted = train(model, opt, batches[4:])
    final = model.state_dict()

    resumed_model, resumed_opt = fresh(1)              # different initial weights, empty state
    checkpoint = mg.load(path)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    assert int(checkpoint["epoch"]) == 4
    assert train(resumed_model, resumed_opt, batches[4:]) == uninterrupted
    for key, value in resumed_model.state_dict().items():
        np.testing.assert_array_equal(value, final[key], err_msg=key)


def test_the_loaded_momentum_buffer_is_used():
    # guards the test above: a resume that silently dropped the state would step differently
    def second_step(load_state):
        p = nn.Parameter(np.array([1.0]))
        opt = optim.SGD([p], lr=0.1, momentum=0.9)
        p.grad = np.array([1.0])
        opt.step()                                      # p = 0.9, buffer = 1
        q = nn.Parameter(p.data.copy())
        resumed = optim.SGD([q], lr=0.1, momentum=0.9)
        if load_state:
            resumed.load_state_dict(opt.state_dict())
        q.grad = np.array([1.0])
        resumed.step()
        return q.data[0]

    assert second_step(True) == pytest.approx(0.9 - 0.1 * 1.9)    # buffer = 0.9 · 1 + 1
    assert second_step(False) == pytest.approx(0.9 - 0.1)


def test_state_dict_holds_copies_and_restores_hyperparameter_types(tmp_path):
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = optim.Adam([p], lr=0.02, betas=(0.8, 0.9))
    p.grad = np.ones(3, dtype=np.float32)
    opt.step()
    state = opt.state_dict()
    state["state"]["0"]["exp_avg"][...] = 99.0
    assert opt.state[0]["exp_avg"][0] != 99.0
    mg.save({"opt": opt.state_dict()}, tmp_path / "o")
    other = optim.Adam([nn.Parameter(np.ones(3, dtype=np.float32))], lr=0.5)
    other.load_state_dict(mg.load(tmp_path / "o")["opt"])
    assert other.lr == 0.02 and isinstance(other.lr, float)
    assert other.betas == (0.8, 0.9) and isinstance(other.betas, tuple)
    assert int(other.state[0]["step"]) == 1 and other.state[0]["exp_avg"].dtype == np.float32
    sgd = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9, nesterov=True)
    mg.save({"opt": sgd.state_dict()}, tmp_path / "s")
    sgd.load_state_dict(mg.load(tmp_path / "s")["opt"])
    assert sgd.nesterov is True


def test_load_state_dict_errors():
    p = nn.Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 0 has shape \(2,\), expected \(3,\)"):
        opt.load_state_dict({"state": {"0": {"momentum_buffer": np.ones(2)}}})
    with pytest.raises(ValueError, match="parameter 1, but there are 1"):
        opt.load_state_dict({"state": {"1": {"momentum_buffer": np.ones(3)}}})
    with pytest.raises(ValueError, match="unknown optimizer hyperparameter 'betas'"):
        opt.load_state_dict({"hyperparameters": {"betas": (0.9, 0.99)}})
