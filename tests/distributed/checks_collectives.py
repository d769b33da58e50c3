"""Checks of minigrad/distributed.py run on every rank by worker.py (under mpiexec).

Each check raises on a wrong result; a check that expects an error catches it on every rank
(the error is raised on every rank, by design) and goes on.
"""
import os
import tempfile
import time

import numpy as np

import minigrad as mg
from minigrad import distributed as dist


def rank_rng(salt=0):
    """A generator that differs between ranks (and checks)."""
    return np.random.default_rng([dist.get_rank(), salt])


def expect_error(kind, fragment, fn, *args):
    """``fn(*args)`` must raise ``kind`` with ``fragment`` in its message (on this rank)."""
    try:
        fn(*args)
    except kind as err:
        assert fragment in str(err), f"{fragment!r} not in {err}"
        return str(err)
    raise AssertionError(f"{fn.__name__} did not raise {kind.__name__}")


def check_init_rank_size():
    dist.init()
    dist.init()                                        # idempotent
    assert dist.is_initialized()
    assert dist.get_world_size() == int(os.environ["PMI_SIZE"]) > 1
    assert dist.get_rank() == int(os.environ["PMI_RANK"])
    ranks = dist.all_gather(np.array(dist.get_rank()))
    assert [int(r) for r in ranks] == list(range(dist.get_world_size()))
    dist.barrier()
    return {"world_size": dist.get_world_size()}


def check_barrier_waits_for_every_rank():
    """The last rank writes a file late; after the barrier every rank sees it."""
    marker = os.path.join(tempfile.gettempdir(), f"minigrad-barrier-{os.getppid()}")   # one per job
    last = dist.get_world_size() - 1
    if dist.get_rank() == last and os.path.exists(marker):
        os.remove(marker)                              # a stale one from an interrupted run
    dist.barrier()
    if dist.get_rank() == last:
        time.sleep(0.3)
        with open(marker, "w") as f:
            f.write("done")
    dist.barrier()
    assert os.path.exists(marker), "barrier returned before the last rank reached it"
    dist.barrier()                                     # every rank looked before it goes
    if dist.get_rank() == last:
        os.remove(marker)


def check_all_reduce_arrays():
    P, rng = dist.get_world_size(), rank_rng(1)
    x = rng.standard_normal((3, 4)) * 10.0 ** rng.integers(-6, 6, (3, 4))
    everyone = np.stack(dist.all_gather(x))                          # (P, 3, 4)
    for op, reference in (("sum", everyone.sum(0)), ("mean", everyone.sum(0) / P),
                          ("max", everyone.max(0)), ("min", everyone.min(0))):
        got = dist.all_reduce(x, op)
        bound = P * np.finfo(float).eps * np.abs(everyone).sum(0)      # any order of summation
        assert np.all(np.abs(got - reference) <= bound), op
        assert got is not x and got.dtype == x.dtype and got.shape == x.shape
        bits = dist.all_gather(got)
        assert all(b.tobytes() == bits[0].tobytes() for b in bits), f"{op}: ranks differ"
    assert int(dist.all_reduce(np.array(2, np.int64))) == 2 * P
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]                  # not contiguous
    np.testing.assert_array_equal(dist.all_reduce(strided), P * strided)
    wrong = np.zeros(3 if dist.get_rank() == 0 else 4)
    message = expect_error(ValueError, "rank 0 has shape (3,) float64, rank 1 has shape (4,)",
                           dist.all_reduce, wrong)
    expect_error(ValueError, "rank 1 has shape (4,) float64", dist.all_reduce, mg.tensor(wrong, requires_grad=True))
    expect_error(ValueError, "op must be one of", dist.all_reduce, x, "prod")
    return {"mismatch_message": message}


