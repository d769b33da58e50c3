"""Hooks (autograd/hooks.py): gradient hooks, what they may return, their handles, and post
accumulate grad hooks (against torch where it is installed).
"""
import numpy as np
import pytest

import minigrad as mg


def leaf(*shape, seed=0, low=-2.0, high=2.0):
    return mg.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def test_hook_is_called_with_the_grad():
    x = leaf(3)
    seen = []
    x.register_hook(lambda grad: seen.append(grad.copy()))
    (x * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * x.data)


def test_hook_return_value_replaces_the_grad():
    x = leaf(3)
    h = x * 2.0
    h.register_hook(lambda grad: grad * 10.0)         # on a non-leaf: flows on to x
    h.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 20.0))

    x = leaf(3)
    x.register_hook(lambda grad: grad * 0.0 + 7.0)    # on a leaf: what is stored
    x.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 7.0))


def test_removed_hook_is_not_called():
    x = leaf(3)
    calls = []
    handle = x.register_hook(lambda grad: calls.append(1))
    keep = x.register_hook(lambda grad: calls.append(2))
    handle.remove()
    (x * x).sum().backward()
    assert calls == [2]
    keep.remove()
    (x * x).sum().backward()
    assert calls == [2]


def test_a_hook_may_not_change_the_gradients_shape():
    x = leaf(3)

    def widen(grad):
        return np.ones(4)
    x.register_hook(widen)
    with pytest.raises(RuntimeError, match=r"hook 'widen' returned a gradient of shape \(4,\) for a "
                                           r"tensor of shape \(3,\)"):
        (x * 2).backward(np.ones(3))
    assert x.grad is None


def test_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda grad: grad)


@pytest.mark.parametrize("returned", [[1.0, 2.0, 3.0], 2.0, "grad", np.array([1, 2, 3]),
                                      mg.tensor([1.0, 2.0, 3.0])],
                         ids=["list", "float", "str", "int-array", "tensor"])
def test_a_hook_returning_what_is_not_a_float_array_is_refused_naming_it(returned):
    x = leaf(3)

    def scale_it(grad):
        return returned
    x.register_hook(scale_it)
    with pytest.raises(TypeError, match=rf"hook 'scale_it' returned {type(returned).__name__} .*; expected "
                                        rf"None or a floating-point numpy array of shape \(3,\)"):
        (x * 2.0).backward(np.ones(3))
    assert x.grad is None


def test_a_hook_under_create_graph_returns_a_tensor():
    x = leaf(3)
    x.register_hook(lambda grad: grad.data)        # an array where a Tensor was given
    with pytest.raises(TypeError, match=r"expected None or a Tensor of shape \(3,\)"):
        (x * x).sum().backward(create_graph=True)
    y = leaf(3)
    y.register_hook(lambda grad: grad * 2.0)
    (y * y).sum().backward(create_graph=True)
    np.testing.assert_allclose(y.grad.data, 4 * y.data)


def test_a_hook_s_gradient_keeps_the_tensor_dtype_and_is_an_array():
    x = mg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    x.register_hook(lambda grad: grad.astype(np.float64) * 3.0)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    s = mg.tensor(np.array(2.0), requires_grad=True)
    s.register_hook(lambda grad: grad * np.float64(2.0))       # a numpy scalar for a 0-d gradient
    (s * s).backward()
    assert type(s.grad) is np.ndarray and s.grad.shape == () and s.grad == 8.0


def test_post_accumulate_grad_hook_sees_the_accumulated_grad():
    w = leaf(3)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append((t, t.grad.copy())))
    (w * w).sum().backward()
    (w * 3.0).sum().backward()
    assert [t is w for t, _ in calls] == [True, True]
    np.testing.assert_allclose(calls[0][1], 2 * w.data)
    np.testing.assert_allclose(calls[1][1], 2 * w.data + 3.0)     # after accumulation


def test_post_accumulate_grad_hook_runs_after_the_grad_hooks_once_per_backward():
    w = leaf(3)
    order = []
    w.register_hook(lambda grad: order.append("grad hook"))
    w.register_post_accumulate_grad_hook(lambda t: order.append(("post", t.grad.copy())))
    (w * w + w * 2.0).sum().backward()                            # two paths, one accumulation
    assert order[0] == "grad hook" and len(order) == 2
    np.testing.assert_allclose(order[1][1], 2 * w.data + 2.0)


def test_post_accumulate_grad_hook_can_update_the_parameter_during_backward():
    w, b = leaf(3, seed=1), leaf(3, seed=2)
    start = w.data.copy(), b.data.copy()

    def sgd(t):                                    # an optimizer step fused into backward
        with mg.no_grad():
            t -= 0.5 * t.grad
        t.grad = None
    handles = [p.register_post_accumulate_grad_hook(sgd) for p in (w, b)]
    ((w * b).sum() + (w * w).sum()).backward()
    np.testing.assert_allclose(w.data, start[0] - 0.5 * (start[1] + 2 * start[0]))
    np.testing.assert_allclose(b.data, start[1] - 0.5 * start[0])
    assert w.grad is None and b.grad is None
    for handle in handles:
        handle.remove()
    (w * 1.0).sum().backward()
    np.testing.assert_array_equal(w.grad, np.ones(3))              # removed: nothing else happens


def test_post_accumulate_grad_hook_with_create_graph_and_not_for_mg_grad():
    w = leaf(3)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(type(t.grad)))
    (w * w).sum().backward(create_graph=True)
    assert seen == [mg.Tensor]
    mg.grad((w * w).sum(), [w])                    # accumulates nothing: no call
    assert seen == [mg.Tensor]


def test_post_accumulate_grad_hook_is_refused_where_pytorch_refuses_it():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match=r"non-leaf tensors \(this one was made by Mul\)"):
        (leaf(3) * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="a hook must be callable, got int"):
        leaf(3).register_post_accumulate_grad_hook(3)
    w = leaf(3)

    def returns_grad(t):
        return t.grad
    w.register_post_accumulate_grad_hook(returns_grad)
    with pytest.raises(TypeError, match=r"post accumulate grad hook 'returns_grad' returned ndarray .* must "
                                        r"return None"):
        (w * 2.0).sum().backward()


def test_post_accumulate_grad_hook_against_torch():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).standard_normal(3)
    w, wt = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    got, want = [], []
    w.register_post_accumulate_grad_hook(lambda t: got.append(t.grad.copy()))
    wt.register_post_accumulate_grad_hook(lambda t: want.append(t.grad.clone().numpy()))
    for p in (w, wt):
        for _ in range(2):                        # the second call sees the accumulated sum
            ((p * p).sum() + (p * 3.0).sum()).backward()
    assert len(got) == len(want) == 2
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t)
