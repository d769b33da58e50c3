"""MNIST-1D: our models beside the paper's table (Greydanus & Kobak 2020, test accuracy).

    python examples/cnn_table.py [--seeds 0,1,2] [--epochs 100] [--rows all] [--json PATH] [--threads N]

Runs examples/train_cnn.py for each row and seed (one process per run, with its defaults unless
--epochs is given, and this command's --threads) and prints mean, range and wall time per run
(interpreter start, data, training and test included) beside the paper's number. The
paper's rows used no batch norm; the "+ BN" rows are ours. With the positions shuffled (one
fixed permutation) the CNN loses its spatial prior and falls towards the MLP, which does not care.
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from helpers import cli, threads

TRAIN_CNN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_cnn.py")

# name -> (train_cnn arguments, the paper's test accuracy or None)
ROWS = {
    "logistic regression": (["--model", "logistic", "--bn", "none"], 0.32),
    "MLP": (["--model", "mlp", "--bn", "none"], 0.68),
    "CNN": (["--model", "cnn", "--bn", "none"], 0.94),
    "CNN + BN (fused)": (["--model", "cnn", "--bn", "fused"], None),
    "CNN + BN (composed)": (["--model", "cnn", "--bn", "composed"], None),
    "MLP, shuffled positions": (["--model", "mlp", "--bn", "none", "--shuffle-positions"], 0.68),
    "CNN, shuffled positions": (["--model", "cnn", "--bn", "none", "--shuffle-positions"], 0.56),
    "CNN + BN, shuffled positions": (["--model", "cnn", "--bn", "fused", "--shuffle-positions"], None),
}


def parse_rows(text):
    if text == "all":
        return list(ROWS)
    chosen = [r.strip() for r in text.split(";")]
    unknown = [r for r in chosen if r not in ROWS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}; choose from {list(ROWS)} (';'-separated)")
    return chosen


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seeds", type=cli.parse_seeds, default="0,1,2", help="seeds per row")
    p.add_argument("--epochs", type=cli.number(int, 1), help="epochs per run (default: train_cnn's)")
    p.add_argument("--rows", type=parse_rows, default="all", help="';'-separated row names, or all")
    p.add_argument("--json", metavar="PATH", help="also write every run's numbers to PATH")
    cli.add_threads(p)
    args = cli.parse(p, argv, files=("json",))
    start, results = time.perf_counter(), {}
    for name in args.rows:
        extra, paper = ROWS[name]
        epochs = [] if args.epochs is None else ["--epochs", str(args.epochs)]
        runs = [{"seed": seed, **run_train_cnn(extra + epochs + ["--seed", str(seed)],
                                                args.threads or threads.DEFAULT)} for seed in args.seeds]
        results[name] = {"paper": paper, "runs": runs}
        print(format_row(name, results[name]), flush=True)
    print(f"\n{len(args.rows)} rows x {len(args.seeds)} seeds in {time.perf_counter() - start:.0f} s "
          f"(seconds per run: wall time of one train_cnn.py process, start-up, data and test included)")
    print("\n" + markdown(results, args.seeds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")
    return results


def run_train_cnn(arguments, thread_count):
    """One ``python examples/train_cnn.py ARGUMENTS`` run: {"test_acc", "seconds"} (wall time).
    Its metrics file's last row carries the test accuracy; a failed run ends this command with
    the run's own error."""
    with tempfile.TemporaryDirectory() as folder:
        metrics = os.path.join(folder, "metrics.jsonl")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, TRAIN_CNN, *arguments, "--quiet", "--threads", str(thread_count),
                               "--metrics", metrics], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"cnn_table.py: train_cnn.py {' '.join(arguments)} failed:\n{done.stderr.strip()}")
        with open(metrics) as f:
            last = json.loads(f.read().splitlines()[-1])
    return {"test_acc": last["test_acc"], "seconds": seconds}


def summary(entry):
    accs = [r["test_acc"] for r in entry["runs"]]
    return statistics.mean(accs), min(accs), max(accs), statistics.mean(r["seconds"] for r in entry["runs"])


def format_row(name, entry):
    mean, low, high, seconds = summary(entry)
    paper = "-" if entry["paper"] is None else f"{entry['paper']:.2f}"
    return f"{name:30} mean {mean:.4f} (range {low:.4f}-{high:.4f}), paper {paper}, {seconds:.1f} s per run"


def markdown(results, seeds):
    lines = [f"| model (MNIST-1D test accuracy) | ours, mean of seeds {','.join(map(str, seeds))} | range | "
             f"paper | s per run |", "|---|---:|---:|---:|---:|"]
    for name, entry in results.items():
        mean, low, high, seconds = summary(entry)
        paper = "-" if entry["paper"] is None else f"{entry['paper']:.2f}"
        lines.append(f"| {name} | {mean:.4f} | {low:.4f}–{high:.4f} | {paper} | {seconds:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    cli.run(main)
