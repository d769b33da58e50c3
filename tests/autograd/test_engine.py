"""The backward pass: seeding and its errors, accumulation, retained and released graphs, deep
graphs, un-broadcasting, anomaly detection, tracing (hooks: test_hooks.py; mg.grad and higher
order: test_grad.py).
"""
import inspect
import os
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd.engine import unbroadcast
from minigrad.autograd.function import Function


def leaf(*shape, seed=0, low=-2.0, high=2.0):
    return mg.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


# ------------------------------------------------------------------ seeding backward


def test_backward_without_grad_on_a_non_scalar_raises():
    y = leaf(3) * 2.0
    with pytest.raises(RuntimeError, match=r"one-element tensors.*shape \(3,\)"):
        y.backward()


def test_backward_with_a_grad_of_the_wrong_shape_raises():
    y = leaf(3) * 2.0
    with pytest.raises(ValueError, match=r"grad has shape \(4,\) but the tensor has shape \(3,\)"):
        y.backward(np.ones(4))


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0, 2.0]).sum().backward()


def test_backward_with_an_explicit_grad_weights_the_outputs():
    x = leaf(3)
    g = np.array([1.0, -2.0, 0.5])
    (x * x).backward(g)
    np.testing.assert_allclose(x.grad, 2 * x.data * g)


# ------------------------------------------------------------------ accumulation


def test_leaf_grad_accumulates_across_backward_calls():
    x = leaf(3)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)


def test_a_tensor_used_twice_accumulates():
    x = leaf(4)
    (x * x + x).backward(np.ones(4))
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graph_waits_for_every_path():
    x = leaf(3)
    a = x * 2.0                          # a feeds two branches, each must reach it before it runs
    y = (a.exp() + a * 3.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(2 * x.data) + 6)


def test_non_leaf_grad_is_kept_only_after_retain_grad():
    x = leaf(3)
    h = x * 2.0
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(x.grad, 8 * x.data)

    x = leaf(3)
    h = x * 2.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(x.grad, 8 * x.data)


def test_stored_grads_never_share_memory():
    a, b = leaf(3, seed=1), leaf(3, seed=2)
    g = np.array([1.0, 2.0, 3.0])
    (a + b).backward(g)                               # Add hands one array to both inputs
    np.testing.assert_array_equal(a.grad, g)
    np.testing.assert_array_equal(b.grad, g)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g)
    a.grad += 1.0                                     # so an in-place update touches one tensor
    np.testing.assert_array_equal(b.grad, g)


def test_zero_dimensional_grads_are_arrays():
    x = mg.tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad.dtype == np.float32
    assert x.grad == 6.0
    (g,) = mg.grad(x * x, x)
    assert type(g.data) is np.ndarray


# ------------------------------------------------------------------ retained and released graphs


def test_retain_graph_allows_a_second_backward():
    x = leaf(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)


def test_second_backward_without_retain_graph_raises():
    x = leaf(3)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()


def _graph_with_intermediate():
    x = leaf(3)
    h = x.exp()                                       # owned by the graph alone once we return
    y = (h * h).sum()
    return x, y, weakref.ref(h)


def test_backward_releases_saved_arrays_and_intermediates():
    x, y, h_ref = _graph_with_intermediate()
    nodes = [y.grad_fn, y.grad_fn.parents[0].grad_fn, h_ref().grad_fn]   # Sum, Mul, Exp
    assert [n.fn.__name__ for n in nodes] == ["Sum", "Mul", "Exp"]
    assert all(n.parents is not None for n in nodes)
    assert len(nodes[1].saved_tensors) == 2 and nodes[2].saved_tensors[0] is h_ref().data
    y.backward()
    assert all(n.saved_tensors is None and n.parents is None for n in nodes)
    assert h_ref() is None                            # nothing holds the intermediate any more
    np.testing.assert_allclose(x.grad, 2 * np.exp(2 * x.data))


def test_retain_graph_keeps_intermediates():
    x, y, h_ref = _graph_with_intermediate()
    y.backward(retain_graph=True)
    assert h_ref() is not None and h_ref().grad_fn.saved_tensors is not None


def test_deep_chain_does_not_hit_the_recursion_limit():
    x0 = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = x0
    for _ in range(100_000):
        x = x * 1.0001
    x.sum().backward()
    np.testing.assert_allclose(x0.grad, np.full(2, 1.0001 ** 100_000), rtol=1e-8)


