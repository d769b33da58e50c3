"""optim/validate.py: what params and hyperparameters may be, refused before anything changes,
with PyTorch's words where PyTorch has them."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

from .common import assert_unchanged, snapshot


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
    # a wrong type reads "where: name must be ...", a value out of range "Invalid name: v in where"
    def refused(build, where):
        with pytest.raises(error, match=message) as info:
            build()
        assert where in str(info.value), str(info.value)

    w = nn.Parameter(np.ones(2))
    base = dict(lr=0.1) if cls is optim.SGD else {}
    refused(lambda: cls([w], **{**base, **kwargs}), cls.__name__)            # the defaults
    refused(lambda: cls([{"params": [w], **kwargs}], **base), "param group 0")  # one group's value
    opt = cls([w], **base)
    before = snapshot(opt)
    refused(lambda: opt.add_param_group({"params": [nn.Parameter(np.ones(1))], **kwargs}), "param group 1")
    assert_unchanged(opt, before)
    if len(kwargs) == 1:                                                # opt.lr = x, when one name
        (name, value), = kwargs.items()
        refused(lambda: setattr(opt, name, value), f"{cls.__name__}.{name}")
        assert_unchanged(opt, before)
    opt.param_groups[0].update(kwargs)                                  # set by hand: caught at step
    w.grad = np.ones(2)
    refused(opt.step, "param group 0")
    np.testing.assert_array_equal(w.data, [1.0, 1.0])
    assert not opt.state


def test_unknown_hyperparameters_are_refused():
    w = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match=r"unknown \['weight_decy'\]"):   # a typo would do nothing
        optim.SGD([{"params": [w], "weight_decy": 0.1}], lr=0.1)
    with pytest.raises(TypeError, match="amsgrad"):
        optim.Adam([w], amsgrad=True)


# ------------------------------------------------------------------ real floating-point parameters only
@pytest.mark.parametrize("dtype, message", [
    (np.complex128, r"has dtype complex128: minigrad differentiates real tensors only, so its optimizers "
                    r"take real floating-point parameters"),
    (np.complex64, r"has dtype complex64: minigrad differentiates real tensors only"),
    (np.int32, r"has dtype int32: only floating-point tensors can require gradients"),
    (np.bool_, r"has dtype bool: only floating-point"),
])
def test_parameters_that_are_not_real_floating_point_are_refused(dtype, message):
    # complex: Adam would square g where torch uses g·conj(g); minigrad differentiates real tensors only
    bad = mg.tensor(np.ones(2, dtype=dtype))
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        with pytest.raises(TypeError, match=r"params\[1\] " + message):
            cls([nn.Parameter(np.ones(2)), bad])
        opt = cls([nn.Parameter(np.ones(2))], lr=0.1)
        before = snapshot(opt)
        with pytest.raises(TypeError, match=r"param group 1 'params'\[0\] " + message):
            opt.add_param_group({"params": [bad]})
        assert_unchanged(opt, before)
    assert optim.SGD([mg.tensor(np.ones(2, dtype=np.float16))], lr=0.1)      # every real float is fine


def test_numpy_numbers_are_hyperparameters_too():
    w = nn.Parameter(np.ones(2))
    opt = optim.Adam([w], lr=np.float32(0.5), betas=(np.float64(0.5), 0.9), eps=np.float16(1e-3),
                     weight_decay=np.int64(0))
    w.grad = np.ones(2)
    opt.step()                                      # a first Adam step moves each coordinate by lr
    np.testing.assert_allclose(w.data, [0.5, 0.5], rtol=1e-3)
    with pytest.raises(TypeError, match=r"Adam: beta parameter at index 0 must be a real number, got np.True_"):
        optim.Adam([w], betas=(np.True_, 0.9))


def test_the_edges_of_each_range_are_accepted_as_in_torch():
    # lr, momentum, weight_decay, eps = 0 and betas = (0, 0) are valid: m = g, v = g², no history
    w = nn.Parameter(np.array([1.0, -2.0]))
    optim.SGD([w], lr=0.0, momentum=0.0, dampening=-1.0, weight_decay=0.0)
    opt = optim.Adam([w], lr=0.5, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0)
    for g in ([2.0, -1.0], [-4.0, 3.0]):
        before = w.data.copy()
        w.grad = np.array(g)
        opt.step()                                  # p -= lr · g / |g| at every step
        np.testing.assert_allclose(w.data, before - 0.5 * np.sign(g), rtol=1e-12)
