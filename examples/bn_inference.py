"""The moving-average study: which statistics should batch norm use at inference, and why.

    python examples/bn_inference.py [--epochs 10] [--batch-size 64] [--lr 1e-3] [--seed 0]
        [--hidden 128,64] [--val-batch-sizes 1,2,8,64,full]

Trains the MLP of train_mlp.py once and, after every epoch, scores the validation set with
batch norm normalising by four kinds of statistics:
  (1) running: the exponential moving average (momentum 0.1) that eval_mode uses;
  (2) batch: the statistics of the validation batch itself, for several batch sizes;
  (3) population: recomputed over the training set (the original paper's Algorithm 2);
  (4) cumulative: momentum=None, an equal-weight average over every training batch so far.
Nothing here changes the trained model: (2) and (3) work on copies. See docs/batchnorm.md.
"""
import argparse
import copy
import os

import numpy as np

import common
from common import bn_layers, stats_gap  # shared with bn_after_training.py
import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader
from minigrad.nn import functional as F

MOMENTUM = 0.1                      # the EMA's momentum, PyTorch's default
SORTED_SIZE = 32                    # batch size of the "sorted by label" row: ~1 class a batch
TRACED = 3                          # channels of the first BN layer whose statistics are traced
CURVE_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)   # validation batch sizes of the last epoch's curve


# Each method has a key (results are keyed by it) and a label (what the tables print).
def label(key, n_val):
    """"running" -> "(1) running (EMA, momentum 0.1)", "batch 8" -> "(2) batch stats, val batch 8"."""
    kind, _, size = key.partition(" ")
    if kind == "batch":
        return f"(2) batch stats, val batch {size}" + (" (full)" if int(size) == n_val else "")
    if kind == "sorted":
        return f"(2) batch stats, val batch {size}, sorted by label"
    return {"running": f"(1) running (EMA, momentum {MOMENTUM})", "population": "(3) population, train set (Alg. 2)",
            "cumulative": "(4) cumulative (momentum=None)"}[kind]


def column_name(key):
    """Short header for a method: "running", "B=8", "B=32 sorted", "population", ..."""
    kind, _, size = key.partition(" ")
    return {"batch": f"B={size}", "sorted": f"B={size} sorted"}.get(kind, kind)


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


def print_epoch(epoch, train_loss, rows, gaps, identical, n_val):
    print(f"\nepoch {epoch}   (train loss {train_loss:.4f})")
    print(f"  {'statistics batch norm normalises with':48} {'val_acc':>8} {'val_loss':>9}")
    for key, value in rows.items():
        shown = value if isinstance(value, str) else f"{value[0]:>8.4f} {value[1]:>9.4f}"
        print(f"  {label(key, n_val):48} {shown}")
    for name, (d_mean, d_var) in gaps.items():
        print(f"  {name} vs population statistics, worst channel: means {d_mean:.3f} std apart, "
              f"variances {100 * d_var:.1f}% apart")
    print(f"  twin runs, momentum {MOMENTUM} and None: weights {'identical' if identical else 'DIFFERENT'} "
          f"after this epoch")


def print_overview(history):
    """Validation accuracy of every method (columns) after every epoch (rows)."""
    keys = list(history[0]["rows"])
    print("\nValidation accuracy by epoch (B=n: batch statistics of validation batches of n)")
    print("epoch " + " ".join(f"{column_name(key):>11}" for key in keys))
    for h in history:
        cells = ["impossible" if isinstance(h["rows"][k], str) else f"{h['rows'][k][0]:.4f}" for k in keys]
        print(f"{h['epoch']:>5} " + " ".join(f"{c:>11}" for c in cells))


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