# ------------------------------------------------------------------ un-broadcasting


def test_unbroadcast_column_times_row():
    a, b = leaf(3, 1, seed=1), leaf(1, 4, seed=2)
    g = np.random.default_rng(3).standard_normal((3, 4))
    (a * b).backward(g)
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4)
    np.testing.assert_allclose(a.grad, (g * b.data).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(b.grad, (g * a.data).sum(axis=0, keepdims=True))


def test_unbroadcast_matrix_plus_vector():
    a, b = leaf(5, 4, seed=1), leaf(4, seed=2)
    g = np.random.default_rng(3).standard_normal((5, 4))
    (a - b).backward(g)
    np.testing.assert_allclose(a.grad, g)
    np.testing.assert_allclose(b.grad, -g.sum(axis=0))


def test_unbroadcast_scalar_operands():
    x, s = leaf(2, 3), mg.tensor(np.array(1.5), requires_grad=True)
    g = np.random.default_rng(3).standard_normal((2, 3))
    (s * x + 2.0).backward(g)                         # 0-d tensor and Python scalar
    assert s.grad.shape == ()
    np.testing.assert_allclose(s.grad, (g * x.data).sum())
    np.testing.assert_allclose(x.grad, 1.5 * g)


def test_unbroadcast_helper():
    grad = np.ones((2, 3, 4))
    np.testing.assert_array_equal(unbroadcast(grad, (3, 1), "Op"), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(grad, (1, 3, 4), "Op"), np.full((1, 3, 4), 2.0))
    with pytest.raises(ValueError, match=r"Op\.backward.*\(2, 3, 4\).*\(5,\)"):
        unbroadcast(grad, (5,), "Op")


class WrongShape(Function):
    """y = x;  backward returns a gradient that cannot be summed down to x's shape"""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad_y):
        return np.ones((7,))


def test_backward_of_a_wrong_shape_names_the_op():
    y = WrongShape.apply(leaf(3))
    with pytest.raises(ValueError, match=r"WrongShape\.backward.*\(7,\).*\(3,\)"):
        y.sum().backward()


# ------------------------------------------------------------------ shape errors in forward


def test_matmul_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 6\)"):
        leaf(3, 4) @ leaf(5, 6)


@pytest.mark.parametrize("op, name", [(lambda a, b: a + b, "Add"), (lambda a, b: a * b, "Mul")])
def test_broadcast_error_names_the_op_and_both_shapes(op, name):
    with pytest.raises(ValueError) as info:
        op(leaf(2, 3), leaf(4))
    message = str(info.value)
    assert name in message and "(2,3)" in message.replace(" ", "") and "(4,)" in message


def test_a_tensor_passed_to_backward_is_copied_not_adopted():
    x = leaf(3)
    g = mg.tensor(np.array([1.0, 2.0, 3.0]))
    x.backward(g)                                  # the root is the leaf itself
    x.grad[...] = 0                                # zeroing .grad in place...
    np.testing.assert_array_equal(g.data, [1.0, 2.0, 3.0])   # ...leaves the caller's g alone
    y = x * 1.0
    y.retain_grad()
    y.backward(g)
    assert y.grad is not g.data


def test_backward_runs_with_recording_off():
    x = leaf(3)
    enabled = []
    x.register_hook(lambda grad: enabled.append(mg.is_grad_enabled()))
    (x * x).sum().backward()
    assert enabled == [False] and mg.is_grad_enabled()


# ------------------------------------------------------------------ anomaly detection


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_forward_names_the_op_and_the_user_line():
    x = mg.tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with mg.detect_anomaly():
        line = inspect.currentframe().f_lineno + 2
        with pytest.raises(mg.AnomalyError) as info:
            x.log()
    message = str(info.value)
    assert "Log" in message and "NaN" in message
    assert "test_engine.py" in message and f"line {line}" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_backward_names_the_op_and_the_user_line():
    x = mg.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with mg.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = x.sqrt().sum()                             # finite forward, Inf gradient at 0
        with pytest.raises(mg.AnomalyError) as info:
            y.backward()
    message = str(info.value)
    assert "Sqrt.backward" in message and "Inf" in message
    assert "test_engine.py" in message and f"line {line}" in message
    assert not mg.modes.anomaly                        # the flag is restored after the error


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_site_in_a_checkout_named_minigrad():
    # user code whose path contains "/minigrad/" (a clone into ~/minigrad) is still the user's
    path = "/home/someone/minigrad/examples/train.py"
    code = compile("x.log()", path, "exec")
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError) as info:
        exec(code, {"x": mg.tensor(np.array([-1.0]), requires_grad=True)})
    assert f'File "{path}", line 1' in str(info.value)


