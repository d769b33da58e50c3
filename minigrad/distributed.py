"""Several processes, one job, over MPI (mpi4py): init, rank, world size and the collectives.

Launch with MPI's own launcher, ``mpiexec -n 2 python script.py``. Run without it, every call
works as one process of world size 1 and mpi4py is never imported. Invariants: every rank gets
bitwise the same result from a collective (sums are a Reduce to rank 0 then a Bcast of its
bits, see ``_sum``); the one piece of state here, the communicator, is set once by ``init()``.
"""
import os
import sys
import time
import zlib

import numpy as np

from .autograd.function import Function
from .tensor import Tensor

INSTALL = 'pip install "minigrad[dist]" (or pip install -e ".[dist]" in a checkout: mpi4py and mpich)'
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")  # MPICH/Intel, Open MPI, MVAPICH
OPS = ("sum", "mean", "max", "min")

_mpi = None          # the mpi4py.MPI module when several processes run, else None
_comm = None         # its COMM_WORLD; both set once by init(), never toggled
_initialized = False


def launched_size():
    """The number of processes an MPI launcher started, read from its environment; None if
    this process was not started by mpiexec (or srun with PMI/PMIx)."""
    for name in LAUNCHER_SIZE:
        if name in os.environ:
            return int(os.environ[name])
    return 0 if "PMIX_RANK" in os.environ else None   # PMIx alone: size unknown, ask MPI


def init():
    """Join the job that mpiexec started (idempotent; every call below runs it if needed).

    Under a launcher with several processes it imports mpi4py (initialising MPI) and installs
    an excepthook: an exception that escapes on one rank prints that rank's traceback, then
    calls MPI Abort, which ends every rank at once (as ``python -m mpi4py`` does) instead of
    leaving the others waiting forever in their next collective. Without a launcher, or with
    one process, nothing is imported: world size 1, rank 0.
    """
    global _mpi, _comm, _initialized
    if _initialized:
        return
    size = launched_size()
    if size is not None and size != 1:
        try:
            from mpi4py import MPI
        except ImportError:
            raise RuntimeError(f"minigrad.distributed: started by an MPI launcher ({size or 'PMIx'} "
                               f"processes) but mpi4py is not installed: {INSTALL}") from None
        if size > 1 and MPI.COMM_WORLD.size != size:
            raise RuntimeError(f"minigrad.distributed: the launcher started {size} processes but MPI "
                               f"sees a world of {MPI.COMM_WORLD.size}: mpiexec and mpi4py come from "
                               f"different MPI libraries (mpi4py uses {MPI.Get_library_version()[:40]!r});"
                               f" use the mpiexec that came with it ({INSTALL})")
        if MPI.COMM_WORLD.size > 1:
            _mpi, _comm = MPI, MPI.COMM_WORLD
            _install_excepthook()
    _initialized = True


def _install_excepthook():
    previous = sys.excepthook

    def abort_job(kind, value, traceback):
        try:
            previous(kind, value, traceback)
            print(f"minigrad.distributed: rank {_comm.rank} of {_comm.size} raised {kind.__name__}; "
                  f"aborting every rank (MPI Abort)", file=sys.stderr)
            sys.stderr.flush()
            sys.stdout.flush()
            time.sleep(0.5)   # the launcher forwards what we printed; Abort kills its forwarders
            #                   too, and on a loaded machine it lost the message without this pause
        finally:
            _comm.Abort(1)

    sys.excepthook = abort_job


def is_initialized():
    """True once ``init()`` ran (explicitly, or through any call below)."""
    return _initialized


def get_rank():
    """This process's rank, 0 ... world size - 1 (0 in one process)."""
    init()
    return 0 if _comm is None else _comm.rank


def get_world_size():
    """The number of processes in the job (1 without mpiexec)."""
    init()
    return 1 if _comm is None else _comm.size


def barrier():
    """Wait until every rank has called barrier()."""
    init()
    if _comm is not None:
        _comm.Barrier()


# --------------------------------------------------------------------------- array collectives
# The unchecked primitives: contiguous arrays through mpi4py's buffer interface (no pickling).
# Every rank must pass the same shape and dtype; the public functions below check that first.
def _sum(array):
    """Σ over ranks of ``array``, a new array, bitwise the same on every rank.

    Two ranks: one Allreduce. Each value is then the sum of two numbers, a single rounding of a
    commutative operation, so every rank gets the same bits whatever order or algorithm MPI
    picks (NaN payloads aside). Three or more: Reduce to rank 0, then Bcast of its bits. The
    MPI standard does not promise that Allreduce hands every rank the same bits (a sum of three
    or more numbers depends on its order, and an algorithm may add in a different order on
    each rank; MPICH 5 gave identical bits for 3 ranks in every algorithm we tried, but that is
    not a guarantee); Reduce + Bcast is identical by construction, which the replicas of
    data-parallel training rely on. It costs a second message: 8 µs against 5 µs for a small
    array on two busy-polling ranks here.
    """
    send = np.asarray(array, order="C")
    out = np.empty_like(send)
    if _comm.size == 2:
        _comm.Allreduce(send, out, op=_mpi.SUM)
    else:
        _comm.Reduce(send, out, op=_mpi.SUM, root=0)
        _comm.Bcast(out, root=0)
    return out


def _reduce(array, op):
    """op in OPS over ranks, a new array (a copy in one process)."""
    if _comm is None:
        return np.array(array, copy=True)
    if op in ("sum", "mean"):
        out = _sum(array)
        if op == "mean":
            out /= _comm.size
        return out
    send = np.asarray(array, order="C")
    out = np.empty_like(send)
    _comm.Reduce(send, out, op=_mpi.MAX if op == "max" else _mpi.MIN, root=0)
    _comm.Bcast(out, root=0)                 # max(-0.0, 0.0) and NaNs may depend on order too
    return out


