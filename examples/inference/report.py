"""The study's words: each method's label, the per-epoch tables, the overview, the traced channels
and the closing summary, every claim computed from the numbers it is given (bn_inference.py
measures; nothing is measured here).
"""
import numpy as np

MOMENTUM = 0.1                      # the EMA's momentum, PyTorch's default
SORTED_SIZE = 32                    # batch size of the "sorted by label" row: ~1 class a batch
TRACED = 3                          # channels of the first BN layer whose statistics are traced


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


def print_channels(history):
    """What the statistics figure shows: the first BN layer's first channels after each epoch."""
    print(f"\nFirst BatchNorm1d, channels 0-{TRACED - 1}: running (EMA) against population statistics")
    print(f"{'epoch':>5}  {'EMA mean':>24}  {'population mean':>24}  {'EMA var':>24}  {'population var':>24}")
    for h in history:
        (em, ev), (pm, pv) = h["channels"]["running"], h["channels"]["population"]
        cells = [" ".join(f"{v:7.3f}" for v in a) for a in (em, pm, ev, pv)]
        print(f"{h['epoch']:>5}  " + "  ".join(f"{c:>24}" for c in cells))
