"""optim/optimizer.py: what every optimizer shares. Updates in place that leave gradients alone;
parameter groups and their hyperparameters (opt.lr, add_param_group, set by hand); what step()
checks before it moves anything (every gradient every step, a group when it changed); Tensor
gradients after create_graph; the state_dict layout; version bumps."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

from .common import ALL, Quadratic, adam_reference, assert_unchanged, sgd_reference, snapshot


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


def test_a_step_is_an_in_place_update_that_backward_through_an_older_graph_notices():
    """As in torch: a graph that saved p, then opt.step(), then backward through it, raises."""
    for make in (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1)):
        w = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
        loss = (w * w).sum()
        loss.backward(retain_graph=True)
        make([w]).step()
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            loss.backward()


# ------------------------------------------------------------------ what step() checks, and when
MAKERS = [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1),
          lambda ps: optim.AdamW(ps, lr=0.1)]


@pytest.mark.parametrize("make", MAKERS, ids=["sgd", "adam", "adamw"])
@pytest.mark.parametrize("data, grad, error, message", [
    (np.array([1 + 1j, 2.0]), np.array([1 + 1j, 1.0]), TypeError,
     r"param group 0: a parameter of shape \(2,\) now has dtype complex128; optimizers step real "
     r"floating-point parameters only \(minigrad differentiates real tensors only\)"),
    (np.array([1, 2]), np.ones(2), TypeError, r"a parameter of shape \(2,\) now has dtype int64"),
    (np.ones(2), np.array([1j, 1.0]), TypeError,
     r"param group 0: a parameter of dtype float64 has a gradient of dtype complex128; expected real numbers"),
    (np.ones(2), np.ones(3), ValueError, r"param group 0: a parameter of shape \(2,\) has a gradient of shape \(3,\)"),
], ids=["data_complex", "data_int", "grad_complex", "grad_shape"])
def test_a_parameter_or_gradient_changed_by_hand_is_refused_before_any_parameter_moves(make, data, grad, error, message):
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = make([a, b])
    a.grad = b.grad = np.ones(2)
    opt.step()                                          # checked and stepped once: a settled group
    before, version = snapshot(opt), a._version[0]
    b.data, b.grad = data, grad                         # e.g. b.data = complex array, between steps
    with pytest.raises(error, match=message):
        opt.step()
    assert_unchanged(opt, before)                       # not even the parameter before it moved
    assert a._version[0] == version
    if data.dtype.kind != "f":                          # and a new optimizer refuses b up front
        with pytest.raises(TypeError, match=r"params\[1\] has dtype"):
            make([a, b])


def test_a_group_is_checked_again_only_when_it_changed():
    w = nn.Parameter(np.ones(2))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    checked, check_group = [], opt._check_group
    opt._check_group = lambda group, where: (checked.append(where), check_group(group, where))
    for _ in range(4):
        w.grad = np.ones(2)
        opt.step()
    assert checked == ["param group 0"]                 # once, at the first step
    opt.param_groups[0]["lr"] = 0.2                     # a schedule
    opt.step()
    opt.step()
    assert checked == ["param group 0"] * 2


def test_hyperparameters_set_by_hand_are_checked_even_when_equal_to_valid_ones():
    w = nn.Parameter(np.ones(2))
    opt = optim.SGD([w], lr=1, momentum=0.9, nesterov=True)
    w.grad = np.ones(2)
    opt.step()
    before = w.data.copy()
    for name, value, error in (("lr", True, TypeError), ("nesterov", 1, TypeError)):   # == 1, == True
        opt.param_groups[0][name] = value
        with pytest.raises(error):
            opt.step()
        opt.param_groups[0][name] = 1 if name == "lr" else True
    np.testing.assert_array_equal(w.data, before)
    adam = optim.Adam([w], lr=0.1)
    adam.param_groups[0]["betas"] = [0.9, 0.999]        # a list, set by hand: fine
    adam.step()
    adam.param_groups[0]["betas"][1] = 1.5              # then changed in place: still caught
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.5 in param group 0"):
        adam.step()


def test_a_parameter_list_changed_by_hand_is_checked_and_used():
    a, b, c = (nn.Parameter(np.ones(2)) for _ in range(3))
    opt = optim.SGD([a, b], lr=0.1)
    params = opt.param_groups[0]["params"]
    for p in (a, b, c):
        p.grad = np.ones(2)
    opt.step()
    params[1] = c                                       # in place: c is stepped now, not b
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0], c.data[0]], [0.8, 0.9, 0.9])
    params.append(a)                                    # a repeated parameter: stepped once
    opt.step()
    np.testing.assert_allclose([a.data[0], c.data[0]], [0.7, 0.8])
    params.append(mg.tensor(np.arange(2)))              # an integer tensor: refused, nothing moves
    with pytest.raises(TypeError, match=r"param group 0 'params'\[3\] has dtype int64"):
        opt.step()
    np.testing.assert_allclose([a.data[0], c.data[0]], [0.7, 0.8])
    opt.param_groups[0]["params"] = [b]                 # a new list
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.7, 0.8])


def test_the_duplicate_warning_names_the_user_s_line():
    w = nn.Parameter(np.ones(1))
    for build in (lambda: optim.SGD([w, w], lr=0.1), lambda: optim.AdamW([{"params": [w, w]}]),
                  lambda: optim.Adam([nn.Parameter(np.ones(1))]).add_param_group({"params": [w, w]})):
        with pytest.warns(UserWarning, match="duplicate parameters") as caught:
            build()
        assert [(r.filename, r.lineno) for r in caught] == [(__file__, build.__code__.co_firstlineno)]


@pytest.mark.parametrize("group", [[nn.Parameter(np.ones(1))], nn.Parameter(np.ones(1)), "params", None])
def test_add_param_group_wants_a_dict(group):
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(TypeError, match=rf"param_group must be a dict, but got {type(group).__name__}"):
        opt.add_param_group(group)
    assert len(opt.param_groups) == 1
