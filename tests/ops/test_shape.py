"""Shape ops: reshape, transpose (.T, swapaxes), broadcast_to, indexing (basic, integer arrays with
repeats, boolean masks) and its adjoint IndexAdd. Forward against numpy, gradients against finite
differences, a tensor used twice, second order (squared, so it flows through each backward).
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.ops.shape import GetItem, IndexAdd, Reshape, Transpose


def leaf(shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def check_op(op, reference, x):
    """Forward against numpy, then first and second order against finite differences."""
    y = op(x)
    expected = reference(x.data)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.data, expected)
    assert mg.gradcheck(op, [x])
    assert mg.gradgradcheck(lambda t: op(t) ** 2, [x])


# ------------------------------------------------------------------ reshape
RESHAPES = [
    ("tuple", lambda t: t.reshape((4, 3)), lambda a: a.reshape((4, 3))),
    ("varargs", lambda t: t.reshape(2, 6), lambda a: a.reshape(2, 6)),
    ("list", lambda t: t.reshape([3, 2, 2]), lambda a: a.reshape([3, 2, 2])),
    ("minus-one", lambda t: t.reshape(-1), lambda a: a.reshape(-1)),
    ("varargs-minus-one", lambda t: t.reshape(2, -1, 3), lambda a: a.reshape(2, -1, 3)),
]


@pytest.mark.parametrize("name, op, reference", RESHAPES, ids=[r[0] for r in RESHAPES])
def test_reshape(name, op, reference):
    x = leaf((3, 4))
    assert op(x).grad_fn.fn is Reshape
    check_op(op, reference, x)


def test_reshape_gradient_restores_the_input_shape():
    x = leaf((2, 3))
    g = np.arange(6.0)
    x.reshape(6).backward(g)
    np.testing.assert_array_equal(x.grad, g.reshape(2, 3))


def test_reshape_to_an_impossible_shape_names_the_op():
    with pytest.raises(ValueError, match="Reshape"):
        leaf((2, 3)).reshape(4, 2)


# ------------------------------------------------------------------ transpose
TRANSPOSES = [
    ("T", lambda t: t.T, lambda a: a.T),
    ("no-axes", lambda t: t.transpose(), lambda a: a.transpose()),
    ("tuple", lambda t: t.transpose((1, 0, 2)), lambda a: a.transpose((1, 0, 2))),
    ("varargs", lambda t: t.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("negative", lambda t: t.transpose(-1, 0, -2), lambda a: a.transpose(-1, 0, -2)),
    ("swapaxes", lambda t: t.swapaxes(0, -1), lambda a: a.swapaxes(0, -1)),
]


@pytest.mark.parametrize("name, op, reference", TRANSPOSES, ids=[t[0] for t in TRANSPOSES])
def test_transpose(name, op, reference):
    x = leaf((2, 3, 4))
    assert op(x).grad_fn.fn is Transpose
    check_op(op, reference, x)


def test_transpose_gradient_is_the_inverse_permutation():
    x = leaf((2, 3, 4))
    g = np.random.default_rng(1).standard_normal((4, 2, 3))
    x.transpose(2, 0, 1).backward(g)
    np.testing.assert_array_equal(x.grad, g.transpose(1, 2, 0))


def test_transpose_of_a_matrix_with_T():
    x = leaf((2, 3))
    check_op(lambda t: t.T, lambda a: a.T, x)


def test_transpose_with_bad_axes_raises():
    with pytest.raises(ValueError, match=r"not a permutation.*\(2, 3\)"):
        leaf((2, 3)).transpose(0, 0)


# ------------------------------------------------------------------ broadcast_to
@pytest.mark.parametrize("shape, target", [((3,), (2, 3)), ((3, 1), (3, 4)), ((), (2, 2)),
                                           ((1, 3, 1), (2, 3, 2))], ids=str)
def test_broadcast_to(shape, target):
    x = leaf(shape)
    check_op(lambda t: t.broadcast_to(target), lambda a: np.broadcast_to(a, target), x)


def test_broadcast_to_gradient_sums_the_copies():
    x = leaf((3, 1))
    g = np.arange(12.0).reshape(3, 4)
    x.broadcast_to((3, 4)).backward(g)
    np.testing.assert_array_equal(x.grad, g.sum(axis=1, keepdims=True))


# ------------------------------------------------------------------ indexing
INDICES = [
    ("int", 1),
    ("negative-int", -1),
    ("slice", slice(1, None)),
    ("step-slice", (slice(None), slice(None, None, 2))),
    ("negative-step", (slice(None, None, -1), 0)),
    ("ellipsis", (Ellipsis, 1)),
    ("newaxis", (None, 0)),
    ("int-array", np.array([0, 2, 0])),
    ("int-list", [2, 2, 1]),
    ("int-arrays-pair", (np.array([0, 0, 2]), np.array([1, 1, 3]))),
    ("int-array-and-slice", (np.array([1, 1]), slice(1, 3))),
    ("bool-mask", np.array([[True, False, True, False], [False, False, True, True],
                            [True, True, False, False]])),
    ("bool-rows", np.array([True, False, True])),
]


@pytest.mark.parametrize("name, index", INDICES, ids=[i[0] for i in INDICES])
def test_getitem(name, index):
    x = leaf((3, 4))
    assert x[index].grad_fn.fn is GetItem
    check_op(lambda t: t[index], lambda a: a[index], x)


def test_repeated_integer_indices_accumulate():
    x = leaf((4,))
    x[np.array([0, 2, 0, 0])].backward(np.array([1.0, 10.0, 100.0, 1000.0]))
    np.testing.assert_array_equal(x.grad, [1101.0, 0.0, 10.0, 0.0])

    x = leaf((3, 2))
    x[[1, 1, 2]].backward(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0], [4.0, 6.0], [5.0, 6.0]])


def test_boolean_mask_gradient():
    x = leaf((2, 3))
    mask = np.array([[True, False, True], [False, True, False]])
    x[mask].backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])


def test_boolean_tensor_mask():
    x = leaf((5,))
    mask = x > 0
    check_op(lambda t: t[mask], lambda a: a[mask.data], x)


def test_indexing_used_twice_with_overlap():
    x = leaf((5,))
    (x[:3] * x[2:]).sum().backward()                   # x[2] is in both slices
    expected = np.zeros(5)
    expected[:3] += x.data[2:]
    expected[2:] += x.data[:3]
    np.testing.assert_allclose(x.grad, expected)
    assert mg.gradcheck(lambda t: t[:3] * t[2:] + t[[0, 0, 4]], [x])


# ------------------------------------------------------------------ IndexAdd (GetItem's adjoint)
INDEX_ADDS = [("repeats", np.array([0, 2, 0]), 3), ("slice", slice(1, 3), 2),
              ("mask", np.array([True, False, True, True]), 3)]


@pytest.mark.parametrize("name, index, n", INDEX_ADDS, ids=[i[0] for i in INDEX_ADDS])
def test_index_add(name, index, n):
    def reference(values):       # zeros(4) with values added at index
        out = np.zeros(4)
        np.add.at(out, index, values)
        return out

    check_op(lambda v: IndexAdd.apply(v, index=index, shape=(4,)), reference, leaf((n,)))


def test_index_add_accumulates_repeats():
    y = IndexAdd.apply(mg.tensor(np.array([1.0, 2.0, 4.0])), index=np.array([1, 1, 3]), shape=(4,))
    np.testing.assert_array_equal(y.data, [0.0, 3.0, 0.0, 4.0])


def test_getitem_and_index_add_are_adjoint():
    rng = np.random.default_rng(2)
    index = np.array([0, 3, 3, 1])
    x, v = rng.standard_normal(5), rng.standard_normal(4)
    lhs = (mg.tensor(x)[index].data * v).sum()          # <x[index], v>
    rhs = (x * IndexAdd.apply(mg.tensor(v), index=index, shape=(5,)).data).sum()   # <x, scatter(v)>
    np.testing.assert_allclose(lhs, rhs)


USED_TWICE = [
    ("reshape", lambda t: t.reshape(4, 3) * t.reshape(4, 3)[::-1]),
    ("transpose", lambda t: t.T @ t),
    ("broadcast_to", lambda t: t.broadcast_to((2, 3, 4)) * t),
    ("index_add", lambda t: IndexAdd.apply(t[0], index=np.array([1, 1, 3, 0]), shape=(5,)) * t[1, 0]),
]


@pytest.mark.parametrize("name, fn", USED_TWICE, ids=[u[0] for u in USED_TWICE])
def test_used_twice(name, fn):
    x = leaf((3, 4), seed=3)
    assert mg.gradcheck(fn, [x])
    assert mg.gradgradcheck(fn, [x])