def summarise(history, val_sizes, n_val, batches_per_epoch):
    """Closing lines, every claim computed from the numbers in ``history``."""
    rows = history[-1]["rows"]
    valid = {k: v[0] for k, v in rows.items() if not isinstance(v, str)}
    top, bottom = max(valid.values()), min(valid.values())
    lines = [f"After epoch {history[-1]['epoch']}, best {top:.4f}: "
             + ", ".join(label(k, n_val) for k, v in valid.items() if v == top)
             + f"; worst {bottom:.4f}: " + ", ".join(label(k, n_val) for k, v in valid.items() if v == bottom)
             + "."]

    sizes = {s: valid.get(f"batch {s}") for s in val_sizes}
    usable = [s for s in val_sizes if sizes[s] is not None]
    if len(usable) > 1:
        small, large = usable[0], usable[-1]
        lines.append(f"Batch statistics make a prediction depend on the rest of its batch: batches of "
                     f"{small} score {sizes[small]:.4f}, of {large} {sizes[large]:.4f} (a gap of "
                     f"{100 * (sizes[large] - sizes[small]):.1f} points)"
                     + ("; a batch of 1 cannot be normalised at all." if 1 in val_sizes else "."))
    for key, value in valid.items():
        if key.startswith("sorted"):
            lines.append(f"Same statistics, batches of {SORTED_SIZE} sorted by label "
                         f"(mostly one class each): {value:.4f}.")

    run, pop, cum = (np.array([h["rows"][k][0] for h in history]) for k in ("running", "population", "cumulative"))
    left = (1 - MOMENTUM) ** batches_per_epoch   # the initial buffers' weight after epoch 1
    lines.append(f"After epoch 1 the EMA still weighs its initial values (mean 0, variance 1) by "
                 f"{1 - MOMENTUM:g}^{batches_per_epoch} = {100 * left:.1f}%: running {run[0]:.4f} "
                 f"vs population {pop[0]:.4f} (worst-channel variance {100 * history[0]['gaps']['running'][1]:.0f}% off).")
    if len(history) > 1:
        gap = 100 * np.abs(run[1:] - pop[1:])
        d_mean = max(h["gaps"]["running"][0] for h in history[1:])
        lines.append(f"From epoch 2 on, running (EMA) and population statistics give accuracies within "
                     f"{gap.max():.1f} points of each other (mean gap {gap.mean():.2f}), means within "
                     f"{d_mean:.3f} std; the EMA costs no extra pass over the training set.")
        behind = [h["epoch"] for h, c, r in zip(history, cum, run) if c < r]
        lines.append(f"Cumulative average (momentum=None): {cum[0]:.4f} vs EMA {run[0]:.4f} after epoch 1 "
                     f"(its first batch replaces the initial values), {cum[-1]:.4f} vs {run[-1]:.4f} after "
                     f"epoch {len(history)}; below the EMA in {len(behind)} of {len(history)} epochs. "
                     f"It weighs statistics from early, different weights as much as recent ones: at the "
                     f"end its means are {history[-1]['gaps']['cumulative'][0]:.3f} std from the "
                     f"population's, the EMA's {history[-1]['gaps']['running'][0]:.3f}.")
    identical = all(h["identical"] for h in history)
    lines.append("BN momentum never touched training: the twin runs' weights were "
                 + ("identical after every epoch." if identical else "NOT identical (unexpected)."))
    return lines


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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=common.number(int, 1), default=10, help="training epochs")
    p.add_argument("--batch-size", type=common.number(int, 2), default=64,
                   help="training batch size (batch norm needs 2 or more)")
    p.add_argument("--lr", type=common.number(float, above=0), default=1e-3, help="Adam's learning rate")
    p.add_argument("--seed", type=common.number(int, 0), default=0, help="initial weights and shuffling")
    p.add_argument("--hidden", type=common.parse_widths, default=(128, 64), help="hidden widths, comma-separated")
    p.add_argument("--val-batch-sizes", type=parse_sizes, default="1,2,8,64,full",
                   help="validation batch sizes for the batch-statistics rows")
    p.add_argument("--plot", metavar="DIR", help=f"write three figures into DIR (needs matplotlib: "
                                                f"{common.PLOT_HINT})")
    args = p.parse_args(argv)
    common.check_plot_folder(p, args.plot)
    hidden = list(args.hidden)

    data = common.digits_split()
    X_train, y_train, X_val, y_val = data
    val_sizes = sorted({len(y_val) if s == "full" else min(s, len(y_val)) for s in args.val_batch_sizes})
    # Two models from the same initial weights, differing only in BN momentum. Training-mode BN
    # normalises by batch statistics alone, so momentum cannot change the training trajectory:
    # the twin gives the cumulative average (4) of exactly the run we study (checked each epoch).
    mg.manual_seed(args.seed)
    ema = common.build_mlp(hidden, momentum=MOMENTUM)
    mg.manual_seed(args.seed)
    cumulative = common.build_mlp(hidden, momentum=None)
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
    summary = summarise(history, val_sizes, len(y_val), len(loader))
    print("\nSummary")
    for line in summary:
        print("  " + line)
    if args.plot:
        setup = (f"digits (1438 train / 359 validation), MLP {'-'.join(map(str, [64, *hidden, 10]))} with "
                 f"BatchNorm1d, Adam lr {args.lr:g}, batch {args.batch_size}, seed {args.seed}; "
                 f"python examples/bn_inference.py --plot {args.plot}")
        plot_accuracy(history, len(y_val), os.path.join(args.plot, "bn_inference_accuracy.png"), setup)
        plot_statistics(history, len(loader), os.path.join(args.plot, "bn_inference_statistics.png"), setup)
        plot_batch_size(curve, history[-1]["rows"], os.path.join(args.plot, "bn_inference_batch_size.png"), setup)
    return {"history": history, "single_sample": demo, "summary": summary, "curve": curve}


