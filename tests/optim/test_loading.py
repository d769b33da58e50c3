"""optim/loading.py: state_dict round trips (also through mg.save / mg.load) that resume training
exactly, load_state_dict refusals that change nothing, and PyTorch's own state_dict keys
(hand-made here; a real torch optimizer's in test_torch.py)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

from .common import assert_unchanged, sgd_momentum, snapshot, train, trained, with_entry


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
    "index_a_string": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                              "state": {"0": sd["state"][0]}},
                       r"state_dict 'state': '0' is not a parameter index"),   # mg.load keeps int keys
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
    "group_without_params": (sgd_momentum, lambda: {"state": {}, "param_groups": [
                                 {k: v for k, v in trained(sgd_momentum).state_dict()["param_groups"][0].items()
                                  if k != "params"}]}, r"state_dict param_groups\[0\] has no 'params'"),
    "no_state": (sgd_momentum, lambda: {"param_groups": trained(sgd_momentum).state_dict()["param_groups"]},
                 r"the keys 'state' and 'param_groups'; got \['param_groups'\]"),
    "groups_not_a_list": (sgd_momentum, lambda: {"state": {}, "param_groups": 5},
                          r"'param_groups' must be a list of dicts, got int"),
    "group_not_a_dict": (sgd_momentum, lambda: {"state": {}, "param_groups": [[0, 1]]},
                         r"param_groups\[0\] must be a dict, got list"),
    "state_not_a_dict": (sgd_momentum, lambda: {**trained(sgd_momentum).state_dict(), "state": [np.ones(3)]},
                         r"state_dict 'state' must be a dict, got list"),
    "entry_not_a_dict": (sgd_momentum, lambda: {**trained(sgd_momentum).state_dict(), "state": {0: np.ones(3)}},
                         r"state_dict state\[0\] must be a dict, got numpy\.ndarray of shape \(3,\)"),
    "groups_a_dict": (sgd_momentum, lambda: {"state": {}, "param_groups": {0: trained(sgd_momentum).state_dict()["param_groups"][0]}},
                      r"'param_groups' must be a list of dicts, got dict"),        # mg.load gives lists back
    "params_an_array": (sgd_momentum, lambda: {**(sd := trained(sgd_momentum).state_dict()),
                                               "param_groups": [dict(sd["param_groups"][0], params=np.array([0, 1]))]},
                        r"must be a list of parameter indices, got array\(\[0, 1\]\)"),
    "old_layout": (optim.Adam, lambda: {"state": {}, "hyperparameters": dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8,
                                                                              weight_decay=0.0)},
                   r"the keys 'state' and 'param_groups'; got \['hyperparameters', 'state'\]"),
    "ragged_buffer": (sgd_momentum, lambda: with_entry(trained(sgd_momentum).state_dict(), 0, "momentum_buffer",
                                                       [[1.0], [2.0, 3.0]]),
                      r"state\[0\]\['momentum_buffer'\] is not an array of numbers"),
    "complex_buffer": (sgd_momentum, lambda: with_entry(trained(sgd_momentum).state_dict(), 0, "momentum_buffer",
                                                        np.ones(3, dtype=np.complex64)),
                       r"has dtype complex64; expected floating point"),
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


def test_a_hyperparameter_of_the_wrong_type_is_a_type_error_and_changes_nothing():
    # what mg.load gave back before it kept Python numbers: a 0-d array is not a learning rate
    opt = trained(sgd_momentum)
    before = snapshot(opt)
    sd = opt.state_dict()
    for name, value in (("lr", np.array(0.1)), ("nesterov", np.array(False)), ("momentum", "0.9")):
        bad = {**sd, "param_groups": [dict(sd["param_groups"][0], **{name: value})]}
        with pytest.raises(TypeError, match=r"state_dict param_groups\[0\]: .* must be .*, got "):
            opt.load_state_dict(bad)
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
    opt.load_state_dict({"state": {}, "param_groups": sd["param_groups"]})   # no state: a fresh start
    assert not opt.state


def test_loading_adamw_s_state_into_adam_makes_it_decoupled_as_in_pytorch():
    sd = trained(optim.AdamW).state_dict()
    adam = optim.Adam([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))])
    adam.load_state_dict(sd)
    assert adam.decoupled_weight_decay is True and adam.weight_decay == 1e-2


def test_an_empty_group_and_a_zero_step_round_trip(tmp_path):
    # an empty "params" list comes back from mg.load as an empty list; step 0 is a count too
    def make():
        p = nn.Parameter(np.ones(2))
        opt = optim.Adam([{"params": [p]}, {"params": []}], lr=0.1)
        return p, opt

    p, opt = make()
    opt.state[p].update(step=np.array(0), exp_avg=np.zeros(2), exp_avg_sq=np.zeros(2))
    mg.save({"opt": opt.state_dict()}, tmp_path / "c")
    loaded = mg.load(tmp_path / "c")["opt"]
    assert loaded["param_groups"][1]["params"] == [] and list(loaded["state"]) == [0]
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


def test_load_state_dict_wants_a_dict():
    with pytest.raises(TypeError, match="expects a dict, got list"):
        sgd_momentum([nn.Parameter(np.ones(1))]).load_state_dict([1, 2])


# ------------------------------------------------------------------ PyTorch's own state_dicts (hand-made)
TORCH_EXTRAS = {   # PyTorch 2.13's hyperparameters that minigrad's optimizers lack, at their defaults
    "SGD": dict(maximize=False, foreach=None, differentiable=False, fused=None),
    "Adam": dict(amsgrad=False, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None),
}


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_pytorch_s_extra_keys_at_their_defaults_are_accepted_and_dropped(name):
    make = sgd_momentum if name == "SGD" else getattr(optim, name)
    sd = trained(make).state_dict()
    extras = TORCH_EXTRAS["SGD" if name == "SGD" else "Adam"]
    assert make([nn.Parameter(np.ones(1))]).torch_defaults == extras
    sd["param_groups"][0].update(extras)
    sd["param_groups"][0]["lr"] = 0.375
    opt = make([nn.Parameter(np.ones(3, np.float32)), nn.Parameter(np.ones((2, 2), np.float32))])
    opt.load_state_dict(sd)
    assert opt.lr == 0.375 and set(opt.param_groups[0]) == {"params", *opt.defaults}   # dropped
    assert set(opt.state_dict()["param_groups"][0]) == {"params", *opt.defaults}


@pytest.mark.parametrize("name, key, value", [
    ("SGD", "maximize", True), ("SGD", "foreach", True), ("SGD", "foreach", False), ("SGD", "fused", True),
    ("SGD", "differentiable", True), ("Adam", "amsgrad", True), ("Adam", "capturable", True),
    ("Adam", "maximize", True), ("Adam", "fused", False), ("AdamW", "differentiable", True),
    ("Adam", "maximize", 0),                                  # equal to the default, but not it
])
def test_pytorch_s_extra_keys_at_other_values_are_refused_by_name(name, key, value):
    make = sgd_momentum if name == "SGD" else getattr(optim, name)
    opt = trained(make)
    sd = opt.state_dict()
    sd["param_groups"][0].update(TORCH_EXTRAS["SGD" if name == "SGD" else "Adam"], **{key: value})
    opt.param_groups[0]["lr"] = 0.125
    before = snapshot(opt)
    with pytest.raises(ValueError, match=rf"state_dict param_groups\[0\] has {key}={value!r}: minigrad's "
                                         rf"{name} does not have this option; a PyTorch state_dict loads "
                                         rf"only with PyTorch's defaults \(.*{key}="):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)


@pytest.mark.parametrize("name, key", [("SGD", "amsgrad"), ("SGD", "initial_lr"), ("Adam", "initial_lr"),
                                       ("AdamW", "momentum")])
def test_keys_that_are_neither_ours_nor_pytorch_s_extras_are_refused_by_name(name, key):
    make = sgd_momentum if name == "SGD" else getattr(optim, name)
    opt = trained(make)
    sd = opt.state_dict()
    sd["param_groups"][0][key] = False if key == "amsgrad" else 0.1
    before = snapshot(opt)
    with pytest.raises(ValueError, match=rf"has the hyperparameters \[.*'{key}'.*\], but {name} has .*another optimizer"):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)
