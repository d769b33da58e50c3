"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW, step by step
against numpy transcriptions of PyTorch's update rules; in-place updates that leave gradients
alone; parameter groups; what params and hyperparameters may be (refused before anything
changes); Tensor gradients after create_graph; state_dict round trips (through mg.save /
mg.load) that resume training exactly, and load_state_dict refusals that change nothing."""
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
    assert len(opt.param_groups[0]["params"]) == 4
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
    assert opt.state_dict()["param_groups"][0]["lr"] == 0.5


@pytest.mark.parametrize("build, message", [
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: optim.SGD(ps, lr=-1.0), "Invalid learning rate: -1.0"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.Adam(ps, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda ps: optim.AdamW(ps, lr=-0.1), "Invalid learning rate: -0.1"),
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
    state["state"][0]["exp_avg"][...] = 99.0
    assert opt.state[p]["exp_avg"][0] != 99.0
    mg.save({"opt": opt.state_dict()}, tmp_path / "o")
    other = optim.Adam([nn.Parameter(np.ones(3, dtype=np.float32))], lr=0.5)
    other.load_state_dict(mg.load(tmp_path / "o")["opt"])
    assert other.lr == 0.02 and isinstance(other.lr, float)
    assert other.betas == (0.8, 0.9) and isinstance(other.betas, tuple)
    (q,) = other.param_groups[0]["params"]
    assert int(other.state[q]["step"]) == 1 and other.state[q]["exp_avg"].dtype == np.float32
    sgd = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9, nesterov=True)
    mg.save({"opt": sgd.state_dict()}, tmp_path / "s")
    sgd.load_state_dict(mg.load(tmp_path / "s")["opt"])
    assert sgd.nesterov is True


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


# ------------------------------------------------------------------ what params may be
def test_a_single_tensor_is_refused_not_iterated():
    # iterating a (3, 2) tensor would give its rows: non-leaf views that train nothing
    w = nn.Parameter(np.ones((3, 2)))
    for make in (lambda: optim.SGD(w, lr=0.1), lambda: optim.Adam(w), lambda: optim.AdamW(w)):
        with pytest.raises(TypeError, match=r"iterable of Tensors or dicts, but got Parameter "
                                            r"of shape \(3, 2\) \(wrap one tensor in a list"):
            make()


@pytest.mark.parametrize("params, error, message", [
    (np.ones(3), TypeError, r"iterable of Tensors or dicts, but got numpy\.ndarray of shape \(3,\)"),
    ({"w": nn.Parameter(np.ones(2))}, TypeError, r"but got dict \(a dict is not a parameter group"),
    (3.0, TypeError, r"iterable of Tensors or dicts, but got float"),
    ("weights", TypeError, r"iterable of Tensors or dicts, but got str"),
    ([1.0, 2.0], TypeError, r"can only optimize Tensors, but params\[0\] is float"),
    ([np.ones(2)], TypeError, r"can only optimize Tensors, but params\[0\] is numpy\.ndarray of shape \(2,\)"),
    ([nn.Parameter(np.ones(1)), None], TypeError, r"params\[1\] is NoneType"),
    ([("w", nn.Parameter(np.ones(1)))], TypeError, r"\(name, Tensor\) pair.*model\.parameters\(\)"),
    ([mg.tensor(np.arange(3))], TypeError, r"params\[0\] has dtype int64: only floating-point"),
    ([mg.tensor(np.ones(2), requires_grad=True) * 2], ValueError, r"can't optimize a non-leaf Tensor \(params\[0\] was made by Mul\)"),
    ({nn.Parameter(np.ones(1))}, TypeError, r"ordering of tensors in sets will change"),
    ([], ValueError, r"optimizer got an empty parameter list"),
    (iter([]), ValueError, r"optimizer got an empty parameter list"),
    ([{"w": nn.Parameter(np.ones(1))}], TypeError, r"param group 0 has no 'params' \(keys \['w'\]\)"),
    ([{"params": [nn.Parameter(np.ones(1))]}, nn.Parameter(np.ones(1))], TypeError, r"mixes Tensors and parameter-group dicts \(item 1"),
    ([{"params": 3}], TypeError, r"param group 0 'params' should be an iterable of Tensors, but got int"),
    ([{"params": [3]}], TypeError, r"param group 0 'params'\[0\] is int"),
    ([{"params": {nn.Parameter(np.ones(1))}}], TypeError, r"sets will change between runs \(param group 0"),
], ids=["ndarray", "dict", "number", "str", "floats", "arrays", "None", "named", "int_tensor", "non_leaf",
        "set", "empty", "empty_iterator", "group_without_params", "mixed", "group_params_int",
        "group_items_int", "group_set"])
def test_params_that_are_not_trainable_tensors_are_refused(params, error, message):
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        with pytest.raises(error, match=message):
            cls(params)


def test_a_tensor_that_does_not_require_grad_is_accepted_and_skipped():
    frozen, trained = mg.tensor(np.ones(2)), nn.Parameter(np.ones(2))   # as PyTorch: frozen layers
    opt = optim.SGD([frozen, trained], lr=0.1)
    trained.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(frozen.data, [1.0, 1.0])
    np.testing.assert_allclose(trained.data, [0.9, 0.9])


def test_a_single_tensor_may_be_a_group_s_params():
    w = nn.Parameter(np.ones(2))
    opt = optim.SGD([{"params": w}], lr=0.1)                 # PyTorch wraps it in a list
    assert len(opt.param_groups[0]["params"]) == 1 and opt.param_groups[0]["params"][0] is w


def test_duplicates_warn_within_a_group_and_raise_across_groups():
    # torch 2.13 warns within a group (and then steps the tensor twice, with a momentum buffer
    # that depends on its loop internals) and raises across groups. We warn, and step it once:
    # a repeated parameter is tied weights listed twice, whose update must not double.
    w, v = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    with pytest.warns(UserWarning, match="parameter group with duplicate parameters"):
        opt = optim.SGD([w, v, w], lr=0.1, momentum=0.9)
    for _ in range(2):
        w.grad = v.grad = np.ones(1)
        opt.step()
    np.testing.assert_allclose(w.data, v.data)
    np.testing.assert_allclose(w.data, [1 - 0.1 - 0.19])
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [2, 1, 2] and sorted(sd["state"]) == [1, 2]   # torch's numbering
    with pytest.warns(UserWarning):
        resumed = optim.SGD([w, v, w], lr=0.1, momentum=0.9)
    resumed.load_state_dict(sd)
    np.testing.assert_array_equal(resumed.state[w]["momentum_buffer"], opt.state[w]["momentum_buffer"])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [v, w]}], lr=0.1)
    opt = optim.SGD([v], lr=0.1)
    before = snapshot(opt)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [v]})
    assert_unchanged(opt, before)


# ------------------------------------------------------------------ parameter groups
def test_param_groups_hold_params_and_every_hyperparameter():
    a, b, c = (nn.Parameter(np.ones(2)) for _ in range(3))
    opt = optim.SGD([{"params": [a, b], "lr": 0.1, "weight_decay": 0}, {"params": [c]}],
                    lr=0.01, momentum=0.9)
    assert opt.defaults == dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    assert opt.param_groups[0]["params"][0] is a and opt.param_groups[1]["params"][0] is c
    assert {k: v for k, v in opt.param_groups[0].items() if k != "params"} == dict(
        lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0, nesterov=False)
    assert {k: v for k, v in opt.param_groups[1].items() if k != "params"} == opt.defaults
    adam = optim.AdamW([c], lr=0.5)
    assert adam.param_groups[0]["decoupled_weight_decay"] is True and adam.param_groups[0]["weight_decay"] == 1e-2
    assert optim.Adam([c]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                            decoupled_weight_decay=False)
    assert optim.AdamW([c]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                                             decoupled_weight_decay=True)
    assert optim.SGD([c]).defaults["lr"] == 1e-3                     # PyTorch 2.13's default


def test_the_caller_s_group_dict_is_not_changed():
    w = nn.Parameter(np.ones(2))
    group = {"params": (p for p in [w]), "lr": 0.1}
    optim.SGD([group], lr=0.5, momentum=0.9)
    assert set(group) == {"params", "lr"}


TWO_GROUPS = {
    "sgd": (optim.SGD, dict(lr=0.02, momentum=0.9, weight_decay=0.1),
            dict(lr=0.05, weight_decay=0), sgd_reference, {}),
    "sgd_nesterov": (optim.SGD, dict(lr=0.02, momentum=0.8, nesterov=True),
                     dict(momentum=0.5, dampening=0.0), sgd_reference, {}),
    "adam": (optim.Adam, dict(lr=0.05, weight_decay=0.2),
             dict(lr=0.1, betas=(0.5, 0.9), weight_decay=0.0), adam_reference, {}),
    "adamw": (optim.AdamW, dict(lr=0.05, weight_decay=0.3),
              dict(weight_decay=0.0, eps=1e-3), adam_reference, dict(decoupled=True)),
}


@pytest.mark.parametrize("case", TWO_GROUPS, ids=TWO_GROUPS.keys())
def test_each_group_follows_the_formula_with_its_own_hyperparameters(case):
    # the use case: exclude batch norm's gamma/beta (here the second parameter) from weight decay
    cls, defaults, override, reference, extra = TWO_GROUPS[case]
    first, second = Quadratic(seed=4), Quadratic(seed=5)
    p, q = nn.Parameter(first.p0.copy()), nn.Parameter(second.p0.copy())
    opt = cls([{"params": [p]}, {"params": [q], **override}], **defaults)
    got_p, got_q = [], []
    for _ in range(first.steps):
        opt.zero_grad()
        (first.loss(p) + second.loss(q)).backward()
        opt.step()
        got_p.append(p.data.copy())
        got_q.append(q.data.copy())
    for got, problem, kwargs in ((got_p, first, defaults), (got_q, second, {**defaults, **override})):
        for step, (g, want) in enumerate(zip(got, reference(problem.p0, problem, **kwargs, **extra))):
            np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def test_a_group_s_lr_set_by_hand_takes_effect_at_the_next_step():
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([1.0]))
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["lr"] = 0.5                    # a schedule per group
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])


def test_add_param_group_takes_the_defaults_and_trains():
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([1.0]))
    opt = optim.SGD([a], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": [b], "lr": 0.2})
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["lr"] == 0.2
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.8])
    before = snapshot(opt)
    for bad, error in (([b], TypeError), ({"params": [nn.Parameter(np.ones(1))], "lr": -1}, ValueError),
                       ({"params": [nn.Parameter(np.ones(1))], "momentm": 0.9}, ValueError)):
        with pytest.raises(error):
            opt.add_param_group(bad)
        assert_unchanged(opt, before)


def test_optimizer_lr_is_the_single_group_s_and_ambiguous_with_several():
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([1.0]))
    opt = optim.SGD([a], lr=0.1)
    opt.lr = 0.3
    assert opt.param_groups[0]["lr"] == 0.3 and opt.lr == 0.3
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        opt.lr = -1
    assert opt.lr == 0.3
    opt.add_param_group({"params": [b], "lr": 0.5})
    with pytest.raises(AttributeError, match=r"2 parameter groups; read or set opt\.param_groups\[i\]\['lr'\]"):
        opt.lr = 0.01                                  # must not set only one of them
    with pytest.raises(AttributeError, match=r"param_groups\[i\]\['momentum'\]"):
        opt.momentum
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.5]
    assert "lr" not in vars(opt)
    with pytest.raises(AttributeError, match="no attribute 'params'"):
        opt.params


# ------------------------------------------------------------------ hyperparameter validation
BAD_HYPERPARAMETERS = [
    (optim.SGD, dict(lr=float("inf")), ValueError, r"Invalid learning rate: inf"),
    (optim.SGD, dict(lr=float("nan")), ValueError, r"Invalid learning rate: nan"),
    (optim.SGD, dict(lr=-0.1), ValueError, r"Invalid learning rate: -0\.1"),
    (optim.SGD, dict(lr="0.1"), TypeError, r"learning rate.* must be a real number, got '0\.1' \(str\)"),
    (optim.SGD, dict(lr=True), TypeError, r"must be a real number, got True \(bool\)"),
    (optim.SGD, dict(momentum=-0.5), ValueError, r"Invalid momentum value: -0\.5"),
    (optim.SGD, dict(weight_decay=-1e-4), ValueError, r"Invalid weight_decay value: -0\.0001"),
    (optim.SGD, dict(dampening=float("nan"), momentum=0.9), ValueError, r"Invalid dampening value: nan"),
    (optim.SGD, dict(dampening="0.1", momentum=0.9), TypeError, r"dampening value must be a real number, got '0\.1'"),
    (optim.SGD, dict(dampening=True, momentum=0.9), TypeError, r"dampening value must be a real number, got True"),
    (optim.SGD, dict(nesterov=True), ValueError, r"Nesterov momentum requires a momentum and zero dampening"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, r"momentum=0\.9, dampening=0\.1"),
    (optim.SGD, dict(nesterov="yes", momentum=0.9), TypeError, r"nesterov.* must be True or False, got 'yes'"),
    (optim.Adam, dict(eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    (optim.Adam, dict(betas=(1.0, 0.9)), ValueError, r"Invalid beta parameter at index 0: 1\.0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"Invalid beta parameter at index 1: -0\.1"),
    (optim.Adam, dict(betas=(0.9, float("nan"))), ValueError, r"index 1: nan"),
    (optim.Adam, dict(betas=(0.9, 0.99, 0.5)), TypeError, r"betas.* must be a pair"),
    (optim.Adam, dict(betas=("0.9", 0.99)), TypeError, r"beta parameter at index 0 must be a real number, got '0\.9'"),
    (optim.Adam, dict(betas=(0.9, False)), TypeError, r"beta parameter at index 1 must be a real number, got False"),
    (optim.Adam, dict(betas=0.9), TypeError, r"betas.* must be a pair"),
    (optim.AdamW, dict(weight_decay=float("inf")), ValueError, r"Invalid weight_decay value: inf"),
    (optim.AdamW, dict(lr=float("-inf")), ValueError, r"Invalid learning rate: -inf"),
]


@pytest.mark.parametrize("cls, kwargs, error, message", BAD_HYPERPARAMETERS,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.items()))}" for c, k, _, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_are_refused_everywhere(cls, kwargs, error, message):
    w = nn.Parameter(np.ones(2))
    base = dict(lr=0.1) if cls is optim.SGD else {}
    with pytest.raises(error, match=message):                         # the defaults
        cls([w], **{**base, **kwargs})
    with pytest.raises(error, match=message + ".* in param group 0"):  # one group's value
        cls([{"params": [w], **kwargs}], **base)
    opt = cls([w], **base)
    before = snapshot(opt)
    with pytest.raises(error, match=message + ".* in param group 1"):
        opt.add_param_group({"params": [nn.Parameter(np.ones(1))], **kwargs})
    assert_unchanged(opt, before)
    opt.param_groups[0].update(kwargs)                                  # set by hand: caught at step
    w.grad = np.ones(2)
    with pytest.raises(error, match=message):
        opt.step()
    np.testing.assert_array_equal(w.data, [1.0, 1.0])
    assert not opt.state


def test_unknown_hyperparameters_are_refused():
    w = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match=r"unknown \['weight_decy'\]"):   # a typo would do nothing
        optim.SGD([{"params": [w], "weight_decy": 0.1}], lr=0.1)
    with pytest.raises(TypeError, match="amsgrad"):
        optim.Adam([w], amsgrad=True)


def test_a_bad_group_stops_the_step_before_any_parameter_moves():
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([1.0]))
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1, momentum=0.9)
    opt.param_groups[1]["lr"] = float("nan")
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    with pytest.raises(ValueError, match="Invalid learning rate: nan in param group 1"):
        opt.step()
    assert a.data[0] == 1.0 and not opt.state


def test_a_gradient_of_the_wrong_shape_is_refused_before_any_parameter_moves():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones(3), np.ones(1)             # would broadcast silently
    with pytest.raises(ValueError, match=r"shape \(3,\) has a gradient of shape \(1,\)"):
        opt.step()
    np.testing.assert_array_equal(a.data, 1.0)
    assert not opt.state


# ------------------------------------------------------------------ after backward(create_graph=True)
@pytest.mark.parametrize("make", [m for _, m in ALL], ids=[n for n, _ in ALL])
def test_a_tensor_gradient_steps_like_its_array(make):
    rng = np.random.default_rng(5)
    start = rng.standard_normal((3, 2))
    p, q = nn.Parameter(start.copy()), nn.Parameter(start.copy())
    opt_p, opt_q = make([p]), make([q])
    for _ in range(3):
        ((p * p * p).sum() + (p * 2.0).sum()).backward(create_graph=True)
        assert isinstance(p.grad, mg.Tensor)
        q.grad = p.grad.data.copy()
        opt_p.step()
        opt_q.step()
        np.testing.assert_array_equal(p.data, q.data)
        assert isinstance(p.grad, mg.Tensor)
        p.grad = q.grad = None
    for s_p, s_q in zip(opt_p.state.values(), opt_q.state.values()):
        for name in s_p:
            assert type(s_p[name]) is np.ndarray
            np.testing.assert_array_equal(s_p[name], s_q[name])


# ------------------------------------------------------------------ the momentum buffer
def test_the_momentum_buffer_does_not_alias_the_gradient():
    p = nn.Parameter(np.array([1.0, 1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = np.array([1.0, 2.0])
    opt.step()
    buf = opt.state[p]["momentum_buffer"]
    assert not np.shares_memory(buf, p.grad)
    p.grad[...] = 100.0                                 # e.g. accumulating into the same array
    np.testing.assert_array_equal(buf, [1.0, 2.0])
    p.grad = np.array([1.0, 1.0])
    opt.step()                                          # buffer 0.5 [1, 2] + [1, 1] = [1.5, 2]
    np.testing.assert_allclose(p.data, [1 - 0.1 - 0.15, 1 - 0.2 - 0.2])
    assert not np.shares_memory(opt.state[p]["momentum_buffer"], p.grad)
    np.testing.assert_array_equal(p.grad, [1.0, 1.0])


# ------------------------------------------------------------------ state_dict layout
def test_state_dict_has_pytorch_s_layout():
    a, b, c = nn.Parameter(np.ones(2)), nn.Parameter(np.ones((2, 2))), nn.Parameter(np.ones(3))
    opt = optim.SGD([{"params": [a, b], "weight_decay": 0.1}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    a.grad, c.grad = np.ones(2), np.ones(3)             # b has no gradient: no state
    opt.step()
    sd = opt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert list(sd["state"]) == [0, 2] and list(sd["state"][0]) == ["momentum_buffer"]
    assert sd["param_groups"] == [
        dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=False, params=[0, 1]),
        dict(lr=0.5, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, params=[2])]
    np.testing.assert_array_equal(sd["state"][2]["momentum_buffer"], np.ones(3))
    sd["param_groups"][0]["lr"] = 9.0
    sd["param_groups"][0]["params"].append(7)
    assert opt.param_groups[0]["lr"] == 0.1 and len(opt.param_groups[0]["params"]) == 2
    adam = optim.Adam([a])
    a.grad = np.ones(2)
    adam.step()
    entry = adam.state_dict()["state"][0]
    assert list(entry) == ["step", "exp_avg", "exp_avg_sq"]
    assert entry["step"].shape == () and entry["step"].dtype == np.int64 and entry["step"] == 1


# ------------------------------------------------------------------ exact resume, every option
EVERY_OPTION = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd_dampening": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda ps: optim.SGD(ps, lr=0.05, weight_decay=0.1),
    "sgd_groups": lambda ps: optim.SGD([{"params": ps[:2], "weight_decay": 0.0}, {"params": ps[2:], "lr": 0.02}],
                                       lr=0.05, momentum=0.8, weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
    "adam_betas_eps": lambda ps: optim.Adam(ps, lr=0.01, betas=(0.7, 0.9), eps=1e-4),
    "adam_l2": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adam_decoupled": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
    "adamw_groups": lambda ps: optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "weight_decay": 0.0}], lr=0.01),
}


@pytest.mark.parametrize("name", EVERY_OPTION, ids=EVERY_OPTION.keys())
def test_state_round_trips_exactly_through_save_and_load(name, tmp_path):
    make = EVERY_OPTION[name]
    rng = np.random.default_rng(7)
    starts = [rng.standard_normal(s).astype(np.float32) for s in ((3, 2), (2,), (4,), ())]
    grads = [[rng.standard_normal(s.shape).astype(np.float32) for s in starts] for _ in range(6)]

    def run(params, opt, steps):
        for step in steps:
            for p, g in zip(params, step):
                p.grad = g
            opt.step()
        return [p.data.copy() for p in params]

    params = [nn.Parameter(s.copy()) for s in starts]
    opt = make(params)
    run(params, opt, grads[:3])
    mg.save({"optimizer": opt.state_dict(), "params": {str(i): p for i, p in enumerate(params)}}, tmp_path / "c")
    expected_state = opt.state_dict()
    uninterrupted = run(params, opt, grads[3:])

    checkpoint = mg.load(tmp_path / "c")
    resumed_params = [nn.Parameter(checkpoint["params"][str(i)]) for i in range(len(starts))]
    resumed = make(resumed_params)
    resumed.load_state_dict(checkpoint["optimizer"])
    restored = resumed.state_dict()
    assert restored["param_groups"] == expected_state["param_groups"]        # same values and types
    assert [[type(v) for v in g.values()] for g in restored["param_groups"]] == \
           [[type(v) for v in g.values()] for g in expected_state["param_groups"]]
    assert restored["state"].keys() == expected_state["state"].keys()
    for index, entry in expected_state["state"].items():
        assert list(restored["state"][index]) == list(entry)
        for key, value in entry.items():
            got = restored["state"][index][key]
            assert got.dtype == value.dtype and got.shape == value.shape, key
            np.testing.assert_array_equal(got, value, err_msg=key)
    for got, want in zip(run(resumed_params, resumed, grads[3:]), uninterrupted):
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ load_state_dict refusals
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


LOAD_REFUSALS = {
    "sgd_into_adam": (optim.Adam, lambda: trained(sgd_momentum).state_dict(),
                      r"hyperparameters \['dampening', .*but Adam has .*another optimizer"),
    "adam_into_sgd": (sgd_momentum, lambda: trained(optim.Adam).state_dict(), r"another optimizer"),
    "adam_state_into_sgd": (sgd_momentum, lambda: dict(trained(optim.Adam).state_dict(),
                                                       param_groups=trained(sgd_momentum).state_dict()["param_groups"]),
                            r"state\[0\] has the entries \['exp_avg', 'exp_avg_sq', 'step'\], but SGD keeps "
                            r"\['momentum_buffer'\]"),
    "missing_entry": (optim.Adam, lambda: {**trained(optim.Adam).state_dict(),
                                           "state": {0: {"step": 1, "exp_avg": np.ones(3, np.float32)}}},
                      r"state\[0\] has the entries \['exp_avg', 'step'\], but Adam keeps"),
    "groups": (optim.Adam, lambda: {"state": {}, "param_groups": trained(optim.Adam).state_dict()["param_groups"] * 2},
               r"different number of parameter groups: 2, and Adam has 1"),
    "params_per_group": (optim.Adam, lambda: trained(optim.Adam, shapes=((3,),)).state_dict(),
                         r"param_groups\[0\] has 1 parameters, Adam's group 0 has 2"),
    "shape": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 1, "exp_avg", np.ones(4, np.float32)),
              r"state\[1\]\['exp_avg'\] has shape \(4,\), expected \(2, 2\)"),
    "buffer_dtype": (sgd_momentum, lambda: with_entry(trained(sgd_momentum).state_dict(), 0, "momentum_buffer",
                                                       np.ones(3, dtype=np.int64)),
                     r"state\[0\]\['momentum_buffer'\] has dtype int64; expected floating point"),
    "buffer_str": (sgd_momentum, lambda: with_entry(trained(sgd_momentum).state_dict(), 0, "momentum_buffer", "abc"),
                   r"has dtype <U3"),
    "negative_step": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 0, "step", -1),
                      r"state\[0\]\['step'\] must be a non-negative integer count, got array\(-1\)"),
    "fractional_step": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 0, "step", 1.5),
                        r"'step'\] must be a non-negative integer count"),
    "nan_step": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 0, "step", float("nan")),
                 r"'step'\] must be a non-negative integer count"),
    "step_array": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 1, "step", np.array([1, 2])),
                   r"state\[1\]\['step'\] must be a non-negative integer count"),
    "bool_step": (optim.Adam, lambda: with_entry(trained(optim.Adam).state_dict(), 1, "step", True),
                  r"'step'\] must be a non-negative integer count"),
    "lr": (optim.Adam, lambda: {**(sd := trained(optim.Adam).state_dict()),
                                "param_groups": [dict(sd["param_groups"][0], lr=-1.0)]},
           r"Invalid learning rate: -1\.0 in state_dict param_groups\[0\]"),
    "betas": (optim.AdamW, lambda: {**(sd := trained(optim.AdamW).state_dict()),
                                    "param_groups": [dict(sd["param_groups"][0], betas=(0.9, 1.5))]},
              r"Invalid beta parameter at index 1: 1\.5 in state_dict param_groups\[0\]"),
    "nesterov": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                        "param_groups": [dict(sd["param_groups"][0], nesterov=True, dampening=0.5)]},
                 r"Nesterov momentum requires a momentum and zero dampening; .* in state_dict param_groups\[0\]"),
    "unknown_index": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                             "state": {**sd["state"], 5: sd["state"][0]}},
                      r"state\[5\]: no such parameter \(param_groups list \[0, 1\]\)"),
    "index_twice": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                           "state": {0: sd["state"][0], "0": sd["state"][0]}},
                    r"state\[0\]: given twice"),
    "bad_index": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                         "state": {"first": sd["state"][0]}},
                  r"'first' is not a parameter index"),
    "params_not_indices": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                                  "param_groups": [dict(sd["param_groups"][0], params=["a", "b"])]},
                           r"'a' is not a parameter index"),
    "params_a_string": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                               "param_groups": [dict(sd["param_groups"][0], params="01")]},
                        r"param_groups\[0\]\['params'\] must be a list of parameter indices, got '01'"),
    "params_floats": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                             "param_groups": [dict(sd["param_groups"][0], params=np.array([0.0, 1.0]))]},
                      r"must be a list of parameter indices, got array\(\[0\., 1\.\]\)"),
    "index_given_twice": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                                 "param_groups": [dict(sd["param_groups"][0], params=[0, 0])]},
                          r"gives index 0 to two parameters"),
    "extra_key": (sgd_momentum, lambda: dict(trained(sgd_momentum).state_dict(), epoch=3),
                  r"the keys 'state' and 'param_groups'; got \['epoch', 'param_groups', 'state'\]"),
    "no_groups": (sgd_momentum, lambda: {"state": {}}, r"got \['state'\]"),
    "groups_not_a_list": (sgd_momentum, lambda: {"state": {}, "param_groups": 5},
                          r"'param_groups' must be a list of dicts, got int"),
    "group_not_a_dict": (sgd_momentum, lambda: {"state": {}, "param_groups": [[0, 1]]},
                         r"param_groups\[0\] must be a dict, got list"),
    "state_not_a_dict": (sgd_momentum, lambda: {**trained(sgd_momentum).state_dict(), "state": [np.ones(3)]},
                         r"state_dict 'state' must be a dict, got list"),
    "entry_not_a_dict": (sgd_momentum, lambda: {**trained(sgd_momentum).state_dict(), "state": {0: np.ones(3)}},
                         r"state_dict state\[0\] must be a dict, got numpy\.ndarray of shape \(3,\)"),
    "group_keys": (sgd_momentum, lambda: {"state": {}, "param_groups": {"1": {}}},
                   r"'param_groups' has keys \['1'\]"),
}


@pytest.mark.parametrize("case", LOAD_REFUSALS, ids=LOAD_REFUSALS.keys())
def test_load_state_dict_refuses_and_changes_nothing(case):
    make, state_dict, message = LOAD_REFUSALS[case]
    opt = trained(make)
    opt.param_groups[0]["lr"] = 0.125                   # differs from every state_dict above
    before = snapshot(opt)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state_dict())
    assert_unchanged(opt, before)


def test_a_bad_second_group_leaves_the_first_one_unloaded():
    def make(ps):
        return optim.SGD([{"params": ps[:1]}, {"params": ps[1:]}], lr=0.1, momentum=0.9)

    sd = trained(make).state_dict()
    sd["param_groups"][0]["lr"] = 0.7
    sd["state"][1]["momentum_buffer"] = np.ones(5, dtype=np.float32)
    fresh = make([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))])
    before = snapshot(fresh)
    with pytest.raises(ValueError, match=r"state\[1\]\['momentum_buffer'\] has shape \(5,\)"):
        fresh.load_state_dict(sd)
    assert_unchanged(fresh, before)
    assert fresh.param_groups[0]["lr"] == 0.1


def test_load_state_dict_takes_the_saved_hyperparameters_and_copies():
    sd = trained(sgd_momentum).state_dict()
    sd["param_groups"][0]["lr"] = 0.25
    opt = sgd_momentum([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))])    # float64 params
    opt.load_state_dict(sd)
    assert opt.lr == 0.25
    p = opt.param_groups[0]["params"][0]
    buf = opt.state[p]["momentum_buffer"]
    assert buf.dtype == np.float64 and not np.shares_memory(buf, sd["state"][0]["momentum_buffer"])
    opt.load_state_dict({"param_groups": sd["param_groups"]})        # no "state": a fresh start
    assert not opt.state


def test_loading_adamw_s_state_into_adam_makes_it_decoupled_as_in_pytorch():
    sd = trained(optim.AdamW).state_dict()
    adam = optim.Adam([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))])
    adam.load_state_dict(sd)
    assert adam.decoupled_weight_decay is True and adam.weight_decay == 1e-2


def test_an_empty_group_and_a_zero_step_round_trip(tmp_path):
    # an empty "params" list comes back from mg.load as an empty float array; step 0 is a count too
    def make():
        p = nn.Parameter(np.ones(2))
        opt = optim.Adam([{"params": [p]}, {"params": []}], lr=0.1)
        return p, opt

    p, opt = make()
    opt.state[p].update(step=np.array(0), exp_avg=np.zeros(2), exp_avg_sq=np.zeros(2))
    mg.save({"opt": opt.state_dict()}, tmp_path / "c")
    loaded = mg.load(tmp_path / "c")["opt"]
    assert loaded["param_groups"]["1"]["params"].shape == (0,)
    q, resumed = make()
    resumed.load_state_dict(loaded)
    assert resumed.state[q]["step"] == 0 and resumed.state[q]["step"].dtype == np.int64
    p.grad = q.grad = np.array([1.0, -1.0])
    opt.step()
    resumed.step()
    np.testing.assert_array_equal(q.data, p.data)
    np.testing.assert_allclose(q.data, [0.9, 1.1])          # a first step moves by lr


def test_a_whole_number_float_step_is_accepted():
    sd = trained(optim.Adam).state_dict()                 # PyTorch keeps step as a float tensor
    sd["state"][0]["step"] = np.float32(1.0)
    opt = optim.Adam([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))])
    opt.load_state_dict(sd)
    step = opt.state[opt.param_groups[0]["params"][0]]["step"]
    assert step.dtype == np.int64 and step == 1


def test_the_layout_of_earlier_versions_is_converted(tmp_path):
    # what minigrad wrote before parameter groups: {"state": {"0": ...}, "hyperparameters": {...}}
    opt = trained(optim.Adam)
    new = opt.state_dict()
    old = {"state": {str(k): v for k, v in new["state"].items()},
           "hyperparameters": dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)}
    mg.save({"optimizer": old}, tmp_path / "old")
    other = optim.Adam([nn.Parameter(np.ones(3, dtype=np.float32)), nn.Parameter(np.ones((2, 2), dtype=np.float32))])
    other.load_state_dict(mg.load(tmp_path / "old")["optimizer"])
    got = other.state_dict()
    assert got["param_groups"] == new["param_groups"]
    for k, entry in new["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(got["state"][k][name], value)
    sgd = optim.SGD([nn.Parameter(np.ones(1))], lr=0.5)
    sgd.load_state_dict({"hyperparameters": dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0,
                                                 nesterov=False)})      # an empty "state" vanished
    assert sgd.lr == 0.1
    with pytest.raises(ValueError, match="another optimizer"):
        other.load_state_dict(mg.load(tmp_path / "old")["optimizer"] | {"hyperparameters": {"lr": 0.1}})


def test_load_state_dict_wants_a_dict():
    with pytest.raises(TypeError, match="expects a dict, got list"):
        sgd_momentum([nn.Parameter(np.ones(1))]).load_state_dict([1, 2])


def test_a_step_is_an_in_place_update_that_backward_through_an_older_graph_notices():
    """As in torch: a graph that saved p, then opt.step(), then backward through it, raises."""
    for make in (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1)):
        w = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
        loss = (w * w).sum()
        loss.backward(retain_graph=True)
        make([w]).step()
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            loss.backward()


def test_load_state_dict_is_an_in_place_update_too():
    layer = mg.nn.Linear(2, 1, dtype=np.float64)
    y = (layer(mg.tensor(np.ones((3, 2)))) ** 2).sum()
    layer.load_state_dict({k: v + 1 for k, v in layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()
