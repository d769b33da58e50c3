"""Pin the BLAS / OpenMP thread count before numpy (or torch) is imported.

BLAS libraries read these variables once, when they load, so each benchmark parses its
arguments first, calls ``limit_threads`` and only then imports ``common`` (which imports numpy).
This module must not import numpy itself.
"""
import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(threads):
    """Set every BLAS/OpenMP thread variable to ``threads``; refuse if numpy is already loaded."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        raise RuntimeError("limit_threads() must run before numpy/torch are imported")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # the repository root, so `python benchmarks/bench_step.py` finds the package uninstalled
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
