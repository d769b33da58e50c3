"""Make every committed figure under docs/figures/, with one command.

    python examples/figures.py [--out docs/figures]

Runs the studies with their defaults and --plot (examples/bn_inference.py, bn_after_training.py),
the CNN example's training curves, and draws the composed and the fused batch-norm graphs with
Graphviz (``apt-get install graphviz``; without ``dot`` those two images are skipped, with a line
saying so). Needs matplotlib (pip install -e ".[plot]"). Takes a few minutes on 2 cores.
"""
import argparse
import os
import shutil
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as in the studies (before numpy loads)

import numpy as np  # noqa: E402

import bn_after_training  # noqa: E402
import bn_inference  # noqa: E402
import common  # noqa: E402
import minigrad as mg  # noqa: E402
import train_cnn  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graphs(out):
    """The graph each batch norm records for a (4, 3) input, as PNGs (needs Graphviz's dot)."""
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
        path = os.path.join(out, f"graph_{name}.png")
        mg.graph.to_image(y, path, names=names, title=f"batch norm, {name}")
        print(f"wrote {path} ({mg.graph.count_nodes(y)} op{'s' * (mg.graph.count_nodes(y) != 1)})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"), help="the folder to write into")
    args = p.parse_args(argv)
    common.check_plot_folder(p, args.out)
    out = os.path.relpath(args.out, ROOT)      # captions name the command as run from the root,
    if not out.startswith(os.pardir):          # not this machine's absolute path
        os.chdir(ROOT)
        args.out = out
    start = time.perf_counter()
    graphs(args.out)
    bn_inference.main(["--plot", args.out])
    bn_after_training.main(["--plot", args.out, "--quiet"])
    train_cnn.main(["--plot", os.path.join(args.out, "train_cnn.png"), "--quiet"])
    print(f"figures written to {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
