"""minigrad/distributed.py: one process (world size 1, no MPI at all) in this process; several
ranks through worker.py (checks_collectives.py) under mpiexec -n 2 and -n 3; a failing rank
ends the whole job (fault_worker.py); the install message when mpi4py is missing."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import distributed as dist

from .conftest import ROOT, mpiexec

LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK")


def python(code, **env):
    """Run ``code`` in a fresh interpreter outside any MPI launcher (plus ``env``)."""
    clean = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    clean.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=clean)


# --------------------------------------------------------------------------- one process
def test_without_a_launcher_world_size_one_and_mpi_never_imported():
    done = python("import sys; import minigrad.distributed as d; print(d.is_initialized(), d.get_world_size(), "
                  "d.get_rank(), d.is_initialized(), 'mpi4py' in sys.modules, d.launched_size())")
    assert done.stdout.split() == ["False", "1", "0", "True", "False", "None"], done.stderr


def test_every_call_initialises_first():
    calls = ["d.get_rank()", "d.get_world_size()", "d.barrier()", "d.all_reduce(np.ones(2))",
             "d.broadcast(np.ones(2))", "d.all_gather(np.ones(2))"]
    code = "import numpy as np; import minigrad.distributed as d\n" + "\n".join(
        f"d._initialized = False; {call}; print(d.is_initialized())" for call in calls)
    done = python(code)
    assert done.stdout.split() == ["True"] * len(calls), done.stderr


def test_launched_size_from_each_launcher_s_environment():
    code = "import minigrad.distributed as d; print(d.launched_size())"
    for env, size in (({"PMI_SIZE": "3"}, "3"), ({"OMPI_COMM_WORLD_SIZE": "2"}, "2"),
                      ({"PMIX_RANK": "0"}, "0")):                    # PMIx alone: 0, "ask MPI"
        done = python(code, **env)
        assert done.stdout.split() == [size], (env, done.stderr)


def test_launched_without_mpi4py_says_what_to_install():
    done = python("import sys; sys.modules['mpi4py'] = None\nimport minigrad.distributed as d; d.init()",
                  PMI_SIZE="2", PMI_RANK="0")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "started by an MPI launcher (2 processes) but mpi4py is not installed" in last
    assert 'pip install -e ".[dist]"' in last


def test_world_size_one_collectives():
    dist.init()
    dist.init()                                        # idempotent
    assert dist.is_initialized() and dist.get_world_size() == 1 and dist.get_rank() == 0
    dist.barrier()
    x = np.arange(6.0).reshape(2, 3)
    for op in dist.OPS:
        y = dist.all_reduce(x, op)
        np.testing.assert_array_equal(y, x)
        assert y is not x                              # a new array, as with several ranks
    assert dist.broadcast(x) is x                      # src=0 by default
    gathered = dist.all_gather(x)
    assert len(gathered) == 1 and np.array_equal(gathered[0], x) and gathered[0] is not x
    assert dist.all_gather(np.array(3.0))[0].shape == ()


def test_world_size_one_arguments_are_checked():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.ones(2), "product")
    with pytest.raises(ValueError, match=r"has no gradient here.*all_reduce\(t.data, 'max'\)"):
        dist.all_reduce(mg.tensor([1.0]), "max")
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 1\), got 1"):
        dist.broadcast(np.ones(2), src=1)
    with pytest.raises(TypeError, match="pass tensor.data"):
        dist.broadcast(mg.tensor([1.0]))


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_all_reduce_is_an_op_with_a_gradient(op):
    """At world size 1 the op is the identity; gradcheck and gradgradcheck run its backward
    (an all-reduce of the gradient) on arrays and recorded on Tensors."""
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    y = dist.all_reduce(x, op)
    assert y.grad_fn.fn is dist.AllReduce and y.data is not x.data
    np.testing.assert_array_equal(y.data, x.data)
    assert mg.gradcheck(lambda t: dist.all_reduce(t, op) * t, [x])
    assert mg.gradgradcheck(lambda t: dist.all_reduce(t * t, op) * t, [x])


# --------------------------------------------------------------------------- several ranks
CHECKS = ["check_init_rank_size", "check_barrier_waits_for_every_rank", "check_all_reduce_arrays",
          "check_broadcast", "check_all_gather",
          "check_all_reduce_gradient", "check_sums_are_one_allreduce_on_two_ranks_reduce_and_bcast_beyond"]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("check", CHECKS)
def test_collectives_on_several_ranks(worker, n, check):
    numbers = worker(n, check)
    if check == "check_init_rank_size":
        assert numbers["world_size"] == n


@pytest.mark.parametrize("n", [2, 3])
def test_a_rank_that_raises_ends_the_job_with_its_error(n):
    """The other ranks wait inside all_reduce for the failed one; without the excepthook's
    MPI Abort they would wait forever (the timeout fails the test instead)."""
    try:
        done = mpiexec(n, "fault_worker", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the job hung after rank {n - 1} raised")
    assert done.returncode != 0
    assert f"ValueError: rank {n - 1} fails on purpose" in done.stderr
    assert f"rank {n - 1} of {n} raised ValueError; aborting every rank" in done.stderr
    assert "unreachable" not in done.stdout
    assert "the failing rank's last words" in done.stdout          # flushed before the Abort