# ------------------------------------------------------------------ the last epoch, and figures
def batch_size_curve(model, data, seed):
    """Validation accuracy with batch statistics for each of CURVE_SIZES (the last epoch)."""
    _, _, X_val, y_val = data
    curve = {size: batch_statistics_score(model, X_val, y_val, size, seed)[0]
             for size in CURVE_SIZES if size <= len(y_val)}
    print("\nAfter the last epoch, batch statistics by validation batch size: "
          + ", ".join(f"B={size} {acc:.4f}" for size, acc in curve.items()))
    return curve


def print_channels(history):
    """What the statistics figure shows: the first BN layer's first channels after each epoch."""
    print(f"\nFirst BatchNorm1d, channels 0-{TRACED - 1}: running (EMA) against population statistics")
    print(f"{'epoch':>5}  {'EMA mean':>24}  {'population mean':>24}  {'EMA var':>24}  {'population var':>24}")
    for h in history:
        (em, ev), (pm, pv) = h["channels"]["running"], h["channels"]["population"]
        cells = [" ".join(f"{v:7.3f}" for v in a) for a in (em, pm, ev, pv)]
        print(f"{h['epoch']:>5}  " + "  ".join(f"{c:>24}" for c in cells))


def plot_accuracy(history, n_val, path, setup):
    """Validation accuracy per epoch for the four kinds of statistics."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    epochs = [h["epoch"] for h in history]
    for key in history[0]["rows"]:
        values = [h["rows"][key] for h in history]
        if any(isinstance(v, str) for v in values):
            continue                                    # a batch of 1: impossible
        ax.plot(epochs, [v[0] for v in values], "o-" if key in ("running", "population", "cumulative") else ".--",
                label=label(key, n_val))
    ax.set_xlabel("epoch")
    ax.set_xticks(epochs)
    ax.set_ylabel("validation accuracy (fraction correct)")
    ax.set_title("Which statistics batch norm normalises with at inference")
    ax.legend(fontsize=7, loc="lower right")
    common.save_figure(fig, path, setup)


def plot_statistics(history, batches_per_epoch, path, setup):
    """The EMA after every batch against the population statistics after every epoch."""
    plt = common.pyplot()
    fig, (ax_mean, ax_var) = plt.subplots(1, 2, figsize=(11, 4.5))
    steps = np.arange(1, sum(len(h["trace"]) for h in history) + 1) / batches_per_epoch   # in epochs
    means = np.array([m for h in history for m, _ in h["trace"]])                       # (steps, TRACED)
    variances = np.array([v for h in history for _, v in h["trace"]])
    epochs = [h["epoch"] for h in history]
    for k in range(TRACED):
        for ax, trace, index in ((ax_mean, means, 0), (ax_var, variances, 1)):
            line, = ax.plot(steps, trace[:, k], lw=1, label=f"channel {k}: EMA (momentum {MOMENTUM})")
            ax.plot(epochs, [h["channels"]["population"][index][k] for h in history], "o",
                    color=line.get_color(), label=f"channel {k}: population (Alg. 2)")
    for ax, name in ((ax_mean, "running mean"), (ax_var, "running variance")):
        for e in epochs[:-1]:
            ax.axvline(e, color="0.85", lw=0.8, zorder=0)
        ax.set_xlabel("training progress (epochs)")
        ax.set_ylabel(f"{name} (pre-activation units)" if name.endswith("mean") else f"{name} (squared units)")
    ax_var.set_yscale("log")
    ax_mean.legend(fontsize=7)
    fig.suptitle("The moving average carries across epochs (grey lines: epoch boundaries, where nothing "
                 "restarts)\nand tracks the population statistics of the current weights", fontsize=11)
    common.save_figure(fig, path, setup)


def plot_batch_size(curve, rows, path, setup):
    """Validation accuracy with batch statistics against the validation batch size."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(curve)
    ax.plot(sizes, [curve[s] for s in sizes], "o-", label="batch statistics of each validation batch")
    for key, style in (("running", "-"), ("population", "--")):
        ax.axhline(rows[key][0], ls=style, color="0.3" if key == "running" else "0.6",
                   label=f"{key} statistics (any batch size, even 1)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("validation batch size (samples)")
    ax.set_ylabel("validation accuracy (fraction correct)")
    ax.set_title("With batch statistics a prediction depends on its batch")
    ax.legend(fontsize=8, loc="lower right")
    common.save_figure(fig, path, setup)


if __name__ == "__main__":
    main()
