"""Progress bars: one bar for a run, counting its epochs and left on screen; a batch bar only for
epochs that take long.

The rule: the run bar counts epochs, shows the last validation accuracy (``postfix``), and stays
when the run ends. A batch bar appears under it only once an epoch has run for BATCH_BAR_AFTER
seconds (tqdm's ``delay``), and is erased at the epoch's end: an epoch of train_mlp.py (~15 ms)
or train_cnn.py (~0.1 s) never flashes one; batch size 2, a wide --hidden or a loaded machine
shows one. Bars go to stderr, and only when it is a terminal (or from rank 0 under mpiexec);
--quiet turns them off.
"""
import sys

from tqdm import tqdm

from minigrad import distributed as dist

from . import ranks

BATCH_BAR_AFTER = 2.0          # seconds


def shown(quiet):
    """Unless --quiet: on a terminal; under mpiexec on rank 0 alone, whose stderr is always a pipe
    to mpiexec (which shows it where it runs, usually a terminal)."""
    if quiet or not ranks.writes():
        return False
    return sys.stderr.isatty() or dist.get_world_size() > 1


def run_bar(epochs, desc, quiet, done=0):
    """The run's bar: ``epochs`` in all, ``done`` of them already (a resumed run)."""
    return tqdm(total=epochs, initial=done, desc=desc, unit="epoch", leave=True, file=sys.stderr,
                disable=not shown(quiet))


def batches(loader, desc, quiet):
    """Iterate ``loader``; a bar of its batches appears if the pass lasts BATCH_BAR_AFTER seconds."""
    return tqdm(loader, total=len(loader), desc=desc, unit="batch", leave=False, file=sys.stderr,
                delay=BATCH_BAR_AFTER, disable=not shown(quiet))
