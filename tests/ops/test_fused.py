"""The fused ops. CrossEntropy, the fused log-softmax + negative log-likelihood: forward against
a numpy log-softmax, each reduction, stability for logits of ±1e4, gradients to first and second
order. The normalisation kernel: what it returns for each layout, and its ``sum_ranks`` hook
(SyncBatchNorm's): two ranks simulated by two threads equal batch norm on the whole batch.
(Batch, group and layer norm are tested against their composed forms and torch in tests/nn.)
"""
import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad.ops.fused import BatchNormFused, CrossEntropy, GroupNormFused, LayerNormFused

TARGET = np.array([0, 2, 1, 2])


def logits(seed=0, shape=(4, 3)):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def reference(z, target, reduction):
    losses = -log_softmax(z)[np.arange(len(target)), target]        # (N,)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_forward_matches_numpy(reduction):
    z = logits()
    y = CrossEntropy.apply(z, TARGET, reduction=reduction)
    expected = reference(z.data, TARGET, reduction)
    assert y.shape == np.shape(expected) and type(y.data) is np.ndarray
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    assert mg.gradcheck(lambda z: CrossEntropy.apply(z, TARGET, reduction=reduction), [logits(1)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradgradcheck(reduction):
    assert mg.gradgradcheck(lambda z: CrossEntropy.apply(z, TARGET, reduction=reduction), [logits(2)])


def test_gradient_is_softmax_minus_onehot_over_n():
    z = logits(3)
    CrossEntropy.apply(z, TARGET, reduction="mean").backward()
    probs = np.exp(log_softmax(z.data))
    onehot = np.eye(3)[TARGET]
    np.testing.assert_allclose(z.grad, (probs - onehot) / 4)


def test_none_reduction_weights_each_row():
    z = logits(4)
    g = np.array([1.0, 0.0, -2.0, 0.5])
    CrossEntropy.apply(z, TARGET, reduction="none").backward(g)
    probs = np.exp(log_softmax(z.data))
    np.testing.assert_allclose(z.grad, (probs - np.eye(3)[TARGET]) * g[:, None])


def test_used_twice():
    z = logits(5)
    fn = lambda t: CrossEntropy.apply(t, TARGET, reduction="sum") * (t * t).mean()   # noqa: E731
    assert mg.gradcheck(fn, [z])
    assert mg.gradgradcheck(fn, [z])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_for_huge_logits(dtype):
    z = mg.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, -1e4]], dtype),
                  requires_grad=True)
    target = np.array([0, 0, 2])
    losses = CrossEntropy.apply(z, target, reduction="none")
    assert losses.dtype == dtype
    assert np.isfinite(losses.data).all()
    np.testing.assert_allclose(losses.data, [0.0, 2e4 + np.log(2.0), 2e4 + np.log(2.0)], rtol=1e-6)
    losses.sum().backward()
    assert np.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad, [[0.0, 0.0, 0.0], [-1.0, 0.5, 0.5], [0.5, 0.5, -1.0]], atol=1e-6)


def test_huge_logits_under_anomaly_detection():
    z = mg.tensor(np.array([[1e4, -1e4], [-1e4, 1e4]]), requires_grad=True)
    with mg.detect_anomaly():
        CrossEntropy.apply(z, np.array([1, 1]), reduction="mean").backward()
    assert np.isfinite(z.grad).all()


def test_targets_get_no_gradient():
    z = logits(6)
    y = CrossEntropy.apply(z, TARGET, reduction="mean")
    assert y.grad_fn.needs_input_grad == [True, False]
    assert y.grad_fn.parents[1] is None


def test_cross_entropy_second_derivatives_are_finite_for_rows_far_apart():
    """The softmax rebuilt for create_graph shifts each row by its own maximum: shifting by the
    largest logit of the batch would underflow a row 1000 below it to 0/0."""
    z = np.array([[1000.0, 1001.0, 999.0], [0.0, 1.0, -1.0]])
    results = []
    for logits_ in (z, z - z.max(axis=1, keepdims=True)):    # softmax is shift-invariant per row
        t = mg.tensor(logits_, requires_grad=True)
        (g,) = mg.grad(CrossEntropy.apply(t, np.array([1, 0]), "mean"), [t], create_graph=True)
        (h,) = mg.grad((g * g).sum(), [t])
        results.append((g.data, h.data))
    assert np.isfinite(results[0][1]).all()
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ the normalisation kernel
def test_each_layout_returns_its_groups_statistics_and_count():
    x = np.random.default_rng(0).standard_normal((4, 6, 5))
    for op, arg, groups, axes, n in ((BatchNormFused, (), (6,), (0, 2), 20),
                                     (GroupNormFused, (3,), (4, 3), None, 10),
                                     (LayerNormFused, (2,), (4,), (1, 2), 30)):
        y, mean, var, count = op.apply(mg.tensor(x), None, None, 1e-5, *arg)
        values = x.reshape(4, 3, 10) if axes is None else x              # group norm: (N, G, C/G·L)
        axes = (2,) if axes is None else axes
        np.testing.assert_allclose(mean, values.mean(axis=axes).reshape(groups), rtol=1e-12)
        np.testing.assert_allclose(var, values.var(axis=axes).reshape(groups), rtol=1e-12)   # biased
        assert count == n and type(count) is int and y.shape == x.shape