def test_anomaly_site_unknown_when_every_frame_is_the_package(monkeypatch):
    from minigrad.autograd import anomaly
    monkeypatch.setattr(anomaly, "PACKAGE_DIR", os.sep)     # every file "inside the package"
    assert anomaly.creation_site() == "<unknown>"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_without_anomaly_detection_nan_just_propagates():
    x = mg.tensor(np.array([0.0, 1.0]), requires_grad=True)
    x.sqrt().sum().backward()
    assert np.isinf(x.grad[0]) and x.grad[1] == 0.5
    assert np.isnan(mg.tensor([-1.0]).log().item())


def test_anomaly_error_is_a_runtime_error():
    assert issubclass(mg.AnomalyError, RuntimeError)


# ------------------------------------------------------------------ tracing


def test_trace_backward_prints_one_line_per_step(capsys):
    x = leaf(3)
    y = (x * 2.0).exp().sum()
    with mg.trace_backward():
        y.backward()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert [line.split()[1] for line in lines] == ["Sum", "Exp", "Mul"]
    assert all(line.startswith("backward") for line in lines)
    assert "(3,)" in lines[0]


def test_no_trace_by_default(capsys):
    x = leaf(3)
    (x * 2.0).sum().backward()
    assert capsys.readouterr().out == ""


def test_the_caller_s_gradient_is_never_handed_out_as_a_grad_or_result():
    g = np.array([1.0, 2.0, 3.0])
    x = leaf(3)
    (x + 0.0).backward(g)                          # Add passes g through to the leaf unchanged
    assert not np.shares_memory(x.grad, g)
    x.grad[...] = 0
    np.testing.assert_array_equal(g, [1.0, 2.0, 3.0])
    y = x * 1.0
    (r,) = mg.grad(y, [y], g)                      # the gradient at the root is g itself
    assert not np.shares_memory(r.data, g)
    z = leaf(3)
    z.backward(g, create_graph=True)
    assert not np.shares_memory(z.grad.data, g)


def test_a_gradient_passed_to_backward_is_not_copied_on_the_way():
    seen = []
    x = leaf(3)
    g = np.array([1.0, 2.0, 3.0])
    y = x * 2.0
    y.register_hook(lambda grad: seen.append(grad))
    y.backward(g)
    assert seen[0] is g                            # a large g costs no copy (bench_bn)


def test_grad_refuses_a_grad_outputs_list_of_the_wrong_length():
    x = leaf(3)
    y1, y2 = x * 2.0, x * 3.0
    with pytest.raises(ValueError, match="got 1 grad_outputs for 2 outputs"):
        mg.grad([y1, y2], [x], grad_outputs=[np.ones(3)])     # never a silently dropped output


def test_gradients_handed_to_two_inputs_are_separate_writable_arrays():
    for seed in (None, np.ones(3)):                # Sum's broadcast view, or the caller's array
        x, y = leaf(3), leaf(3, seed=1)
        z = x + y                                  # Add hands one gradient to both inputs
        z.sum().backward() if seed is None else z.backward(seed)
        assert x.grad is not y.grad and x.grad is not seed and x.grad.base is None and y.grad.base is None
        x.grad *= 0.5                              # in place, as PyTorch allows on .grad
        np.testing.assert_array_equal(y.grad, np.ones(3))

    class Both(Function):                          # a backward that returns one array twice
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            fresh = grad * 1.0                     # a new array, no view: given to both inputs
            return fresh, fresh

    x, y = leaf(3), leaf(3, seed=1)
    Both.apply(x, y).backward(np.ones(3))
    assert x.grad is not y.grad
    x.grad *= 0.5
    np.testing.assert_array_equal(y.grad, np.ones(3))