def check_broadcast():
    P, r = dist.get_world_size(), dist.get_rank()
    a = np.full((2, 3), float(r))
    assert dist.broadcast(a, src=P - 1) is a
    np.testing.assert_array_equal(a, P - 1)
    b = np.full((4, 4), float(r))
    view = b[:, 1]                                                   # not contiguous: filled in place
    dist.broadcast(view)                                             # src=0 by default
    np.testing.assert_array_equal(b[:, 1], 0.0)
    np.testing.assert_array_equal(b[:, 0], float(r))
    expect_error(ValueError, "src must be a rank", dist.broadcast, a, P)
    expect_error(TypeError, "pass tensor.data", dist.broadcast, mg.tensor([1.0]))
    wrong = np.zeros(2, np.float32 if r == P - 1 else np.float64)
    expect_error(ValueError, f"rank {P - 1} has shape (2,) float32", dist.broadcast, wrong)


def check_all_gather():
    r = dist.get_rank()
    x = np.arange((r + 1) * 6, dtype=np.float32).reshape(r + 1, 2, 3) + 100 * r   # (r+1, 2, 3)
    got = dist.all_gather(x)
    assert len(got) == dist.get_world_size()
    for s, piece in enumerate(got):
        np.testing.assert_array_equal(piece, np.arange((s + 1) * 6, dtype=np.float32).reshape(s + 1, 2, 3) + 100 * s)
        assert piece.dtype == np.float32
    wrong = np.zeros((2, 3 + (r == 1)))
    expect_error(ValueError, "rank 1 has shape ('N', 4)", dist.all_gather, wrong)


def check_all_reduce_gradient():
    """y = all_reduce(x) on every rank; loss_r = Σ g_r·y  ->  x.grad = Σ_r g_r on every rank."""
    P, rng = dist.get_world_size(), rank_rng(2)
    g = rng.standard_normal((2, 3))
    g_all = np.stack(dist.all_gather(g))                            # (P, 2, 3)
    x = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = dist.all_reduce(x)
    np.testing.assert_allclose(y.data, np.stack(dist.all_gather(x.data)).sum(0), rtol=1e-14)
    (y * g).sum().backward()
    np.testing.assert_allclose(x.grad, g_all.sum(0), rtol=1e-14)
    x.grad = None
    (dist.all_reduce(x, "mean") * g).sum().backward()
    np.testing.assert_allclose(x.grad, g_all.sum(0) / P, rtol=1e-14)
    # create_graph: G = ∂(Σ_r Σ g_r·y²)/∂x = 2 (Σ_r g_r) y, the same on every rank; then
    # Z = Σ_r Σ h_r·G has ∂Z/∂x = 2 (Σ_r g_r)(Σ_r h_r).
    h = rng.standard_normal((2, 3))
    h_all = np.stack(dist.all_gather(h))
    x.grad = None
    y = dist.all_reduce(x)
    (grad_x,) = mg.grad((y * y * g).sum(), x, create_graph=True)
    np.testing.assert_allclose(grad_x.data, 2 * g_all.sum(0) * y.data, rtol=1e-13)
    (grad_x * h).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * g_all.sum(0) * h_all.sum(0), rtol=1e-13)
    expect_error(ValueError, "has no gradient here", dist.all_reduce, x, "max")


class Recording:
    """Stands in for the communicator: records the name of every MPI call made through it."""

    def __init__(self, comm):
        self.comm, self.calls = comm, []

    def __getattr__(self, name):
        attribute = getattr(self.comm, name)
        if callable(attribute):
            self.calls.append(name)
        return attribute


def recorded_calls(fn, *args):
    """The MPI calls ``fn(*args)`` makes, by name, in order."""
    real, dist._comm = dist._comm, Recording(dist._comm)
    try:
        fn(*args)
        return dist._comm.calls
    finally:
        dist._comm = real


def check_sums_are_one_allreduce_on_two_ranks_reduce_and_bcast_beyond():
    """Two ranks: a sum of two numbers is one rounding, the same on both, so one Allreduce does;
    three or more: Reduce then Bcast of rank 0's bits (the identical-replica guarantee)."""
    expected = ["Allreduce"] if dist.get_world_size() == 2 else ["Reduce", "Bcast"]
    assert recorded_calls(dist._sum, np.ones(3)) == expected
    return {"calls": expected}


CHECKS = [check_init_rank_size, check_barrier_waits_for_every_rank, check_all_reduce_arrays, check_broadcast,
          check_all_gather, check_all_reduce_gradient, check_sums_are_one_allreduce_on_two_ranks_reduce_and_bcast_beyond]
