"""Execute every tutorial notebook in place, so its committed outputs are those of a fresh run.

    python notebooks/run.py [NOTEBOOK ...]      # default: every notebooks/*.ipynb

The one command that regenerates the notebooks' outputs (tests/test_notebooks.py fails when a
committed output differs from a fresh run's). Runs each top to bottom in a fresh kernel with one
BLAS thread, from the notebooks/ folder, and prints how long each took. Needs the test extra
(`pip install -e ".[test]"`: nbclient, ipykernel, matplotlib).
"""
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def execute(path, timeout=300):
    """Run the notebook at ``path`` in a fresh kernel; returns (the executed notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient
    notebook = nbformat.read(path, as_version=4)
    os.environ.update(THREADS)              # the kernel inherits them before numpy loads
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return notebook, time.perf_counter() - start


def main(paths):
    import nbformat
    for path in paths or sorted(HERE.glob("*.ipynb")):
        notebook, seconds = execute(path)
        nbformat.write(notebook, path)
        print(f"{Path(path).name}: executed in {seconds:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
