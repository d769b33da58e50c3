"""When batches are small: batch norm, batch renorm, group norm, layer norm and none, on MNIST-1D.

Trains MNIST-1D's CNN with each normalisation, its layers seeing batches of 2 to 128 samples or
batches of 2 classes only (non-i.i.d.), and compares test accuracy, train/eval gap and time.

    python examples/small_batches.py [--seeds 0,1,2] [--epochs N] [--plot DIR] [--quick] [--quiet]
        [--threads N]

The design is Ioffe's (Batch Renormalization, 2017, Section 4): every optimizer step averages the
gradient over the same STEP = 128 samples, in the same order for every run, with the same
learning rate; only the batches the normalisation layers see change. The step's samples go
through the model in normalisation batches of b = 2, 4, 8, 32 or 128 (each a forward, a loss
weighted by its share of the step and a backward; the gradients add up), or, non-i.i.d., grouped
by class: all the step's samples of 2 classes form one batch (about 26 samples, 2 classes only).
So every run makes the same steps on the same samples and only the statistics differ: the same
epochs are the same steps and samples, and no learning rate needs rescaling. GroupNorm,
LayerNorm and no normalisation are per sample: b changes nothing in them but the order of float
additions. BatchRenorm runs twice: with PyTorch's momentum 0.1, and with 0.01 (see ROWS).

For each normalisation, condition and seed: the test accuracy in eval mode (running statistics),
its gap to the training-mode accuracy on test batches composed as the training batches were,
and the training time per epoch. The model is train_cnn.py's CNN (helpers/models.py: three
Conv1d of 25 channels, each followed by the normalisation and ReLU, then Linear(125, 10)), AdamW
lr 1e-2 on a cosine over the epochs; BatchRenorm's clip bounds follow models.renorm_bounds.
The parts live in examples/batches/ (orders, scoring, the report, the figure).
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import os
import time

import numpy as np

import minigrad as mg
from batches import figure, orders, report
from batches.score import score
from helpers import cli, models, plots, progress
from minigrad.nn import functional as F

STEP, LR = 128, 1e-2                        # samples per optimizer step; AdamW's learning rate
SIZES = (2, 4, 8, 32, 128)                  # normalisation batches, i.i.d.
# The table's rows: (norm, the running statistics' momentum). PyTorch's momentum 0.1 averages the
# last ~10 normalisation batches (20 samples at b = 2), which BatchRenorm then normalises with in
# training; the row with 0.01 (~100 batches) shows what steadier running statistics change.
ROWS = {"batch": ("batch", 0.1), "renorm": ("renorm", 0.1), "renorm-0.01": ("renorm", 0.01),
        "group": ("group", None), "layer": ("layer", None), "none": ("none", None)}
NON_IID = (None, 2)                         # each step's samples grouped 2 classes to a batch
CONDITIONS = tuple((size, None) for size in SIZES) + (NON_IID,)   # (size, classes or None)
EPOCHS, SEEDS = 10, (0, 1, 2)
QUICK = {"epochs": 1, "seeds": (0,), "samples": 512, "sizes": (4, 32)}   # --quick: a smoke run


def train(row, size, classes, seed, epochs, X, y, quiet=True):
    """Train the CNN with ROWS[row]'s normalisation for ``epochs``, each optimizer step on STEP
    samples that the normalisation layers see in batches of ``size`` (or ``classes`` classes to a
    batch). Returns (model, {"steps": optimizer steps, "batch": the normalisation batches' mean size,
    "seconds": seconds of training per epoch})."""
    norm, momentum = ROWS[row]
    mg.manual_seed(seed)                                   # the same initial weights for every run
    model = models.mnist1d_cnn("fused", norm=norm, momentum=momentum)
    optimizer = mg.optim.AdamW(model.parameters(), lr=LR)  # PyTorch's weight_decay 1e-2
    steps = epochs * len(orders.split(np.arange(len(y)), STEP))
    step, config, batches = 0, {"schedule": "cosine", "lr": LR, "epochs": epochs}, 0
    start = time.perf_counter()
    with mg.train_mode(), progress.run_bar(epochs, f"{row}, {size or classes}", quiet) as bar:
        for epoch in range(1, epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = models.learning_rate(config, epoch)
            for parts in orders.steps(y, STEP, size, classes, seed, epoch - 1):   # one optimizer step
                if norm == "renorm":                       # BatchRenorm: relax its clip bounds
                    models.renorm_bounds(model, step, steps)
                optimizer.zero_grad()
                n = sum(len(part) for part in parts)       # STEP, but at the epoch's end
                for part in parts:                         # what one normalisation batch sees
                    logits = model(mg.tensor(X[part]))     # (b, 1, 40) -> (b, 10)
                    loss = F.cross_entropy(logits, y[part]) * (len(part) / n)
                    loss.backward()                        # adds this part's share of the step's mean
                optimizer.step()
                batches += len(parts)
                step += 1
            bar.update(1)
    seconds = (time.perf_counter() - start) / epochs
    return model, {"steps": steps, "batch": epochs * len(y) / batches, "seconds": seconds}


def run(data, rows, conditions, seeds, epochs, quiet=True):
    """Every (row, condition, seed): {row: {condition: [one dict per seed]}}, each dict train()'s
    numbers and score()'s."""
    results = {row: {condition: [] for condition in conditions} for row in rows}
    for seed in seeds:
        for row in rows:
            for size, classes in conditions:
                model, numbers = train(row, size, classes, seed, epochs, data["X_train"], data["y_train"], quiet)
                parts = [part for step in orders.steps(data["y_test"], STEP, size, classes, seed, 0)
                         for part in step]                 # the test set, batched as in training
                results[row][(size, classes)].append({**numbers, **score(model, data["X_test"], data["y_test"], parts)})
    return results


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=cli.parse_seeds, metavar="0,1,2",
                   help=f"initial weights and batch orders, one run per seed (default "
                        f"{cli.show(SEEDS)}; --quick: {cli.show(QUICK['seeds'])})")
    p.add_argument("--epochs", type=cli.number(int, 1),
                   help=f"epochs of every run, the same steps and samples for every batch size "
                        f"(default {EPOCHS}; --quick: {QUICK['epochs']})")
    p.add_argument("--plot", metavar="DIR", default=None,
                   help=f"write {figure.FIGURE} into this existing folder (needs matplotlib: {plots.PLOT_HINT})")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke test: {QUICK['samples']} training samples, batches of "
                        f"{' and '.join(map(str, QUICK['sizes']))} and by class")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_threads(p)
    return p


