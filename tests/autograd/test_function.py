"""Function.apply and Context: what a recorded op keeps, and the version check at backward.

A saved tensor changed in place after the op saved it makes backward raise (PyTorch's check),
naming the op; arrays the caller may still change (numpy constants, indices, targets) are the
graph's own copies, so changing them later changes nothing.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F

MODIFIED = r"one of the tensors {op} saved for backward has been modified by an in-place operation"


def leaf(shape=(3,), seed=0, requires_grad=True):
    return mg.tensor(np.random.default_rng(seed).uniform(0.5, 2.0, shape), requires_grad=requires_grad)


def test_an_input_changed_after_it_was_saved_fails_backward():
    w = leaf()
    y = (w * w).sum()
    with mg.no_grad():
        w += 10
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul") + r".*version 1; expected version 0"):
        y.backward()


def test_the_output_changed_after_it_was_saved_fails_backward():
    x = leaf()
    y = x.exp()                                    # Exp saves its output
    z = (y + 2).sum()                              # Add saves nothing
    with mg.no_grad():
        y *= 0
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Exp")):
        z.backward()


def test_a_constant_tensor_changed_after_it_was_saved_fails_backward():
    w, c = leaf(), leaf(seed=1, requires_grad=False)
    y = (w * c).sum()
    c += 1                                         # allowed: c needs no grad
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul")):
        y.backward()


def test_a_view_or_a_detached_tensor_shares_the_version():
    for make_alias in (lambda w: w.detach(), lambda w: w.reshape(3, 1), lambda w: w[1:]):
        w = leaf()
        y = (w * w).sum()
        with mg.no_grad():
            alias = make_alias(w)
            alias += 1                             # changes w's memory
        with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul")):
            y.backward()


def test_changes_that_backward_does_not_need_are_fine():
    w = leaf()
    y = (w + 1).sum()                              # Add saves nothing
    with mg.no_grad():
        w += 10
    y.backward()
    np.testing.assert_array_equal(w.grad, np.ones(3))


def test_the_check_runs_after_the_update_too_with_retain_graph():
    w = leaf()
    y = (w * w).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)                  # unchanged: fine twice
    np.testing.assert_allclose(w.grad, 4 * w.data)
    with mg.no_grad():
        w -= 0.1 * w.grad
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul")):
        y.backward()


def test_the_check_also_guards_create_graph():
    w = leaf()
    y = (w * w * w).sum()
    with mg.no_grad():
        w += 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        mg.grad(y, [w], create_graph=True)


def test_numpy_constants_are_copied_when_recorded():
    w = leaf()
    c = np.array([1.0, 2.0, 3.0])
    y = (w * c).sum()
    c[...] = 100.0                                 # the caller reuses its array
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])


def test_only_the_plain_arrays_are_copied_not_the_tensors_beside_them():
    w = leaf()
    y = (w * np.array([1.0, 2.0, 3.0])).sum()     # a Tensor and a numpy constant in one op
    (saved_w, saved_c) = next(iter(_mul_contexts(y))).saved_tensors
    assert saved_w is w.data                       # the Tensor's own array: its version guards it
    with mg.no_grad():
        w += 1
    with pytest.raises(RuntimeError, match="Mul saved for backward has been modified"):
        y.backward()


def _mul_contexts(y):
    stack = [y]
    while stack:
        t = stack.pop()
        if t is None or t._ctx is None:
            continue
        if t._ctx.fn.__name__ == "Mul":
            yield t._ctx
        stack.extend(t._ctx.parents)


def test_index_arrays_are_copied_when_recorded():
    w = leaf((5,))
    index = np.array([0, 0, 3])
    y = w[index]
    index[...] = 4
    y.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(w.grad, [3.0, 0.0, 0.0, 3.0, 0.0])


def test_cross_entropy_targets_are_copied_when_recorded():
    logits = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    target = np.array([0, 1, 2, 1])
    loss = F.cross_entropy(logits, target)
    expected = mg.grad(F.cross_entropy(logits, target.copy()), [logits])[0].data
    target[...] = 0
    loss.backward()
    np.testing.assert_allclose(logits.grad, expected, rtol=1e-12)


def test_x_times_its_own_data_is_a_constant_factor():
    x = leaf()
    (x * x.data).sum().backward()                  # d/dx (x · c) = c, not 2x
    np.testing.assert_allclose(x.grad, x.data)
    x.grad = None
    (dx,) = mg.grad((x * x.data).sum(), [x], create_graph=True)
    np.testing.assert_allclose(dx.data, x.data)
    assert not dx.requires_grad                    # c is a constant: no second derivative


def test_context_holds_fn_needs_and_saved_tensors():
    x, c = leaf(), leaf(seed=1, requires_grad=False)
    y = x * c
    ctx = y.grad_fn
    assert ctx.fn.__name__ == "Mul" and list(ctx.needs_input_grad) == [True, False]
    assert ctx.parents[0] is x and ctx.parents[1] is None
    assert ctx.saved_tensors[0] is x.data and ctx.saved_tensors[1] is c.data
    assert [(t is x, v) for t, v in ctx.versions] == [(True, 0), (False, 0)]
    y.backward(np.ones(3))
    assert ctx.saved_tensors is None and ctx.parents is None and ctx.versions is None


@pytest.mark.parametrize("shape", [(), (1,)], ids=["0-d", "1-element"])
@pytest.mark.parametrize("op", [lambda t: t.exp(), lambda t: t.sqrt(), lambda t: t ** t],
                         ids=["exp", "sqrt", "pow"])
def test_a_saved_0d_output_stays_in_the_graph_for_second_derivatives(op, shape):
    """np.exp of a 0-d array is a numpy scalar: apply makes it an array, and the op's saved
    output must be that array (the output Tensor's data), or create_graph treats it as a constant
    and x.sum().exp() has a zero Hessian (found by test_random_chains)."""
    x = mg.tensor(np.full(shape, 0.7), requires_grad=True)
    assert mg.gradgradcheck(op, [x])
    y = op(x)
    assert y._ctx.saved_tensors[-1] is y.data


def test_a_function_without_backward_fails_loudly_at_backward():
    class ForwardOnly(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = leaf()
    y = ForwardOnly.apply(x)
    assert y.requires_grad
    with pytest.raises(NotImplementedError):
        y.sum().backward()                     # never a silent None gradient
    with pytest.raises(NotImplementedError):
        mg.Function.apply(x)                   # nor a forward that is not written


def test_a_view_of_a_view_shares_the_version_of_the_base():
    x = leaf((3,))
    w = x.reshape(3, 1).reshape(3)            # numpy gives w the base x.data, through a view
    y = (w * w).sum()
    with mg.no_grad():
        x += 1                                # changes what Mul saved (w is a view of x)
    with pytest.raises(RuntimeError, match="Mul saved for backward has been modified"):
        y.backward()


def test_a_context_made_by_hand_holds_its_op_and_needs():
    ctx = mg.Context(mg.Function, (True, False))   # as benchmarks and tests call ops' bodies
    assert ctx.fn is mg.Function and ctx.needs_input_grad == (True, False)
    assert ctx.saved_tensors == () and ctx.parents is None and ctx.versions is None
