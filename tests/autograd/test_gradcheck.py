"""gradcheck and gradgradcheck themselves: they pass on correct ops, and they catch wrong ones
(with a message that names input, index and both values), vacuous checks, and backward formulas
that are right to first order but not differentiable as written.
"""
import re
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd.function import Function


def leaf(shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).uniform(0.5, 2.0, shape), requires_grad=True)


class OffByOneAt12(Function):
    """y = a * x;   da = dy * x,  dx = dy * a  -- except dx[1, 2] gets a stray +1"""

    @staticmethod
    def forward(ctx, a, x):
        ctx.save_for_backward(a, x)
        return a * x

    @staticmethod
    def backward(ctx, grad_y):
        a, x = ctx.saved_tensors
        grad_x = grad_y * a
        grad_x[1, 2] += 1.0
        return grad_y * x, grad_x


class MeanInsteadOfGrad(Function):
    """y = x;   dx should be dy, but this returns mean(dy) everywhere.

    Right for an all-ones upstream gradient (a ``.sum()`` loss), wrong for any other."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad_y):
        return np.full(grad_y.shape, grad_y.mean())


class SquareWithDataConstant(Function):
    """y = x²;   dx = 2 x dy -- computed from ``x.data``, so create_graph sees a constant"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        x_value = x.data if isinstance(x, mg.Tensor) else x     # the bug: drops x from the graph
        return grad_y * 2.0 * x_value


class CubeSavingSquare(Function):
    """y = x³;   dx = 3 x² dy -- with x² saved as an array, and declared constant (it is not)"""

    saves_constants = True     # a false declaration: without it create_graph refuses the op

    @staticmethod
    def forward(ctx, x):
        square = x * x
        ctx.save_for_backward(square)
        return square * x

    @staticmethod
    def backward(ctx, grad_y):
        (square,) = ctx.saved_tensors
        return grad_y * 3.0 * square


# ------------------------------------------------------------------ gradcheck
def test_gradcheck_returns_true_on_a_correct_op():
    assert mg.gradcheck(lambda a, b: a * b + a.exp(), [leaf((2, 3), 1), leaf((2, 3), 2)]) is True


def test_gradcheck_reports_input_index_and_values():
    a, x = leaf((2, 3), 1), leaf((2, 3), 2)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda p, q: OffByOneAt12.apply(p, q), [a, x])
    message = str(info.value)
    assert "input 1" in message and "(2, 3)" in message and "index (1, 2)" in message
    values = re.search(r"analytic (\S+) vs numeric (\S+)", message)
    assert values, message
    analytic, numeric = float(values.group(1)), float(values.group(2))
    assert analytic - numeric == pytest.approx(1.0, abs=1e-6)   # the stray +1, whatever upstream
    assert isinstance(info.value, AssertionError)


def test_gradcheck_catches_what_a_sum_loss_hides():
    x = leaf((4,), 3)
    assert mg.gradcheck(lambda t: MeanInsteadOfGrad.apply(t).sum(), [x])   # blind: all-ones upstream
    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(lambda t: MeanInsteadOfGrad.apply(t), [x])          # random upstream sees it


def test_gradcheck_checks_in_float64_and_leaves_inputs_alone():
    x = mg.tensor(np.array([0.5, 1.5, 2.5], dtype=np.float32), requires_grad=True)
    before = x.data.copy()
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t.exp()

    assert mg.gradcheck(fn, [x])
    assert set(seen) == {np.dtype(np.float64)}
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.data, before)


def test_gradcheck_passes_non_tensor_arguments_through():
    target = np.array([1, 0])
    assert mg.gradcheck(lambda z, t: z[np.arange(2), t] * z.sum(), [leaf((2, 3)), target])


@pytest.mark.parametrize("check", [mg.gradcheck, mg.gradgradcheck])
def test_gradcheck_needs_an_input_that_requires_grad(check):
    with pytest.raises(ValueError, match=f"{check.__name__}: no input has requires_grad"):
        check(lambda t: t * 2.0, [mg.tensor(np.ones(3))])


def test_vacuous_check_warns():
    x = leaf((4,), 4)
    with pytest.warns(mg.VacuousGradcheckWarning, match=r"does not depend on input 0"):
        assert mg.gradcheck(lambda t: (t - t.mean()).sum(), [x])


