"""Make every committed figure under docs/figures/, with one command.

    python examples/figures.py [--out docs/figures] [--threads N]

Runs each study as its own command with --plot (python examples/bn_inference.py,
bn_after_training.py, train_cnn.py, small_batches.py, and bn_distributed.py, which launches
mpiexec itself: without mpi4py it is skipped, with a line saying so), so every figure's caption
names the command that made it, with one BLAS thread (or --threads), and draws the composed and
the fused batch-norm graphs with Graphviz (``apt-get install graphviz``; without ``dot`` those two
are skipped, with a line saying so). Needs matplotlib (pip install -e ".[plot]"). Takes about
twelve minutes on 2 cores, eight of them small_batches.py's 108 training runs.
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

import minigrad as mg
from helpers import cli, plots
from minigrad.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graphs(out):
    """The graph each batch norm records for a (4, 3) input, with what each op saves for backward,
    as PNGs (needs Graphviz's dot)."""
    if shutil.which("dot") is None:
        print("skipped the graph images: Graphviz's dot is not installed (apt-get install graphviz)")
        return
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    weight = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    bias = mg.tensor(np.zeros(3, np.float32), requires_grad=True)
    names = {"x": x, "weight": weight, "bias": bias}
    for name, bn in (("composed", F.batch_norm_composed), ("fused", F.batch_norm_fused)):
        y = bn(x, weight, bias)[0]
        nodes, saved = mg.graph.count_nodes(y), mg.graph.saved_bytes(y)
        path = os.path.join(out, f"graph_{name}.png")
        mg.graph.to_image(y, path, names=names,
                          title=f"Batch norm, {name}: y = γ (x - mean) / sqrt(var + eps) + β, x of shape (4, 3)\n"
                                f"{nodes} op{'s' * (nodes != 1)}, {saved} B saved for backward "
                                f"(python examples/figures.py)")
        print(f"wrote {path} ({nodes} op{'s' * (nodes != 1)}, {saved} B saved for backward)")


def have_mpi():
    """Whether mpi4py and an mpiexec are installed (bn_distributed.py launches mpiexec)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return bool(shutil.which("mpiexec") or os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec")))


def study(script, *arguments):
    """Run ``python examples/SCRIPT ARGUMENTS`` from the repository root, its output shown as it
    comes; a failure ends this command with the study's exit code."""
    print(f"\n$ python examples/{script} {' '.join(arguments)}", flush=True)
    done = subprocess.run([sys.executable, os.path.join("examples", script), *arguments], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"figures.py: examples/{script} failed (exit {done.returncode})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"), help="the folder to write into")
    cli.add_threads(p)
    args = cli.parse(p, argv, folders=("out",))
    if not plots.have_matplotlib():
        p.error(f"figures.py needs matplotlib ({plots.PLOT_HINT})")
    out = os.path.relpath(os.path.abspath(args.out), ROOT)   # captions name the command as run from
    if out.startswith(os.pardir):                             # the root, not this machine's path
        out = os.path.abspath(args.out)
    more = [] if args.threads is None else ["--threads", str(args.threads)]   # default: one, as here
    start = time.perf_counter()
    graphs(os.path.join(ROOT, out))
    study("bn_inference.py", "--plot", out, *more)
    study("bn_after_training.py", "--plot", out, "--quiet", *more)
    study("train_cnn.py", "--plot", os.path.join(out, "train_cnn.png"), "--quiet", *more)
    study("small_batches.py", "--plot", out, "--quiet", *more)
    if have_mpi():
        study("bn_distributed.py", "--plot", out, "--quiet", *more)
    else:
        print('\nskipped bn_distributed.png: it needs mpiexec and mpi4py (pip install -e ".[dist]")')
    print(f"\nfigures written to {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    cli.run(main)
