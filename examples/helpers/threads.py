"""One BLAS thread for every example and study unless ``--threads N`` asks otherwise: the one place.

BLAS libraries (OpenBLAS, MKL, Accelerate) read their thread count once, when numpy loads, so this
module must run first: helpers/__init__.py imports it, and every example's first import is
``import helpers``. It reads ``--threads N`` (default 1) from the command line and sets every
thread variable below, *overriding* the environment's: OMP_NUM_THREADS=8 does not change an
example's numbers; ``--threads 8`` does. Why one thread: minigrad's arrays are small, so two BLAS
threads on a busy 2-core machine mostly wait for each other (the main job took 3-21 s instead of
under one), and a sum split across threads is added in another order, so printed numbers would
depend on the machine. A process that loaded numpy before any example (a test, a notebook) keeps
its own count unless threadpoolctl, an optional package, is installed: see ``apply``.
"""
import os
import sys

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
DEFAULT = 1


def requested(argv):
    """N from ``--threads N`` or ``--threads=N`` in ``argv`` (the last one wins, as in argparse);
    DEFAULT when absent or not a positive integer (argparse then reports the bad value)."""
    count = DEFAULT
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            text = argv[i + 1]
        elif arg.startswith("--threads="):
            text = arg.partition("=")[2]
        else:
            continue
        count = int(text) if text.isdigit() and int(text) >= 1 else DEFAULT
    return count


def pin(count):
    """Set every thread variable to ``count``: read by BLAS when numpy loads, and by child processes."""
    for name in VARIABLES:
        os.environ[name] = str(count)


# The count BLAS was given before numpy loaded, or None when numpy was loaded first.
PINNED = None
if "numpy" not in sys.modules:
    PINNED = requested(sys.argv[1:])
    pin(PINNED)


def apply(count, given):
    """Make BLAS use ``count`` threads from here on; main() calls it with the parsed --threads
    (``given``: typed on the command line). Returns None, or a one-line error.

    Run as a script, the count was pinned above and this does nothing. main(argv) called in a
    process that loaded numpy first, or with another count than that process's command line,
    needs threadpoolctl (optional) to change it; without threadpoolctl, a count that was not
    asked for keeps the process's own, and one that was asked for is refused.
    """
    global PINNED
    if count == PINNED:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if not given:
            return None
        return (f"--threads {count}: this process loaded numpy with "
                f"{'its own thread count' if PINNED is None else f'{PINNED} thread(s)'}; run the script "
                f"itself with --threads {count}, or install threadpoolctl")
    threadpool_limits(count)      # for the rest of the process, as the pinned count would be
    pin(count)                    # and for the processes it starts
    PINNED = count
    return None
