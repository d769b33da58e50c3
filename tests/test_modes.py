"""modes: no_grad / enable_grad and the train/eval flag, as context managers and decorators.

Each toggle must restore the value it found, also when an exception escapes, and nest.
"""
import numpy as np
import pytest

import minigrad as mg


def leaf():
    return mg.tensor(np.array([1.0, 2.0]), requires_grad=True)


# ------------------------------------------------------------------ gradient recording
def test_grad_is_enabled_by_default():
    assert mg.is_grad_enabled() is True


def test_no_grad_context_manager():
    x = leaf()
    with mg.no_grad():
        assert mg.is_grad_enabled() is False
        y = x * 2.0 + 1.0
    assert mg.is_grad_enabled() is True
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_array_equal(y.data, [3.0, 5.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert (x * 2.0).requires_grad                     # recording is back on


def test_no_grad_decorator():
    @mg.no_grad()
    def double(x):
        return x * 2.0, mg.is_grad_enabled()

    y, enabled_inside = double(leaf())
    assert enabled_inside is False
    assert not y.requires_grad and y.grad_fn is None
    assert mg.is_grad_enabled() is True
    y, _ = double(leaf())                              # a decorator is reusable
    assert not y.requires_grad and mg.is_grad_enabled()


def test_no_grad_decorator_survives_recursion():
    @mg.no_grad()
    def depth(n):
        return mg.is_grad_enabled() if n == 0 else depth(n - 1)

    assert depth(3) is False
    assert mg.is_grad_enabled() is True


def test_no_grad_restores_after_an_exception():
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError("boom")
    assert mg.is_grad_enabled() is True


def test_enable_grad_inside_no_grad():
    x = leaf()
    with mg.no_grad():
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            y = x * 2.0
        assert not mg.is_grad_enabled()
    assert y.requires_grad and y.grad_fn is not None


def test_set_grad_enabled():
    mg.set_grad_enabled(False)
    assert not mg.is_grad_enabled()
    assert not (leaf() * 2.0).requires_grad
    mg.set_grad_enabled(True)
    assert (leaf() * 2.0).requires_grad


# ------------------------------------------------------------------ training flag
def test_training_is_the_default():
    assert mg.is_training() is True


def test_set_training():
    mg.set_training(False)
    assert mg.is_training() is False
    mg.set_training(True)
    assert mg.is_training() is True


@pytest.mark.parametrize("start", [True, False])
def test_train_and_eval_mode_restore_the_previous_value(start):
    mg.set_training(start)
    with mg.eval_mode():
        assert mg.is_training() is False
    assert mg.is_training() is start
    with mg.train_mode():
        assert mg.is_training() is True
    assert mg.is_training() is start


@pytest.mark.parametrize("toggle, inside", [(mg.eval_mode, False), (mg.train_mode, True)])
def test_modes_restore_when_an_exception_escapes(toggle, inside):
    mg.set_training(not inside)
    with pytest.raises(ValueError, match="escapes"):
        with toggle():
            assert mg.is_training() is inside
            raise ValueError("escapes")
    assert mg.is_training() is (not inside)


def test_nested_modes():
    with mg.eval_mode():
        with mg.train_mode():
            assert mg.is_training() is True
            with mg.eval_mode():
                assert mg.is_training() is False
            assert mg.is_training() is True
        assert mg.is_training() is False
    assert mg.is_training() is True


def test_eval_mode_decorator():
    @mg.eval_mode()
    def evaluate():
        return mg.is_training()

    assert evaluate() is False
    assert mg.is_training() is True
    mg.set_training(False)

    @mg.train_mode()
    def train_step():
        return mg.is_training()

    assert train_step() is True
    assert mg.is_training() is False


def test_primitive_ops_ignore_the_training_flag():
    x = leaf()
    train = (x * x).exp().data
    with mg.eval_mode():
        evaluated = (x * x).exp()
    np.testing.assert_array_equal(evaluated.data, train)
    assert evaluated.requires_grad                    # eval mode does not turn off recording


# ------------------------------------------------------------------ grad mode is per thread
def test_another_threads_no_grad_does_not_switch_off_this_threads_graph():
    import threading
    inside, release = threading.Event(), threading.Event()

    def worker():
        with mg.no_grad():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert inside.wait(5)
        x = mg.tensor(np.ones(3), requires_grad=True)
        y = x * 2                                     # recorded here, whatever the worker does
        assert mg.is_grad_enabled() and y.requires_grad and y.grad_fn is not None
    finally:
        release.set()
        thread.join(5)


def test_overlapping_no_grad_blocks_in_threads_leave_grad_mode_on():
    import threading
    barrier = threading.Barrier(2)
    seen = []

    @mg.no_grad()
    def decorated():
        barrier.wait(5)                           # both threads inside at once
        seen.append(mg.is_grad_enabled())

    def worker(first):
        if first:
            with mg.no_grad():
                barrier.wait(5)
                seen.append(mg.is_grad_enabled())
        else:
            decorated()
        seen.append(("after", mg.is_grad_enabled()))

    threads = [threading.Thread(target=worker, args=(k == 0,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(map(str, seen)) == sorted(map(str, [False, False, ("after", True), ("after", True)]))
    assert mg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled_even_if_this_one_has_it_off():
    import threading
    result = []
    with mg.no_grad():
        thread = threading.Thread(target=lambda: result.append(mg.is_grad_enabled()))
        thread.start()
        thread.join(5)
    assert result == [True]


def test_the_train_flag_is_one_flag_for_all_threads():
    import threading
    result = []
    with mg.eval_mode():
        thread = threading.Thread(target=lambda: result.append(mg.is_training()))
        thread.start()
        thread.join(5)
    assert result == [False]                     # global by design (see the README)


def test_manual_seed_returns_the_generator_it_installs():
    generator = mg.manual_seed(7)                  # as torch.manual_seed returns its Generator
    assert generator is mg.modes.rng
    assert generator.random() == np.random.default_rng(7).random()


@pytest.mark.parametrize("toggle", [mg.no_grad, mg.enable_grad, mg.train_mode, mg.eval_mode,
                                    mg.detect_anomaly, mg.trace_backward])
def test_a_toggle_entered_with_as_gives_none_as_in_pytorch(toggle):
    with toggle() as entered:
        assert entered is None                 # torch: `with torch.no_grad() as g` gives None
