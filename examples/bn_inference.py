"""The moving-average study: which statistics should batch norm use at inference, and why.

    python examples/bn_inference.py [--epochs 10] [--batch-size 64] [--lr 1e-3] [--seed 0]
        [--hidden 128,64] [--val-batch-sizes 1,2,8,64,full] [--plot DIR] [--threads N]

Trains the MLP of train_mlp.py once and, after every epoch, scores the validation set with
batch norm normalising by four kinds of statistics:
  (1) running: the exponential moving average (momentum 0.1) that eval_mode uses;
  (2) batch: the statistics of the validation batch itself, for several batch sizes;
  (3) population: recomputed over the training set (the original paper's Algorithm 2);
  (4) cumulative: momentum=None, an equal-weight average over every training batch so far.
Nothing here changes the trained model: (2) and (3) work on copies. See docs/batchnorm.md. The
tables and the summary are written by inference/report.py, the figures by inference/figures.py.
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import copy
import os
import time

import numpy as np

import minigrad as mg
from helpers import cli, models, plots
from helpers.bn_stats import bn_layers, stats_gap
from inference import figures
from inference.report import (MOMENTUM, SORTED_SIZE, TRACED, label, print_channels, print_epoch,
                              print_overview, summarise)
from minigrad import nn
from minigrad.data import DataLoader
from minigrad.nn import functional as F

CURVE_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)   # validation batch sizes of the last epoch's curve


def score(model, batches, training):
    """(accuracy, mean loss) over (X, y) batches; BN uses batch statistics iff ``training``.

    Runs under no_grad. In training mode BN also folds each batch into the model's running
    buffers, so callers pass a copy whenever they use training=True.
    """
    correct, loss_sum, seen = 0, 0.0, 0
    mode = mg.train_mode() if training else mg.eval_mode()
    with mg.no_grad(), mode:
        for xb, yb in batches:
            logits = model(mg.tensor(xb))                  # (B, 64) -> (B, 10)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum").data)
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            seen += len(yb)
    return correct / seen, loss_sum / seen


def batch_statistics_score(model, X, y, batch_size, seed, by_label=False):
    """(2): normalise each validation batch by its own mean and variance.

    The cleanest way that leaves the trained model alone: a deep copy run in training mode
    (under no_grad), where BN normalises by batch statistics; the running buffers it updates
    are the copy's and are thrown away. Batches are a seeded shuffle of the validation set, like
    requests arriving in random order (``by_label``: sorted by label instead, so most batches
    hold one class); DataLoader folds a lone last sample into the batch before it.
    Raises ValueError for batch_size 1: a single value per channel has no variance.
    """
    if by_label:
        order = np.argsort(y, kind="stable")
        batches = DataLoader(X[order], y[order], batch_size, shuffle=False)
    else:
        batches = DataLoader(X, y, batch_size, shuffle=True, seed=seed)
    return score(copy.deepcopy(model), batches, training=True)


def population_statistics(model, X_train, y_train, batch_size, seed):
    """(3): a copy whose running statistics are replaced by Algorithm 2's population statistics,
    from one pass over the training set in training batches (nn.recompute_bn_stats)."""
    population = copy.deepcopy(model)
    nn.recompute_bn_stats(population, DataLoader(X_train, y_train, batch_size, shuffle=True, seed=seed))
    return population


def same_weights(a, b):
    return all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------ one epoch of measurements
def measure(ema, cumulative, data, val_sizes, batch_size, seed):
    """All four methods on the validation set: {method key: (acc, loss) or an error string}."""
    X_train, y_train, X_val, y_val = data
    whole = [(X_val, y_val)]
    rows = {"running": score(ema, whole, training=False)}
    for size in val_sizes:
        try:
            rows[f"batch {size}"] = batch_statistics_score(ema, X_val, y_val, size, seed)
        except ValueError:              # size 1: training-mode BN refuses a single value
            rows[f"batch {size}"] = "impossible (training-mode BN raises ValueError)"
    if SORTED_SIZE < len(y_val):        # the same statistics, batches of (mostly) one class
        rows[f"sorted {SORTED_SIZE}"] = batch_statistics_score(ema, X_val, y_val, SORTED_SIZE, seed,
                                                               by_label=True)
    population = population_statistics(ema, X_train, y_train, batch_size, seed)
    rows["population"] = score(population, whole, training=False)
    rows["cumulative"] = score(cumulative, whole, training=False)
    gaps = {"running": stats_gap(ema, population), "cumulative": stats_gap(cumulative, population)}
    first = lambda model: bn_layers(model)[0]                              # noqa: E731
    channels = {name: (first(m).running_mean[:TRACED].copy(), first(m).running_var[:TRACED].copy())
                for name, m in (("running", ema), ("population", population), ("cumulative", cumulative))}
    return rows, gaps, channels


def single_sample_demo(model, X_val, y_val):
    """One image in eval mode is fine (and scored as in any batch); training mode refuses it."""
    x = X_val[:1]                                                   # (1, 64)
    with mg.no_grad(), mg.eval_mode():
        alone = model(mg.tensor(x)).data                            # (1, 10)
        in_batch = model(mg.tensor(X_val)).data[:1]                 # row 0 of (N, 10)
    demo = {"label": int(y_val[0]), "predicted": int(alone.argmax()),
            "max_diff_vs_batch": float(np.abs(alone - in_batch).max())}
    before = model.state_dict()
    try:
        with mg.no_grad(), mg.train_mode():
            model(mg.tensor(x))
        demo["training_error"] = None
    except ValueError as err:
        demo["training_error"] = str(err)
    after = model.state_dict()
    demo["buffers_unchanged"] = all(np.array_equal(before[k], after[k]) for k in before)
    print(f"\nOne sample (validation image 0, label {demo['label']}):")
    verdict = "right" if demo["predicted"] == demo["label"] else "wrong"
    print(f"  eval mode (running statistics): predicted {demo['predicted']} ({verdict}); its logits "
          f"differ from those it gets inside the full validation batch by at most "
          f"{demo['max_diff_vs_batch']:.1e}")
    print("  training mode (batch statistics): "
          + (f"refused, ValueError: {demo['training_error']}" if demo["training_error"] else "accepted"))
    print(f"  running buffers after the refused call: "
          f"{'unchanged' if demo['buffers_unchanged'] else 'CHANGED'}")
    return demo


# ------------------------------------------------------------------ command line
def parse_sizes(text):
    """"1,2,8,full" -> [1, 2, 8, "full"]: positive batch sizes, "full" for the whole set."""
    try:
        sizes = [s if s == "full" else int(s) for s in text.split(",") if s]
    except ValueError:
        sizes = []
    if not sizes or any(s != "full" and s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes such as 1,2,8,64,full, got {text!r}")
    return sizes


def main(argv=None):
    """Run the study; returns {"history": [per epoch], "single_sample": {...}, "summary": [lines]}."""
    parser = make_parser()
    args = cli.parse(parser, argv, folders=("plot",))
    hidden = list(args.hidden)
    # two twin MLPs, each with float32 weights, gradients and Adam's two moments: a lower bound
    cli.check_memory(parser, f"--hidden {cli.show(args.hidden)}: the two models",
                     2 * 16 * models.mlp_parameters(args.hidden))

    data = models.digits_split()
    X_train, y_train, X_val, y_val = data
    val_sizes = sorted({len(y_val) if s == "full" else min(s, len(y_val)) for s in args.val_batch_sizes})
    # Two models from the same initial weights, differing only in BN momentum. Training-mode BN
    # normalises by batch statistics alone, so momentum cannot change the training trajectory:
    # the twin gives the cumulative average (4) of exactly the run we study (checked each epoch).
    mg.manual_seed(args.seed)
    ema = models.build_mlp(hidden, momentum=MOMENTUM)
    mg.manual_seed(args.seed)
    cumulative = models.build_mlp(hidden, momentum=None)
    twins = [(m, mg.optim.Adam(m.parameters(), lr=args.lr)) for m in (ema, cumulative)]
    loader = DataLoader(X_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    print(f"digits: {len(y_train)} train / {len(y_val)} validation images; MLP "
          f"{'-'.join(map(str, [64, *hidden, 10]))} with BatchNorm1d, Adam lr={args.lr:g}, "
          f"batch {args.batch_size} ({len(loader)} batches per epoch), seed {args.seed}")

    history, trace = [], []                             # trace: the EMA after every training batch
    for epoch in range(1, args.epochs + 1):
        loss_sum = 0.0
        with mg.train_mode():
            for xb, yb in loader:
                losses = []
                for model, optimizer in twins:         # the same step for both twins
                    loss = F.cross_entropy(model(mg.tensor(xb)), yb)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(float(loss.data))
                loss_sum += losses[0] * len(yb)        # the EMA model's loss (the twin's is equal)
                first = bn_layers(ema)[0]              # it never restarts at an epoch boundary
                trace.append((first.running_mean[:TRACED].copy(), first.running_var[:TRACED].copy()))
        rows, gaps, channels = measure(ema, cumulative, data, val_sizes, args.batch_size, args.seed)
        identical = same_weights(ema, cumulative)
        history.append({"epoch": epoch, "train_loss": loss_sum / len(y_train), "rows": rows,
                        "gaps": gaps, "identical": identical, "channels": channels, "trace": trace})
        trace = []
        print_epoch(epoch, history[-1]["train_loss"], rows, gaps, identical, len(y_val))

    print_overview(history)
    curve = batch_size_curve(ema, data, args.seed)
    print_channels(history)
    demo = single_sample_demo(ema, X_val, y_val)
    cost = population_pass_cost(ema, data, args.batch_size, args.seed)
    summary = summarise(history, val_sizes, len(y_val), len(loader))
    print("\nSummary")
    for line in summary:
        print("  " + line)
    if args.plot:
        setup = (f"Digits (bundled): 1438 training / 359 validation images; MLP {'-'.join(map(str, [64, *hidden, 10]))} "
                 f"with BatchNorm1d, Adam lr {args.lr:g}, batch {args.batch_size}, seed {args.seed}, "
                 f"{args.threads or 1} BLAS thread(s).")
        made_by = cli.command("bn_inference.py", argv)
        figures.plot_accuracy(history, {k: label(k, len(y_val)) for k in history[0]["rows"]}, os.path.join(args.plot, "bn_inference_accuracy.png"), setup, made_by)
        figures.plot_statistics(history, len(loader), MOMENTUM, os.path.join(args.plot, "bn_inference_statistics.png"),
                                setup, made_by)
        figures.plot_batch_size(curve, history[-1]["rows"], os.path.join(args.plot, "bn_inference_batch_size.png"),
                                setup, made_by)
    return {"history": history, "single_sample": demo, "summary": summary, "curve": curve,
            "population_pass": cost}


# ------------------------------------------------------------------ the last epoch
def batch_size_curve(model, data, seed):
    """Validation accuracy with batch statistics for each of CURVE_SIZES (the last epoch)."""
    _, _, X_val, y_val = data
    curve = {size: batch_statistics_score(model, X_val, y_val, size, seed)[0]
             for size in CURVE_SIZES if size <= len(y_val)}
    print("\nAfter the last epoch, batch statistics by validation batch size: "
          + ", ".join(f"B={size} {acc:.4f}" for size, acc in curve.items()))
    return curve


def population_pass_cost(model, data, batch_size, seed, repeats=5):
    """Why the EMA, and not population statistics kept fresh during training: what one
    population pass (Algorithm 2 over the training set, forward only) costs in training steps.
    Timed on copies, medians of ``repeats``; prints one line and returns (pass s, step s)."""
    X_train, y_train, _, _ = data
    loader = DataLoader(X_train, y_train, batch_size, shuffle=True, seed=seed)
    passes, steps = [], []
    for _ in range(repeats):
        probe = copy.deepcopy(model)
        start = time.perf_counter()
        nn.recompute_bn_stats(probe, loader)
        passes.append(time.perf_counter() - start)
        optimizer = mg.optim.Adam(probe.parameters(), lr=1e-3)
        start = time.perf_counter()
        with mg.train_mode():
            for xb, yb in loader:
                loss = F.cross_entropy(probe(mg.tensor(xb)), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        steps.append((time.perf_counter() - start) / len(loader))
    one_pass, one_step = float(np.median(passes)), float(np.median(steps))
    print(f"\nA population pass over the {len(y_train)} training images ({len(loader)} forward batches) "
          f"takes {1e3 * one_pass:.1f} ms, {one_pass / one_step:.1f} training steps ({1e3 * one_step:.2f} ms "
          f"each; timings, median of {repeats}): refreshing population statistics before every step "
          f"would make training about {1 + one_pass / one_step:.0f} times slower, and they would be stale "
          f"again after that step's update. The EMA costs nothing extra.")
    return one_pass, one_step


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=cli.number(int, 1), default=10, help="training epochs")
    p.add_argument("--batch-size", type=cli.number(int, 2), default=64,
                   help="training batch size (batch norm needs 2 or more)")
    p.add_argument("--lr", type=cli.number(float, above=0), default=1e-3, help="Adam's learning rate")
    p.add_argument("--seed", type=cli.number(int, 0), default=0, help="initial weights and shuffling")
    p.add_argument("--hidden", type=cli.parse_widths, default=(128, 64), help="hidden widths, comma-separated")
    p.add_argument("--val-batch-sizes", type=parse_sizes, default="1,2,8,64,full",
                   help="validation batch sizes for the batch-statistics rows")
    p.add_argument("--plot", metavar="DIR", help=f"write three figures into DIR (needs matplotlib: "
                                                f"{plots.PLOT_HINT})")
    cli.add_threads(p)
    return p


if __name__ == "__main__":
    cli.run(main)