def main(argv=None):
    """Run the study; returns {"config", "results", "conclusion", "seconds"}."""
    parser = make_parser()
    args = cli.parse(parser, argv, folders=("plot",))      # before any work
    X_train, y_train, _, _, X_test, y_test = models.load_data("mnist1d", "cnn", False)
    defaults = QUICK if args.quick else {"seeds": SEEDS, "epochs": EPOCHS}
    seeds = tuple(args.seeds or defaults["seeds"])
    epochs = args.epochs or defaults["epochs"]
    conditions = CONDITIONS
    if args.quick:
        conditions = tuple((size, None) for size in QUICK["sizes"]) + (NON_IID,)
        X_train, y_train = X_train[:QUICK["samples"]], y_train[:QUICK["samples"]]
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    config = {"seeds": seeds, "epochs": epochs, "conditions": conditions, "step": STEP, "lr": LR,
              "n_train": len(y_train), "n_test": len(y_test), "threads": args.threads or 1,
              "quick": args.quick}
    print(f"MNIST-1D: {len(y_train)} train / {len(y_test)} test; train_cnn.py's CNN, AdamW lr {LR:g} "
          f"cosine over {epochs} epoch(s), {STEP} samples per step, seeds {cli.show(seeds)}")
    start = time.perf_counter()
    results = run(data, tuple(ROWS), conditions, seeds, epochs, args.quiet)
    seconds = time.perf_counter() - start
    conclusion = report.print_report(results, config)
    print(f"\n{len(seeds) * len(ROWS) * len(conditions)} runs in {seconds:.0f} s")
    if args.plot is not None:
        figure.plot(results, config, os.path.join(args.plot, figure.FIGURE),
                    figure.caption(results, config, cli.command("small_batches.py", argv)))
    return {"config": config, "results": results, "conclusion": conclusion, "seconds": seconds}


if __name__ == "__main__":
    cli.run(main)
