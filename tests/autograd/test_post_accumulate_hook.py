"""Tensor.register_post_accumulate_grad_hook (PyTorch's semantics): called with the leaf after
backward accumulated its .grad, once per backward even when the leaf is used twice; leaves only."""
import numpy as np
import pytest

import minigrad as mg


def test_called_once_with_the_accumulated_grad():
    w = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w.grad = np.array([10.0, 10.0])                      # an earlier step's gradient
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append((t, t.grad.copy())))
    ((w * w).sum() + (3 * w).sum()).backward()           # w used three times: one call
    assert len(seen) == 1 and seen[0][0] is w
    np.testing.assert_array_equal(seen[0][1], [10 + 2 + 3, 10 + 4 + 3])
    handle.remove()
    (w * w).sum().backward()
    assert len(seen) == 1


def test_not_called_by_mg_grad_which_accumulates_nothing():
    w = mg.tensor(np.array([1.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(seen.append)
    mg.grad((w * w).sum(), w)
    assert seen == [] and w.grad is None


def test_leaves_that_require_grad_only():
    w = mg.tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor(np.array([1.0])).register_post_accumulate_grad_hook(print)
