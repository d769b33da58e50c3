"""Compare the fused and the composed batch norm: gradients, numerics and cost, side by side;
then BatchRenorm, GroupNorm and LayerNorm the same way (agreement, nodes, bytes, time).

    python examples/compare_bn.py                      # 4x3, 64x128, 256x1024 in float32
    python examples/compare_bn.py 32x16x8 --dtype both --no-affine --json /tmp/cmp.json [--threads N]
    python examples/compare_bn.py 100x32x19 --layers group layer      # --layers with none: BN only

The measurements live in examples/compare/cases.py and compare/layers.py (returning plain
dicts), the tables in compare/report.py; PyTorch, when installed, adds a column of its own
(compare/torch_column.py).
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from compare.cases import compare_case  # noqa: E402  (examples/ is on sys.path: this script's folder)
from compare.layers import layer_case  # noqa: E402
from compare.numbers import jsonable  # noqa: E402
from compare.report import format_case, format_layers  # noqa: E402
from helpers import cli  # noqa: E402


def parse_shape(text):
    """"64x128" -> (64, 128); "8x4x5" -> (8, 4, 5); "8x4x5x5" -> (8, 4, 5, 5) (BatchNorm2d)."""
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3, 4) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape must be NxC, NxCxL or NxCxHxW with positive sizes, got {text!r}")
    if math.prod(shape) // shape[1] < 2:
        raise argparse.ArgumentTypeError(f"training needs 2 or more values per channel, got {text!r}")
    return shape


def case_bytes(shape):
    """A lower bound of what one case allocates, in bytes: float64 copies of the input (inputs,
    upstream gradient, the composed graph's intermediates: about 10) and the folding case's
    layer, C x C weights (times 9 for a 3-wide or 3x3 kernel)."""
    channels = shape[1]
    return 8 * (10 * math.prod(shape) + channels * channels * (1 if len(shape) == 2 else 9))


def main(argv=None):
    """The command line; returns the list of case dicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("shapes", nargs="*", type=parse_shape, default=[(4, 3), (64, 128), (256, 1024)],
                        help="NxC, NxCxL or NxCxHxW (default: 4x3 64x128 256x1024)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32",
                        help="dtype of the agreement and cost sections")
    parser.add_argument("--affine", action=argparse.BooleanOptionalAction, default=True,
                        help="learnable γ and β")
    parser.add_argument("--momentum", type=cli.number(float, 0, 1), default=0.1,
                        help="running-statistics momentum (PyTorch's convention)")
    parser.add_argument("--seed", type=cli.number(int, 0), default=0, help="inputs and upstream gradient")
    parser.add_argument("--steps", type=cli.number(int, 1), default=3,
                        help="training steps before comparing running stats")
    parser.add_argument("--repeats", type=cli.number(int, 1), default=11,
                        help="timing repeats (the median is reported)")
    parser.add_argument("--no-torch", dest="use_torch", action="store_false", default=None,
                        help="skip the PyTorch column even when torch is installed")
    parser.add_argument("--layers", nargs="*", choices=("renorm", "group", "layer"),
                        default=["renorm", "group", "layer"],
                        help="the other normalisations to compare on each shape (affine, seed and "
                             "repeats as for batch norm)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to PATH")
    cli.add_threads(parser)
    args = cli.parse(parser, argv, files=("json",))
    for shape in args.shapes:
        cli.check_memory(parser, f"shape {'x'.join(map(str, shape))}", case_bytes(shape))
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    start, cases, layers = time.perf_counter(), [], []
    for shape in args.shapes:
        for dtype in dtypes:
            cases.append(compare_case(shape, dtype, args.affine, args.momentum, args.seed, args.steps,
                                      args.repeats, args.use_torch))
            print(format_case(cases[-1]), end="\n\n", flush=True)
            if args.layers:
                layers.append([layer_case(kind, shape, dtype, args.seed, args.repeats, args.use_torch)
                               for kind in args.layers])
                print(format_layers(layers[-1]), end="\n\n", flush=True)
    print(f"{len(cases)} case{'s' * (len(cases) != 1)} in {time.perf_counter() - start:.1f} s")
    if args.json:
        options = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w") as f:
            json.dump(jsonable({"schema": "minigrad.compare/1", "options": options, "cases": cases,
                                "layers": [c for row in layers for c in row]}),
                      f, indent=1, allow_nan=False)
        print(f"wrote {args.json}")
    return cases


if __name__ == "__main__":
    cli.run(main)
