"""Optional: optimizers against PyTorch (skipped when torch is not installed).

Parameter groups step for step in float64, the errors and warnings of the constructor, the
state_dict layout (indices, entry names, hyperparameters), loading AdamW's state into Adam and
a real torch optimizer's state_dict into ours (then stepping on as torch does), and what
Module.load_state_dict accepts where torch's copy_ would lose nothing.
"""
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 2), (2,), (4,)]


def pair(seed=0):
    """The same starting values as minigrad Parameters and torch leaves."""
    rng = np.random.default_rng(seed)
    starts = [rng.standard_normal(s) for s in SHAPES]
    return ([nn.Parameter(s.copy()) for s in starts],
            [torch.tensor(s.copy(), dtype=torch.float64, requires_grad=True) for s in starts])


def groups(params, overrides):
    return [{"params": params[:2], **overrides[0]}, {"params": params[2:], **overrides[1]}]


CASES = {
    "sgd_decay_excluded": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1), [{}, dict(weight_decay=0.0)]),
    "sgd_nesterov_lr": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), [dict(lr=0.2), {}]),
    "sgd_dampening": ("SGD", dict(lr=0.05), [dict(momentum=0.5, dampening=0.4), dict(momentum=0.9)]),
    "adam": ("Adam", dict(lr=0.01, weight_decay=0.1), [dict(betas=(0.5, 0.8)), dict(weight_decay=0.0, eps=1e-3)]),
    "adam_decoupled_group": ("Adam", dict(lr=0.01, weight_decay=0.1), [{}, dict(decoupled_weight_decay=True)]),
    "adamw": ("AdamW", dict(lr=0.01), [dict(weight_decay=0.5), dict(weight_decay=0.0, lr=0.1)]),
}


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_parameter_groups_step_as_in_torch(case):
    name, defaults, overrides = CASES[case]
    ours, theirs = pair()
    opt = getattr(optim, name)(groups(ours, overrides), **defaults)
    ref = getattr(torch.optim, name)(groups(theirs, overrides), **defaults)
    rng = np.random.default_rng(1)
    for step in range(5):
        if step == 3:                                   # a schedule, per group
            opt.param_groups[1]["lr"] *= 0.5
            ref.param_groups[1]["lr"] *= 0.5
        for p, t in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, t.grad = g, torch.tensor(g)
        opt.step()
        ref.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"step {step + 1}, parameter {i}")