def test_vacuous_check_raises_on_request():
    with pytest.raises(mg.GradcheckError, match="vacuous"):
        mg.gradcheck(lambda t: (t - t.mean()).sum(), [leaf((4,), 4)], raise_on_vacuous=True)


def test_vacuous_warning_names_only_the_unused_input():
    with pytest.warns(mg.VacuousGradcheckWarning) as record:
        mg.gradcheck(lambda a, b: a * 2.0 + (b - b), [leaf((3,), 1), leaf((3,), 2)])
    assert len(record) == 1 and "input 1" in str(record[0].message)
    assert record[0].filename == __file__          # the warning points at the gradcheck call


def test_no_vacuous_warning_on_a_dependent_output():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.gradcheck(lambda t: (t - t.mean()) ** 2, [leaf((4,), 5)])
        assert mg.gradcheck(lambda t: (t - t.mean()).sum(), [leaf((4,), 5)], check_dependence=False)


# ------------------------------------------------------------------ gradgradcheck
@pytest.mark.parametrize("fn", [lambda t: t ** 3, lambda t: t.exp() * t, lambda t: (t @ t.T).sqrt(),
                                lambda t: t.log() * t],
                         ids=["cube", "exp-times-x", "gram-sqrt", "x-log-x"])
def test_gradgradcheck_passes_on_correct_ops(fn):
    assert mg.gradgradcheck(fn, [leaf((2, 2), 6)]) is True


@pytest.mark.parametrize("op", [SquareWithDataConstant, CubeSavingSquare])
def test_gradgradcheck_catches_a_backward_that_is_not_differentiable(op):
    x = leaf((3,), 7)
    assert mg.gradcheck(lambda t: op.apply(t), [x])                   # right to first order
    with pytest.raises(mg.GradcheckError, match=r"input 0 .*analytic 0\.0 vs numeric"):
        mg.gradgradcheck(lambda t: op.apply(t), [x])                  # but constant to create_graph


def test_gradgradcheck_of_two_inputs():
    assert mg.gradgradcheck(lambda a, b: a * b * b / a.exp(), [leaf((3,), 8), leaf((3,), 9)])


def square_with_factor(on_arrays, on_tensors):
    """y = x² whose backward is factor·x·dy: ``on_arrays`` on the fast path, ``on_tensors`` on the
    recorded one (create_graph); right when both are 2."""
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_y):
            (x,) = ctx.saved_tensors
            return grad_y * x * (on_arrays if isinstance(x, np.ndarray) else on_tensors)
    return Square


def test_gradgradcheck_catches_a_create_graph_path_that_computes_something_else():
    """A backward whose Tensor path (create_graph) differs from its array path: the second-order
    finite differences alone would check it against its own (wrong) derivative."""
    two_faced = square_with_factor(2, 3)                    # wrong on the recorded path only
    x = mg.tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert mg.gradcheck(two_faced.apply, [x])               # first order: fine
    with pytest.raises(mg.GradcheckError, match="create_graph=True differs from the plain one"):
        mg.gradgradcheck(two_faced.apply, [x])
    with pytest.raises(mg.GradcheckError, match="differs from the plain one"):
        mg.gradgradcheck(square_with_factor(2.0, 2.001).apply, [x])   # off by a thousandth


def test_inputs_that_are_not_float_tensors_are_passed_through():
    x = leaf((4,))
    assert mg.gradcheck(lambda t, index: t[index] * 2.0, [x, np.array([0, 2, 2])])
    assert mg.gradgradcheck(lambda t, k: (t * t) * k, [x, 3.0])


def test_a_one_percent_error_fails_with_the_default_tolerances():
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(square_with_factor(2.02, 2.02).apply, [leaf((3,))])


def test_each_finite_difference_moves_one_entry_and_puts_it_back():
    x = leaf((2, 3))
    seen = []

    def fn(t):
        seen.append(t.data.copy())
        return t * 2.0

    mg.gradcheck(fn, [x])
    assert len(seen) > 2 * x.size
    assert all(np.count_nonzero(s != x.data) <= 1 for s in seen)


def test_gradgradcheck_of_an_output_without_a_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.gradgradcheck(lambda t: mg.tensor(np.ones(3)), [leaf((3,))])


def test_gradgradcheck_of_an_input_used_only_linearly_or_not_at_all():
    # d²/dx² of 2x is 0 and b is unused: both are fine second derivatives, not errors or warnings
    a, b = leaf((3,)), leaf((3,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.gradgradcheck(lambda x, y: x * 2.0, [a, b])