def _broadcast(array, src=0):
    """Fill ``array`` (contiguous) in place with rank ``src``'s values."""
    if _comm is not None:
        _comm.Bcast(array, root=src)
    return array


def _gather_objects(value):
    """Every rank's ``value`` (small, picklable), in rank order: for checks, never the hot path."""
    return [value] if _comm is None else _comm.allgather(value)


def _check_same(what, array, shape=None):
    """Raise on every rank (so none waits forever) unless all ranks pass ``shape`` (default:
    the array's) and dtype. One small collective (see ``_agree``)."""
    _agree(what, f"shape {array.shape if shape is None else shape} {array.dtype}",
           "every rank must pass an array of the same shape and dtype")


def _agree(what, described, must):
    """Return once every rank has passed the same ``described`` (a short text); else raise on
    every rank: "{what}: {must}; rank 0 has ..., rank r has ...", naming the first rank that
    differs. One Allgather of a checksum per rank."""
    if _comm is None:
        return
    sums = np.empty(_comm.size, np.int64)
    _comm.Allgather(np.array([zlib.crc32(described.encode())], np.int64), sums)
    if np.any(sums != sums[0]):
        everyone = _gather_objects(described)
        other = next(r for r, d in enumerate(everyone) if d != everyone[0])
        raise ValueError(f"{what}: {must}; rank 0 has {everyone[0]}, rank {other} has {everyone[other]}")


def broadcast(array, src=0):
    """Overwrite ``array`` (a numpy array) in place with rank ``src``'s values, on every rank;
    returns it. Every rank passes the same shape and dtype (checked)."""
    init()
    if not isinstance(array, np.ndarray):
        raise TypeError(f"broadcast fills a numpy array in place, got {type(array).__name__}"
                        + ("; pass tensor.data" if isinstance(array, Tensor) else ""))
    size = get_world_size()
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < size:
        raise ValueError(f"broadcast: src must be a rank in [0, {size}), got {src!r}")
    _check_same("broadcast", array)
    if _comm is not None:
        buffer = np.asarray(array, order="C")
        _broadcast(buffer, src)
        if buffer is not array:
            array[...] = buffer
    return array


def all_gather(array):
    """Every rank's ``array`` as a list in rank order, the same list on every rank.

    Arrays must agree in dtype and in every axis but the first, which may differ from rank to
    rank (unequal batches); a 0-d array gathers as 0-d arrays. One Allgather of the sizes and
    one Allgatherv of the data, through the buffer interface.
    """
    init()
    array = np.asarray(array, order="C")
    if _comm is None:
        return [array.copy()]
    _check_same("all_gather", array, shape=("N", *array.shape[1:]) if array.ndim else ())
    lead = np.empty(_comm.size, np.int64)
    _comm.Allgather(np.array([len(array) if array.ndim else 1], np.int64), lead)
    per_row = int(np.prod(array.shape[1:], dtype=np.int64)) if array.ndim else 1
    counts = lead * per_row
    out = np.empty(int(counts.sum()), array.dtype)
    _comm.Allgatherv(array.reshape(-1), [out, counts])
    pieces = np.split(out, np.cumsum(counts)[:-1])
    if array.ndim == 0:
        return [p.reshape(()) for p in pieces]
    return [p.reshape((n, *array.shape[1:])) for p, n in zip(pieces, lead)]


# --------------------------------------------------------------------------- the differentiable one
def all_reduce(x, op="sum"):
    """Σ over ranks of ``x`` (``op="mean"``: divided by the world size), the same on every rank.

    A Tensor gives a new Tensor, differentiable (AllReduce: its backward is an all-reduce of
    the gradient); only "sum" and "mean" are defined for Tensors. An array (or number) gives a
    new array, and also takes "max" and "min". Every rank passes the same shape and dtype
    (checked: a mismatch raises on every rank rather than hanging or mixing garbage).
    """
    init()
    if op not in OPS:
        raise ValueError(f"all_reduce: op must be one of {OPS}, got {op!r}")
    if isinstance(x, Tensor):
        if op not in ("sum", "mean"):
            raise ValueError(f"all_reduce: op={op!r} has no gradient here: a Tensor takes 'sum' or "
                             f"'mean'; reduce its array instead (all_reduce(t.data, {op!r}))")
        _check_same("all_reduce", x.data)
        return AllReduce.apply(x, op=op)
    x = np.asarray(x)
    _check_same("all_reduce", x)
    return _reduce(x, op)


class AllReduce(Function):
    """y = Σ_r x_r on every rank;   dx = Σ_r dy_r   (op="mean": both divided by the world size P)

    The adjoint of a sum over ranks is a sum over ranks: the job's loss is L = Σ_r L_r, and
    every rank's y is Σ_s x_s, so ∂L/∂x_s = Σ_r ∂L_r/∂y_r · ∂y_r/∂x_s = Σ_r dy_r. Its backward
    is thus a collective too, which every rank reaches in the same order of its backward pass.
    """

    @staticmethod
    def forward(ctx, x, op):
        ctx.op = op
        return _reduce(x, op)

    @staticmethod
    def backward(ctx, grad_y):
        return all_reduce_any(grad_y, ctx.op)


def all_reduce_any(x, op):
    """AllReduce's backward on arrays, or recorded on Tensors (create_graph)."""
    return _reduce(x, op) if isinstance(x, np.ndarray) else AllReduce.apply(x, op=op)
