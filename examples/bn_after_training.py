"""After training: what practitioners do with batch norm's statistics, measured on MNIST-1D.

    python examples/bn_after_training.py [--part all|estimators|average|small-batch|finetune|fold]
        [--seed 0] [--epochs 30] [--plot DIR] [--quiet] [--threads N]

Training-mode batch norm normalises with the batch's statistics and keeps an exponential moving
average (EMA) of them, running = (1 - momentum)·running + momentum·batch (momentum 0.1); eval
mode normalises with that average. The BN paper instead recomputes population statistics once
training is over (its Algorithm 2). Five parts, each a table, a conclusion computed from the
table's numbers, and with --plot one PNG:

  estimators   the EMA against population statistics recomputed by nn.recompute_bn_stats, the
               paper's estimator and PreciseBN's pooled one, and how both depend on the size of
               the recalibration batches;
  average      averaging two checkpoints of one run averages their running statistics too, which
               are not the statistics of the averaged network: how much recalibrating them matters;
  small-batch  training with batches of 2 to 128: batch statistics, EMA and population statistics
               at inference (the EMA's known weakness at small batch sizes);
  finetune     fine-tuning on shifted data with batches of 4: BN updating, BN frozen
               (nn.utils.freeze_batch_norm), BN recalibrated on the new data and then frozen;
  fold         nn.utils.fold_batch_norm: equal in eval mode, not in training mode, and what it saves.

The CNN is train_cnn.py's (three Conv1d + BatchNorm1d + ReLU, Linear(125, 10); helpers/models.py),
trained with AdamW lr 1e-2 on a cosine schedule, batch 100. ``--part all`` trains one base model and gives every part
but small-batch (which trains its own, from scratch) a copy of it; no part changes another's model.

The parts live in examples/after_training/, one module each (measurement, table, conclusion,
figure), with the helpers they share in after_training/shared.py; this file is the command line.
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import copy
import os
import time

import minigrad as mg
from after_training import average, estimators, finetune, fold, small_batch
from after_training.shared import BATCH, LR, MOMENTUM, caption, fit, test_accuracy
from helpers import cli, models, plots

PARTS = ("estimators", "average", "small-batch", "finetune", "fold")


def train_base(data, epochs, seed, quiet=True):
    """The one model most parts start from: seed's initial weights, ``epochs`` of AdamW on the
    cosine schedule. Returns (model, snapshots): copies of (model, optimizer) after the epochs
    part 2 averages with the end (``average.checkpoint_epochs``)."""
    mg.manual_seed(seed)
    model = models.build_model("mnist1d", "cnn", "fused")
    optimizer = mg.optim.AdamW(model.parameters(), lr=LR)
    keep, snapshots = average.checkpoint_epochs(epochs), {}

    def snapshot(epoch):
        if epoch in keep:
            snapshots[epoch] = copy.deepcopy((model, optimizer))
    fit(model, optimizer, data["X_train"], data["y_train"], BATCH, epochs, seed, "base model", quiet,
        after_epoch=snapshot)
    return model, snapshots


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--part", type=cli.choice("all", *PARTS), default="all",
                   help="which part to run: all, " + ", ".join(PARTS))
    p.add_argument("--seed", type=cli.number(int, 0), default=0, help="initial weights and shuffling")
    p.add_argument("--epochs", type=cli.number(int, 2), default=30,
                   help="epochs of the base model (parts 1, 2, 4, 5); small-batch trains its own, "
                        f"{small_batch.SMALL_EPOCHS} epochs per batch size")
    p.add_argument("--plot", metavar="DIR", default=None,
                   help=f"write one PNG per part into this existing folder (needs matplotlib: {plots.PLOT_HINT})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_threads(p)
    return p


# part -> its table (printing it returns the conclusion) and its figure: (file name, plot, caption setup)
PRINTERS = {"estimators": estimators.print_estimators, "average": average.print_average,
            "small-batch": small_batch.print_small_batch, "finetune": finetune.print_finetune,
            "fold": fold.print_fold}
FIGURES = {"estimators": (estimators.FIGURE, estimators.plot_estimators, estimators.figure_setup),
           "average": (average.FIGURE, average.plot_average, average.figure_setup),
           "small-batch": (small_batch.FIGURE, small_batch.plot_small_batch, small_batch.figure_setup),
           "finetune": (finetune.FIGURE, finetune.plot_finetune, finetune.figure_setup),
           "fold": (fold.FIGURE, fold.plot_fold, fold.figure_setup)}


def main(argv=None):
    """Run the study; returns {"config", "base_test_acc", part: {its numbers, "conclusion"}, "seconds"}."""
    parser = make_parser()
    args = cli.parse(parser, argv, folders=("plot",))      # before any work
    parts = PARTS if args.part == "all" else (args.part,)
    X_train, y_train, _, _, X_test, y_test = models.load_data("mnist1d", "cnn", False)
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    result = {"config": {"part": args.part, "seed": args.seed, "epochs": args.epochs}, "seconds": {}}
    print(f"MNIST-1D: {len(y_train)} train / {len(y_test)} test; train_cnn.py's CNN with BatchNorm1d "
          f"(momentum {MOMENTUM}), AdamW lr {LR:g} cosine, batch {BATCH}, seed {args.seed}")
    start = time.perf_counter()
    if set(parts) - {"small-batch"}:
        t0 = time.perf_counter()
        base, snapshots = train_base(data, args.epochs, args.seed, args.quiet)
        result["seconds"]["base"] = time.perf_counter() - t0
        result["base_test_acc"] = test_accuracy(base, X_test, y_test)
        print(f"base model: {args.epochs} epochs in {result['seconds']['base']:.1f} s, test accuracy "
              f"{result['base_test_acc']:.4f} (running statistics)")
    for part in parts:
        t0 = time.perf_counter()
        if part == "estimators":
            numbers = estimators.part_estimators(base, data, args.seed, estimators.RECAL_SIZES)
        elif part == "average":
            numbers = average.part_average(base, snapshots, data, args.epochs, args.seed, args.quiet)
        elif part == "small-batch":       # trains its own models, from scratch
            numbers = small_batch.part_small_batch(data, args.seed, small_batch.SMALL_SIZES,
                                                   small_batch.SMALL_SAMPLES, small_batch.SMALL_EPOCHS, args.quiet)
        elif part == "finetune":
            numbers = finetune.part_finetune(base, data, args.seed, finetune.FT_SAMPLES, finetune.FT_EPOCHS,
                                             finetune.FT_BATCH, finetune.FT_LR, args.quiet)
        else:
            numbers = fold.part_fold(base, data, fold.FOLD_REPEATS)
        numbers["conclusion"] = PRINTERS[part](numbers)
        result[part] = numbers
        if args.plot is not None:
            name, plot, setup = FIGURES[part]
            plot(numbers, os.path.join(args.plot, name), caption(args, data, part, setup(numbers)))
        result["seconds"][part] = time.perf_counter() - t0
    result["seconds"]["total"] = time.perf_counter() - start
    print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    return result


if __name__ == "__main__":
    cli.run(main)
