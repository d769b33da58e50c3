"""MNIST-1D: our models beside the paper's table (Greydanus & Kobak 2020, test accuracy).

    python examples/cnn_table.py [--seeds 0,1,2] [--epochs 100] [--rows all] [--json PATH]

Runs examples/train_cnn.py for each row and seed (in this process, with its defaults unless
--epochs is given) and prints mean, range and time per run beside the paper's number. The
paper's rows used no batch norm; the "+ BN" rows are ours. With the positions shuffled (one
fixed permutation) the CNN loses its spatial prior and falls towards the MLP, which does not care.
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as in train_cnn.py (before numpy loads)

import common  # noqa: E402
import train_cnn  # noqa: E402

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


def parse_seeds(text):
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds >= 0 such as 0,1,2, got {text!r}")
    return seeds


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
    p.add_argument("--seeds", type=parse_seeds, default="0,1,2", help="seeds per row")
    p.add_argument("--epochs", type=common.number(int, 1), help="epochs per run (default: train_cnn's)")
    p.add_argument("--rows", type=parse_rows, default="all", help="';'-separated row names, or all")
    p.add_argument("--json", metavar="PATH", help="also write every run's numbers to PATH")
    args = p.parse_args(argv)
    common.check_output_paths(p, args, ("json",))
    start, results = time.perf_counter(), {}
    for name in args.rows:
        extra, paper = ROWS[name]
        runs = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            epochs = [] if args.epochs is None else ["--epochs", str(args.epochs)]
            out = train_cnn.main(extra + epochs + ["--seed", str(seed), "--quiet"])
            runs.append({"seed": seed, "test_acc": out["test_acc"], "seconds": time.perf_counter() - t0})
        results[name] = {"paper": paper, "runs": runs}
        print(format_row(name, results[name]), flush=True)
    print(f"\n{len(args.rows)} rows x {len(args.seeds)} seeds in {time.perf_counter() - start:.0f} s "
          f"(seconds per run: wall time of train_cnn.main, data loading and test included)")
    print("\n" + markdown(results, args.seeds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")
    return results


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
    main()
