"""In-place updates of a Tensor (``+= -= *= /=`` and ``t[i] = v``), with PyTorch's rules.

In place on ``.data``, version counter bumped; fine on tensors that need no grad and on any
tensor under no_grad (an optimizer's update); refused, before anything changes, on a leaf that
requires grad while recording, on a tensor inside a graph, and with an operand that requires grad.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

OPS = {"+=": (lambda t, v: t.__iadd__(v), np.add), "-=": (lambda t, v: t.__isub__(v), np.subtract),
       "*=": (lambda t, v: t.__imul__(v), np.multiply), "/=": (lambda t, v: t.__itruediv__(v), np.divide)}


def values(seed=0, shape=(2, 3)):
    return np.random.default_rng(seed).uniform(1.0, 2.0, shape)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("other", ["number", "array", "tensor", "broadcast"])
def test_in_place_ops_change_data_in_place_and_bump_the_version(name, other):
    t = mg.tensor(values(0))
    before, array = t.data.copy(), t.data
    operand = {"number": 1.5, "array": values(1), "tensor": mg.tensor(values(1)),
               "broadcast": mg.tensor(values(1, (3,)))}[other]
    fn, reference = OPS[name]
    result = fn(t, operand)
    assert result is t and t.data is array                    # the same object, the same memory
    np.testing.assert_allclose(t.data, reference(before, getattr(operand, "data", operand)))
    assert t._version[0] == 1


def test_optimizer_habit_updates_the_parameters():
    model = nn.Linear(3, 2)
    x = mg.tensor(values(2, (4, 3)).astype(np.float32))
    (model(x) * mg.tensor(values(3, (4, 2)).astype(np.float32))).sum().backward()
    before = [p.data.copy() for p in model.parameters()]
    with mg.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad                                  # rebinding would change nothing
    for p, b in zip(model.parameters(), before):
        np.testing.assert_allclose(p.data, b - 0.1 * p.grad, rtol=1e-6)
        assert p.requires_grad and p.is_leaf


def test_a_leaf_that_requires_grad_is_refused_while_recording():
    w = mg.tensor(values(0), requires_grad=True)
    before = w.data.copy()
    for name, (fn, _) in OPS.items():
        with pytest.raises(RuntimeError, match=r"leaf Tensor that requires grad .* in-place operation"):
            fn(w, 1.0)
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        w[0] = 5.0
    np.testing.assert_array_equal(w.data, before)              # refused before touching anything
    assert w._version[0] == 0


def test_a_tensor_inside_a_graph_is_refused_while_recording():
    w = mg.tensor(values(0), requires_grad=True)
    y = w.exp()
    before = y.data.copy()
    with pytest.raises(RuntimeError, match=r"inside a graph \(made by Exp\).*t = t \+"):
        y += 1
    with pytest.raises(RuntimeError, match="inside a graph"):
        y[0, 0] = 0.0
    np.testing.assert_array_equal(y.data, before)


def test_an_operand_that_requires_grad_is_refused_while_recording():
    total = mg.tensor(np.zeros((2, 3)))
    w = mg.tensor(values(0), requires_grad=True)
    with pytest.raises(RuntimeError, match="operand that requires grad"):
        total += w
    with pytest.raises(RuntimeError, match="operand that requires grad"):
        total[0] = w[0]
    assert np.all(total.data == 0)
    with mg.no_grad():
        total += w                                             # allowed: nothing is recorded
    np.testing.assert_array_equal(total.data, w.data)


def test_tensors_that_need_no_grad_update_in_place_while_recording():
    t = mg.tensor(values(0))
    t *= 2.0
    t[1] = 7.0
    assert np.all(t.data[1] == 7.0) and t._version[0] == 2


def test_setitem_semantics():
    t = mg.tensor(np.zeros((3, 4)))
    t[0] = 1.0
    t[1, 2:] = mg.tensor(np.array([5.0, 6.0]))
    t[np.array([2, 2])] = np.arange(4.0)
    np.testing.assert_array_equal(t.data, [[1, 1, 1, 1], [0, 0, 5, 6], [0, 1, 2, 3]])
    with pytest.raises(ValueError):
        t[0] = np.ones(5)                                     # numpy's broadcast error


def test_indexed_in_place_update_reaches_the_base_under_no_grad():
    w = mg.tensor(values(0), requires_grad=True)
    before = w.data.copy()
    with mg.no_grad():
        w[0] += 1.0                                            # getitem, iadd, setitem
    np.testing.assert_allclose(w.data[0], before[0] + 1)
    np.testing.assert_array_equal(w.data[1], before[1])
    assert w._version[0] >= 1


def test_dtype_and_shape_errors_are_loud():
    ints = mg.tensor(np.arange(3))
    with pytest.raises(TypeError):
        ints += 1.5                                            # float into int, as torch refuses
    with pytest.raises(TypeError):
        ints /= 2
    small = mg.tensor(np.zeros(3))
    with pytest.raises(ValueError):
        small += np.ones((2, 3))                               # cannot grow in place
    np.testing.assert_array_equal(ints.data, [0, 1, 2])


def test_float32_stays_float32_under_a_float64_operand():
    t = mg.tensor(np.ones(3, np.float32))
    t += np.ones(3, np.float64)
    assert t.dtype == np.float32 and np.all(t.data == 2)


VIEWS = [("index", lambda w: w[0]), ("slice", lambda w: w[:, 1:]), ("reshape", lambda w: w.reshape(6)),
         ("transpose", lambda w: w.T), ("view-of-view", lambda w: w.reshape(6)[2:])]


@pytest.mark.parametrize("name, make_view", VIEWS, ids=[v[0] for v in VIEWS])
def test_a_view_made_under_no_grad_is_refused_in_place_with_grad_enabled(name, make_view):
    w = mg.tensor(values(0), requires_grad=True)
    with mg.no_grad():
        view = make_view(w)
    before = w.data.copy()
    for change in (lambda v: v.__iadd__(1.0), lambda v: v.__imul__(2.0), lambda v: v.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match=r"view that was created in no_grad mode .* grad mode enabled"):
            change(view)
    with pytest.raises(RuntimeError, match="created in no_grad mode"):
        view[...].__isub__(1.0)                    # a view of it, made with grad enabled, too
    np.testing.assert_array_equal(w.data, before)  # refused before touching anything
    assert w._version[0] == 0
    with mg.no_grad():
        view *= 2.0                                # both inside no_grad: fine, as in PyTorch
    assert w._version[0] == 1 and not np.array_equal(w.data, before)


def test_other_views_change_in_place_with_grad_enabled():
    c = mg.tensor(values(0))                       # needs no grad
    with mg.no_grad():
        view = c[0]
    view += 1.0
    w = mg.tensor(values(1), requires_grad=True)
    with mg.no_grad():
        detached = w.detach()                      # detach is not refused, as in PyTorch
    detached += 1.0
    assert w._version[0] == 1