class FakeRanks:
    """Two (or more) ranks as threads of one process: each rank's ``sum_ranks`` waits for the
    others' call and returns the elementwise sum of all ranks' arrays, as an all-reduce would.
    It records what each rank sent (kind and shape), to check the hook's contract."""

    def __init__(self, size=2):
        self.barrier = threading.Barrier(size, timeout=20)      # a broken contract fails, never hangs
        self.slots = [None] * size
        self.calls = [[] for _ in range(size)]

    def sum_ranks(self, rank):
        def sum_over_ranks(a):
            self.calls[rank].append((type(a).__name__, a.shape))
            self.slots[rank] = a
            self.barrier.wait()
            total = sum(self.slots[1:], self.slots[0])
            self.barrier.wait()                                  # all read before the next call
            return total
        return sum_over_ranks


def run_ranks(size, work):
    """Run ``work(rank)`` in ``size`` threads; re-raise the first failure."""
    errors = []

    def target(rank):
        try:
            work(rank)
        except BaseException as e:              # noqa: B036 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=target, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("sizes, dtype", [((3, 5), np.float64), ((4, 4), np.float64), ((1, 2, 4), np.float64),
                                         ((3, 5), np.float32)], ids=["unequal", "equal", "three", "float32"])
def test_sum_ranks_makes_the_ranks_one_batch(sizes, dtype):
    """Each rank normalises its rows with the statistics of every rank's rows: its y and dx
    are those of batch norm on the whole batch; dγ, dβ stay its own, summing to the whole's."""
    rng = np.random.default_rng(1)
    x0 = 2 + 3 * rng.standard_normal((sum(sizes), 4, 3))
    g0, w0, b0 = rng.standard_normal(x0.shape), rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    x0, g0, w0, b0 = (a.astype(dtype) for a in (x0, g0, w0, b0))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    whole = [mg.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
    y, mean, var, n = BatchNormFused.apply(*whole, 1e-5)
    y.backward(g0)
    rows = np.split(np.arange(len(x0)), np.cumsum(sizes)[:-1])
    comm, results = FakeRanks(len(sizes)), [None] * len(sizes)

    def rank(r):
        tensors = [mg.tensor(a, requires_grad=True) for a in (x0[rows[r]], w0, b0)]
        out = BatchNormFused.apply(*tensors, 1e-5, sum_ranks=comm.sum_ranks(r))
        out[0].backward(g0[rows[r]])
        results[r] = (out, [t.grad for t in tensors])
    run_ranks(len(sizes), rank)

    for r, ((y_r, mean_r, var_r, n_r), (dx, dw, db)) in enumerate(results):
        assert y_r.dtype == dx.dtype == mean_r.dtype == var_r.dtype == dw.dtype == dtype
        np.testing.assert_allclose(y_r.data, y.data[rows[r]], rtol=tol, atol=tol)
        np.testing.assert_allclose(dx, whole[0].grad[rows[r]], rtol=tol, atol=tol)
        np.testing.assert_allclose(mean_r, mean, rtol=tol)
        np.testing.assert_allclose(var_r, var, rtol=tol)
        assert n_r == n == 3 * sum(sizes)
        x_hat = (x0[rows[r]] - mean.reshape(1, -1, 1)) / np.sqrt(var.reshape(1, -1, 1) + 1e-5)
        np.testing.assert_allclose(dw, (g0[rows[r]] * x_hat).sum(axis=(0, 2)), rtol=tol, atol=tol)  # its own
        np.testing.assert_allclose(db, g0[rows[r]].sum(axis=(0, 2)), rtol=tol, atol=tol)
        # the contract: forward [Σx..., n] then Σ(x - μ)²; backward [Σdy; Σdy·(x - μ)]
        assert comm.calls[r] == [("ndarray", (5,)), ("ndarray", (4,)), ("ndarray", (2, 4))]
    np.testing.assert_allclose(sum(res[1][1] for res in results), whole[1].grad, rtol=tol, atol=tol)
    np.testing.assert_allclose(sum(res[1][2] for res in results), whole[2].grad, rtol=tol, atol=tol)


def test_sum_ranks_is_not_called_in_backward_when_x_needs_no_gradient():
    comm = FakeRanks(1)
    w = mg.tensor(np.ones(2), requires_grad=True)
    y = BatchNormFused.apply(mg.tensor(np.arange(8.0).reshape(4, 2)), w, None, 1e-5,
                             sum_ranks=comm.sum_ranks(0))[0]
    y.backward(np.ones((4, 2)))
    assert comm.calls[0] == [("ndarray", (3,)), ("ndarray", (2,))]


def test_sum_ranks_under_create_graph():
    """Two identical ranks (a sum over ranks doubles): the statistics are x's own, so the op is
    batch norm of x, to second order; backward and rebuild_saved then call the hook on Tensors
    (a rebuild without it would centre x by half its mean, and gradgradcheck would say so)."""
    calls = []

    def double(a):
        calls.append(type(a).__name__)
        return a * 2

    rng = np.random.default_rng(2)
    inputs = [mg.tensor(a, requires_grad=True) for a in (rng.standard_normal((3, 2, 2)) + 1,
                                                          rng.uniform(0.5, 2, 2), rng.standard_normal(2))]
    f = lambda x, w, b: BatchNormFused.apply(x, w, b, 1e-5, sum_ranks=double)[0]      # noqa: E731
    plain = BatchNormFused.apply(*inputs, 1e-5)[0]
    np.testing.assert_allclose(f(*inputs).data, plain.data, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(f, inputs)
    assert mg.gradgradcheck(f, inputs)
    assert "Tensor" in calls and "ndarray" in calls