def outcome(build):
    """("ok" | exception type, the warnings' messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            build()
            result = "ok"
        except Exception as error:                      # noqa: BLE001 - compared with torch's
            result = type(error)
    return result, [str(w.message) for w in caught]


CONSTRUCTION = {
    "one_tensor": lambda T, w, v: T(w),
    "non_leaf": lambda T, w, v: T([w * 2]),
    "empty": lambda T, w, v: T([]),
    "not_tensors": lambda T, w, v: T([1.0, 2.0]),
    "mixed": lambda T, w, v: T([{"params": [w]}, v]),
    "duplicate_within": lambda T, w, v: T([w, w]),
    "duplicate_across": lambda T, w, v: T([{"params": [w]}, {"params": [v, w]}]),
    "group_params_a_tensor": lambda T, w, v: T([{"params": w}]),
    "frozen": lambda T, w, v: None,                     # filled below: a tensor without grad
    "negative_lr": lambda T, w, v: T([w], lr=-0.1),
    "negative_momentum": lambda T, w, v: T([w], momentum=-0.1),
    "nesterov_without_momentum": lambda T, w, v: T([w], nesterov=True),
    "negative_weight_decay": lambda T, w, v: T([w], weight_decay=-1.0),
}


@pytest.mark.parametrize("case", CONSTRUCTION, ids=CONSTRUCTION.keys())
def test_sgd_construction_errors_and_warnings_are_torch_s(case):
    if case == "frozen":
        def build(T, w, v):
            return T([w.detach() if isinstance(w, torch.Tensor) else mg.tensor(w.data)])
    else:
        build = CONSTRUCTION[case]
    w, v = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    tw, tv = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    (ours, our_warnings), (theirs, their_warnings) = (outcome(lambda: build(optim.SGD, w, v)),
                                                      outcome(lambda: build(torch.optim.SGD, tw, tv)))
    assert ours == theirs and len(our_warnings) == len(their_warnings)
    assert all(a.startswith(b) for a, b in zip(our_warnings, their_warnings))   # ours may say more


@pytest.mark.parametrize("kwargs", [dict(betas=(0.9, 1.0)), dict(betas=(-0.1, 0.9)), dict(eps=-1.0),
                                    dict(lr=-1.0)], ids=["beta2", "beta1", "eps", "lr"])
def test_adam_range_errors_are_torch_s(kwargs):
    w, tw = nn.Parameter(np.ones(2)), torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError) as ours:
        optim.Adam([w], **kwargs)
    with pytest.raises(ValueError) as theirs:
        torch.optim.Adam([tw], **kwargs)
    assert str(ours.value).startswith(str(theirs.value))   # ours adds what was expected


def test_a_duplicated_parameter_warns_as_in_torch_and_is_numbered_the_same():
    w, v = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    tw, tv = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    with pytest.warns(UserWarning) as ours:
        opt = optim.SGD([w, v, w], lr=0.1)
    with pytest.warns(UserWarning) as theirs:
        ref = torch.optim.SGD([tw, tv, tw], lr=0.1)
    assert str(ours[0].message).startswith(str(theirs[0].message))
    assert opt.state_dict()["param_groups"][0]["params"] == ref.state_dict()["param_groups"][0]["params"]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_state_dict_layout_is_torch_s(name):
    ours, theirs = pair()
    kwargs = dict(lr=0.1, momentum=0.9) if name == "SGD" else dict(lr=0.1)
    opt = getattr(optim, name)(groups(ours, [{}, dict(lr=0.5)]), **kwargs)
    ref = getattr(torch.optim, name)(groups(theirs, [{}, dict(lr=0.5)]), **kwargs)
    for p, t in zip(ours[1:], theirs[1:]):              # the first parameter has no gradient
        p.grad, t.grad = np.ones(p.shape), torch.ones(t.shape, dtype=torch.float64)
    opt.step()
    ref.step()
    mine, torch_sd = opt.state_dict(), ref.state_dict()
    assert list(mine) == list(torch_sd)
    assert list(mine["state"]) == list(torch_sd["state"]) == [1, 2]
    for index, entry in torch_sd["state"].items():
        assert list(mine["state"][index]) == list(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(mine["state"][index][key], value.numpy(), rtol=1e-12, err_msg=key)
    for got, want in zip(mine["param_groups"], torch_sd["param_groups"]):
        assert got["params"] == want["params"]
        assert {k: v for k, v in got.items()} == {k: want[k] for k in got}   # ours: a subset of torch's keys


def test_loading_adamw_s_state_into_adam_behaves_as_in_torch():
    ours, theirs = pair()
    opt, ref = optim.AdamW(ours, lr=0.1), torch.optim.AdamW(theirs, lr=0.1)
    for p, t in zip(ours, theirs):
        p.grad, t.grad = np.ones(p.shape), torch.ones(t.shape, dtype=torch.float64)
    opt.step()
    ref.step()
    adam, torch_adam = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    adam.load_state_dict(opt.state_dict())
    torch_adam.load_state_dict(ref.state_dict())
    assert adam.param_groups[0]["decoupled_weight_decay"] is torch_adam.param_groups[0]["decoupled_weight_decay"] is True
    adam.step()
    torch_adam.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("value", [np.array(3.0), np.array(7, dtype=np.int32), np.array(0.0)])
def test_module_load_state_dict_takes_what_torch_takes_without_loss(value):
    ours, theirs = nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    state, torch_state = ours.state_dict(), theirs.state_dict()
    state["num_batches_tracked"], torch_state["num_batches_tracked"] = value, torch.from_numpy(value)
    weight = np.array([1 / 3, 2 / 3])                   # float64 into float32
    state["weight"], torch_state["weight"] = weight, torch.from_numpy(weight)
    ours.load_state_dict(state)
    theirs.load_state_dict(torch_state)
    assert ours.num_batches_tracked == theirs.num_batches_tracked.item()
    np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().numpy())


def test_module_load_state_dict_refuses_what_torch_would_truncate():
    theirs = torch.nn.BatchNorm1d(2)
    torch_state = theirs.state_dict()
    torch_state["num_batches_tracked"] = torch.tensor(2.5)
    theirs.load_state_dict(torch_state)
    assert theirs.num_batches_tracked.item() == 2       # torch truncates silently ...
    ours = nn.BatchNorm1d(2)
    state = ours.state_dict()
    state["num_batches_tracked"] = np.array(2.5)
    with pytest.raises(ValueError, match="num_batches_tracked: int64 cannot hold"):
        ours.load_state_dict(state)                     # ... we refuse


LOADABLE = {
    "sgd": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_plain": ("SGD", dict(lr=0.1)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01)),
}


@pytest.mark.parametrize("case", LOADABLE, ids=LOADABLE.keys())
def test_a_pytorch_optimizer_s_state_dict_loads_and_steps_on_as_torch(case):
    # torch's state_dict as it is: foreach=None, fused=None, ... ("step" a float tensor)
    name, kwargs = LOADABLE[case]
    ours, theirs = pair()
    ref = getattr(torch.optim, name)(groups(theirs, [{}, dict(lr=0.02)]), **kwargs)
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]
    for step in grads[:3]:
        for t, g in zip(theirs, step):
            t.grad = torch.tensor(g)
        ref.step()
    for p, t in zip(ours, theirs):
        p.data[...] = t.detach().numpy()
    opt = getattr(optim, name)(groups(ours, [{}, {}]), lr=0.5)         # other hyperparameters, no state
    opt.load_state_dict(ref.state_dict())
    assert opt.param_groups[1]["lr"] == 0.02 and set(opt.param_groups[0]) == {"params", *opt.defaults}
    for step in grads[3:]:
        for p, t, g in zip(ours, theirs, step):
            p.grad, t.grad = g, torch.tensor(g)
        opt.step()
        ref.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, kwargs, message", [
    ("SGD", dict(lr=0.1, maximize=True), "maximize=True"),
    ("Adam", dict(lr=0.1, amsgrad=True), "amsgrad=True"),
    ("AdamW", dict(lr=0.1, foreach=True), "foreach=True"),
])
def test_a_pytorch_state_dict_with_an_option_minigrad_lacks_is_refused_by_name(name, kwargs, message):
    _, theirs = pair()
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    opt = getattr(optim, name)(pair()[0], lr=0.1)
    with pytest.raises(ValueError, match=rf"param_groups\[0\] has {message}: minigrad's {name} does not have this option"):
        opt.load_state_dict(ref.state_dict())
    assert opt.lr == 0.1 and not opt.state
