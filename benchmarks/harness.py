"""What every benchmark shares: thread pinning, the common flags, the header, the interleaved
timer, medians of ratios, markdown tables and JSON output.

Order matters: BLAS libraries read their thread variables once, when numpy loads, so a script
calls ``parse`` (which pins the threads) before it imports numpy, torch or minigrad. This module
therefore imports none of them at the top.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def parse(doc, argv=None, add_arguments=None, budget=None, torch=True):
    """Parse a benchmark's command line with the flags every benchmark has, then pin threads.

    Common flags: --threads (default 1), --json PATH, and --no-torch (when ``torch``) and
    --budget SECONDS (when ``budget`` is a default). ``add_arguments(parser)`` adds the script's own.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    if budget is not None:
        parser.add_argument("--budget", type=float, default=budget,
                            help=f"seconds of timed rounds per case (default {budget:g})")
    if torch:
        parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    limit_threads(args.threads)
    return args


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


def load_torch():
    """The torch module, or None when it is not installed (PyTorch is optional)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def start(script, args):
    """What every benchmark prints first: the command and the machine. Sets torch's thread count.
    Returns the machine description (for the JSON output)."""
    torch = load_torch()
    if torch is not None:
        torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    print(f"# {script}: {' '.join(['python', f'benchmarks/{script}.py'] + sys.argv[1:])}")
    print(f"# machine: {describe_machine(info)}\n")
    return info


def use_torch(args):
    """torch if installed and not left out with --no-torch, else None."""
    return None if getattr(args, "no_torch", False) else load_torch()


def write_json(args, results):
    """Write ``results`` to --json PATH, if given."""
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")


# --------------------------------------------------------------------------- timing
def interleaved(fns, budget, warmup=0.5, block_seconds=0.02, min_rounds=15, clock=time.perf_counter):
    """Time each callable in ``fns`` (name -> fn) round-robin until ``budget`` seconds pass.

    Warm-up for ``warmup`` seconds each, then rounds: every fn runs one block of ``block``
    calls (sized to about ``block_seconds``), the order rotating each round so no fn always
    follows the same neighbour. Returns name -> list of seconds per call, one per round, as
    ``clock`` measures them (wall time; ab_step.py may pass a CPU clock).
    """
    names = list(fns)
    per_call = {}
    for name in names:
        calls, start = 0, clock()
        while calls < 3 or clock() - start < warmup:
            fns[name]()
            calls += 1
        per_call[name] = (clock() - start) / calls
    blocks = {name: max(1, round(block_seconds / per_call[name])) for name in names}
    round_seconds = sum(blocks[n] * per_call[n] for n in names)
    rounds = max(min_rounds, int(budget / round_seconds))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, block = fns[name], blocks[name]
            start = clock()
            for _ in range(block):
                fn()
            times[name].append((clock() - start) / block)
    return times


def median_ratio(times, a, b):
    """Median over rounds of time[a] / time[b] (the two ran in the same round)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def median(values):
    return statistics.median(values)


# --------------------------------------------------------------------------- reporting
def machine_info(threads):
    import minigrad
    torch = load_torch()
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy as np
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: no dict mode
        blas = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "torch": None if torch is None else torch.__version__, "minigrad": minigrad.__version__}


def describe_machine(info):
    return (f"{info['cpu']} ({info['cores']} cores), {info['threads']} BLAS thread(s); "
            f"Python {info['python']}, numpy {info['numpy']} ({info['blas']}), "
            f"torch {info['torch'] or 'not installed'}; {info['platform']}")


def table(header, rows, labels=1):
    """A GitHub-markdown table: the first ``labels`` columns left-aligned, numbers right-aligned."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i < labels else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ("-" if i < labels else ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
