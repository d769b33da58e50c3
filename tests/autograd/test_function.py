"""Function.apply and Context: what a recorded op keeps, the version check at backward, and what
create_graph does with saved intermediates.

A saved tensor changed in place after the op saved it makes backward raise (PyTorch's check),
naming the op; values the caller may still change (numpy constants, index lists and masks, list
operands, a user op's list hyperparameters, targets) are the graph's own copies, so changing
them later changes nothing. Under create_graph an op that saved a float intermediate must
rebuild it (rebuild_saved) or declare it constant (saves_constants), else it is refused.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd.function import saved_intermediates
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
    assert ctx.tensors == (x, c) and ctx.versions == [0, 0, 0]     # x's, c's, then y's
    y.backward(np.ones(3))
    assert ctx.saved_tensors is None and ctx.parents is None and ctx.versions is None
    assert ctx.tensors is None and ctx.inputs is None


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


# ------------------------------------------------------------------ values kept by a recorded op
# Every value an op keeps is its own from the moment it is recorded, whatever its Python type:
# changing the caller's list, array or Tensor afterwards changes nothing in backward.
def test_an_index_list_changed_after_indexing():
    x = leaf((5,))
    index = [0, 1]
    y = x[index]
    index[0] = 3
    y.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 0.0, 0.0, 0.0])


def test_a_list_inside_a_tuple_index_changed_after_indexing():
    x = leaf((3, 4))
    rows = [2, 0]
    y = x[rows, 1:3]
    rows[0] = 1
    y.backward(np.arange(4.0).reshape(2, 2))
    expected = np.zeros((3, 4))
    expected[2, 1:3], expected[0, 1:3] = [0.0, 1.0], [2.0, 3.0]
    np.testing.assert_array_equal(x.grad, expected)


def test_a_boolean_list_mask_changed_after_indexing():
    x = leaf((3,))
    mask = [True, False, True]
    y = x[mask]
    mask[:] = [False, True, True]
    y.backward(np.array([5.0, 7.0]))
    np.testing.assert_array_equal(x.grad, [5.0, 0.0, 7.0])


@pytest.mark.parametrize("constant, change", [
    ([1.0, 2.0, 3.0], lambda c: c.__setitem__(0, 100.0)),
    ([[1.0, 2.0, 3.0]], lambda c: c[0].__setitem__(0, 100.0)),                # nested
    (([1.0, 2.0, 3.0],), lambda c: c[0].__setitem__(0, 100.0)),               # a tuple of lists
], ids=["list", "nested-list", "tuple-of-lists"])
def test_a_list_operand_changed_before_backward(constant, change):
    x = leaf()
    y = (x * constant).sum()
    change(constant)
    y.backward()
    np.testing.assert_array_equal(x.grad.reshape(-1), [1.0, 2.0, 3.0])


def test_an_index_array_given_to_an_op_directly_is_copied():
    from minigrad.ops.shape import IndexAdd
    v = leaf((3,))
    index = np.array([0, 2, 2])
    y = IndexAdd.apply(v, index=index, shape=(4,))
    index[...] = 1
    y.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(v.grad, [1.0, 3.0, 3.0])       # dy[[0, 2, 2]]


class TakeAt(mg.Function):
    """y = x[positions] for a list kwarg ``positions``, kept as given;   dx = dy scattered back"""

    @staticmethod
    def forward(ctx, x, positions):
        ctx.positions, ctx.shape = positions, x.shape
        return x[positions]

    @staticmethod
    def backward(ctx, grad_y):
        grad_x = np.zeros(ctx.shape)
        np.add.at(grad_x, ctx.positions, grad_y)
        return grad_x


def test_a_user_op_s_list_hyperparameter_is_its_own():
    x = leaf((4,))
    positions = [0, 1]
    y = TakeAt.apply(x, positions=positions)
    positions[0] = 2
    y.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 0.0, 0.0])

    x = leaf((2, 3))
    positions = ([1, 0], [2, 2])                       # lists inside a tuple
    y = TakeAt.apply(x, positions=positions)
    positions[1][0] = 0
    y.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0, 2.0], [0.0, 0.0, 1.0]])


def test_values_are_copied_only_when_recorded():
    index = np.array([0, 1])
    with mg.no_grad():
        y = TakeAt.apply(leaf((4,)), positions=index)
    assert y.grad_fn is None                                    # nothing kept, nothing copied
    x = leaf((4,))
    z = TakeAt.apply(x, positions=index)
    assert z.grad_fn.positions is not index
    np.testing.assert_array_equal(z.grad_fn.positions, index)


def test_a_list_operand_is_the_array_mg_tensor_makes():
    x = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x * [1.5, 2.0, 2.5]                                     # float32, as mg.tensor([...]) is
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [1.5, 2.0, 2.5])
    with pytest.raises(TypeError, match=r"Mul: expected numbers"):
        x * ["a", "b", "c"]


# ------------------------------------------------------------------ saved intermediates and create_graph
class Centre(mg.Function):
    """y = x - mean(x);   dx = dy - mean(dy) -- saves x - mean, a smooth intermediate"""

    @staticmethod
    def forward(ctx, x):
        centred = x - x.mean()
        ctx.save_for_backward(centred)
        return centred * centred

    @staticmethod
    def backward(ctx, grad_y):
        (centred,) = ctx.saved_tensors
        g = grad_y * centred * 2.0
        return g - g.mean()


class CentreRebuilt(Centre):
    """Centre with x - mean rebuilt from x for create_graph: right to second order."""

    @staticmethod
    def rebuild_saved(ctx, saved):
        x = ctx.parents[0]
        return (x - x.mean(),)


class SaveMean(mg.Function):
    """y = x · mean(x) for a vector x, saving mean(x) as the numpy float forward computed"""

    @staticmethod
    def forward(ctx, x):
        mean = x.mean()
        ctx.save_for_backward(x, mean)
        return x * mean

    @staticmethod
    def backward(ctx, grad_y):
        x, mean = ctx.saved_tensors
        return grad_y * mean + (grad_y * x).sum() / x.shape[0]


@pytest.mark.parametrize("op", [Centre, SaveMean])
def test_create_graph_refuses_an_op_that_saved_an_intermediate(op):
    x = leaf((4,))
    assert mg.gradcheck(lambda t: op.apply(t), [x])            # first order is fine
    with pytest.raises(RuntimeError, match=rf"create_graph through {op.__name__}: .*neither an input's "
                                           rf"nor the output's data.*rebuild_saved.*saves_constants"):
        mg.grad(op.apply(x).sum(), [x], create_graph=True)


def test_an_op_that_rebuilds_its_intermediate_is_right_to_second_order():
    assert mg.gradgradcheck(lambda t: CentreRebuilt.apply(t), [leaf((4,))])


def test_saved_inputs_output_and_constants_need_no_declaration():
    x, c = leaf(), np.array([0.5, 1.5, 2.0])
    assert mg.gradgradcheck(lambda t: t * c * t.exp() / mg.tensor(c), [x])   # constants, inputs, output
    y, e = x.exp() * c, x.exp()
    assert saved_intermediates(y.grad_fn, y) == () and saved_intermediates(e.grad_fn, e) == ()


def test_intermediates_are_found_by_position():
    x = leaf((4,))
    y = Centre.apply(x)
    assert saved_intermediates(y.grad_fn, y) == (0,) and y.grad_fn.tensors == (x,)
    y = SaveMean.apply(x)
    assert saved_intermediates(y.grad_fn, y) == (1,) and y.grad_fn.tensors == (x,)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_eval_batch_norm_differentiates_the_forward_that_ran(fused):
    """Decided in issue 19: an eval-mode forward reads the running statistics when it runs (the
    graph keeps their values, not the buffers), so updating them afterwards (a training-mode
    forward) leaves its backward the gradient of the output it computed. PyTorch, which saves
    the buffers themselves, raises a version error here instead; neither is silently wrong."""
    from minigrad import nn
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, fused=fused, dtype=np.float64)
    with mg.no_grad():
        bn.weight += rng.uniform(0.5, 1.5, 3)
    bn.running_mean[...], bn.running_var[...] = [0.1, -0.2, 0.3], [0.5, 2.0, 4.0]
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    x = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    with mg.eval_mode():
        y = bn(x)
    with mg.train_mode():
        bn(mg.tensor(rng.standard_normal((8, 3)) * 5.0))          # updates the running statistics
    assert not np.allclose(bn.running_var, var)
    g = rng.standard_normal((4, 3))
    y.backward(g)
    inv_std = 1 / np.sqrt(var + bn.eps)
    np.testing.assert_allclose(x.grad, g * bn.weight.data * inv_std, rtol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, (g * (x.data - mean) * inv_std).sum(axis=0), rtol=1e-12)


def test_a_tensor_used_as_an_index_is_copied_when_recorded():
    x, m = leaf((5,)), leaf((3, 2))
    index = mg.tensor(np.array([0, 1]))
    y, z = x[index], m[index, 1]                             # alone and inside a tuple
    index.data[0] = 2                                        # neither graph sees the change
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(m.grad, [[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])


def test_a_tensor_given_to_an_op_as_a_parameter_is_copied():
    class Scale(mg.Function):
        @staticmethod
        def forward(ctx, x, factor):
            ctx.factor = factor                    # an array: the graph's own copy of the Tensor's data
            return x * factor

        @staticmethod
        def backward(ctx, grad_y):
            return grad_y * ctx.factor

    x, factor = leaf(), mg.tensor(np.full(3, 2.0))
    y = Scale.apply(x, factor=factor)
    factor.data[...] = 100.0
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, np.full(3, 2.0))


def test_a_dict_parameter_is_rebuilt_around_its_own_parts():
    class Weighted(mg.Function):
        @staticmethod
        def forward(ctx, x, options):
            ctx.w = options["w"]                   # a list inside a dict: the graph's own
            return x * np.asarray(options["w"])

        @staticmethod
        def backward(ctx, grad_y):
            return grad_y * np.asarray(ctx.w)

    x, options = leaf(), {"w": [1.0, 2.0, 3.0]}
    y = Weighted.apply(x, options=options)
    options["w"][0] = 100.0
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])


def test_a_recorded_op_with_an_integer_result_is_refused():
    class Truncate(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.astype(np.int64)

    with pytest.raises(TypeError, match="Truncate produced a int64 result from an input that requires grad: "
                                        "only floating-point results can carry gradients"):
        Truncate.apply(leaf())

