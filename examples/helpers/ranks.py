"""Several processes (``mpiexec -n P python examples/...``): rank 0 alone prints and writes, and
every rank reaches the same decision about the command line.

Invariant: a rank never leaves the job alone. A rank that exits while the others wait in a
collective hangs the job (MPI ends it only on MPI Abort, which an uncaught exception calls, see
minigrad.distributed), so every argument error is one that every rank sees: each parses the same
argv and reads the same checkpoint, and what only rank 0 checks (its output files) it shares
before anyone acts on it. Without mpiexec all of this is one process doing it all.
"""
import sys

import numpy as np

from minigrad import distributed as dist


def writes():
    """Whether this process prints, writes files and shows the bar: rank 0 (or the only one)."""
    return dist.get_rank() == 0


def quiet_errors(parser):
    """On ranks other than 0, ``parser``'s errors and --help exit as on rank 0 but say nothing:
    rank 0 says it once."""
    if not writes():
        parser.error = lambda message: sys.exit(2)
        parser.print_help = lambda file=None: None


def on_rank_zero(check):
    """Run ``check()`` (which may end in parser.error: exit 2) on rank 0 alone; every rank then
    exits 2 if it failed there. One all-reduce when several processes run."""
    if dist.get_world_size() == 1:
        return check()
    failed = 0
    if writes():
        try:
            check()
        except SystemExit:
            failed = 1
    if dist.all_reduce(np.array(failed)):
        sys.exit(2)


def batch_problems(config):
    """The global batch (--batch-size, as in one process) must split into equal per-process
    batches of two or more: [] or one line saying so."""
    size, batch = dist.get_world_size(), config["batch_size"]
    if batch % size or batch // size < 2:
        return [f"--batch-size {batch} is the global batch, split over {size} processes: it must be a "
                f"multiple of {size} giving each process 2 or more samples (e.g. {max(2, -(-batch // size)) * size})"]
    return []


def command_prefix():
    """"mpiexec -n P " under several processes, "" in one: how a caption names the command."""
    size = dist.get_world_size()
    return f"mpiexec -n {size} " if size > 1 else ""
