"""Part 5, fold: nn.utils.fold_batch_norm merges each Conv1d + BatchNorm1d pair into one Conv1d;
the folded copy equals the original in eval mode, not in training mode, and saves graph nodes and
time. The measurement, its table, the conclusion computed from the table's numbers, and the
figure. The base model is only copied.
"""
import copy
import statistics
import time

import numpy as np

import minigrad as mg
from helpers import plots
from minigrad import nn

from .shared import print_lines

FOLD_REPEATS = 200                        # interleaved timing rounds
FIGURE = "bn_fold.png"



# ====================================================================== 5. fold
def part_fold(base, data, repeats=FOLD_REPEATS):
    """fold_batch_norm: the folded copy against the original in eval mode (float64 and float32) and
    in training mode, graph nodes of one eval forward, and the time of one eval batch of 100."""
    X_test = data["X_test"]
    diffs = {}
    for dtype in ("float64", "float32"):
        original = copy.deepcopy(base).to(dtype)
        with mg.eval_mode():                   # fusion is for eval mode: it refuses training mode
            folded = nn.utils.fold_batch_norm(original)
        x = mg.tensor(X_test.astype(dtype))
        diffs[f"eval, {dtype}"] = max_abs_diff(logits(original, x, training=False), logits(folded, x, training=False))
    # training mode (float32): the original normalises with the test batch's statistics; the
    # folded net has no batch norm left, so it computes what it computes in eval mode
    diffs["training, float32"] = max_abs_diff(logits(original, x, training=True), logits(folded, x, training=True))

    batch = X_test[:100]
    with mg.eval_mode():
        nodes = {name: mg.graph.count_nodes(m(mg.tensor(batch, requires_grad=True)))
                 for name, m in (("original", original), ("folded", folded))}
    times = interleaved_times({"original": original, "folded": folded}, batch, repeats)
    return {"diffs": diffs, "nodes": nodes, "ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
            "ratio": statistics.median(f / o for f, o in zip(times["folded"], times["original"])),
            "repeats": repeats, "layers": (len(original), len(folded))}


def print_fold(r):
    print(f"\n5. fold: nn.utils.fold_batch_norm, each Conv1d + BatchNorm1d pair one Conv1d ({r['layers'][0]} -> "
          f"{r['layers'][1]} layers)")
    print(f"  {'folded vs original on the 1000 test samples, mode, dtype':58} {'max |logit difference|':>22}")
    for name, d in r["diffs"].items():
        note = " (original: batch statistics)" if name.startswith("training") else ""
        print(f"  {name + note:58} {d:>22.3g}")
    print(f"  {'one eval forward of a batch of 100':58} {'original':>10} {'folded':>11}")
    print(f"  {'graph nodes (input requires grad)':58} {r['nodes']['original']:>10} {r['nodes']['folded']:>11}")
    print(f"  {'median ms per batch (no_grad, ' + str(r['repeats']) + ' interleaved rounds)':58} "
          f"{r['ms']['original']:>10.3f} {r['ms']['folded']:>11.3f}")
    return print_lines(fold_conclusion(r))


def fold_conclusion(r):
    d = r["diffs"]
    same = d["eval, float64"] <= 1e-10
    return [f"In eval mode the folded network {'computes the same function' if same else 'DIFFERS'}: logits agree "
            f"to {d['eval, float64']:.1e} in float64 and {d['eval, float32']:.1e} in float32; in training mode "
            f"the original normalises with batch statistics and differs by up to {d['training, float32']:.3g}.",
            f"Folding removes {r['nodes']['original'] - r['nodes']['folded']} of {r['nodes']['original']} graph "
            f"nodes, and an eval batch takes {r['ratio']:.2f} of the time (median of per-round ratios; "
            f"{r['ms']['original']:.3f} -> {r['ms']['folded']:.3f} ms)."]




def logits(model, x, training):
    with mg.no_grad(), (mg.train_mode() if training else mg.eval_mode()):
        return model(x).data


def max_abs_diff(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def interleaved_times(models, batch, repeats):
    """Seconds per eval forward of each model, alternating models within every round (and which
    goes first), so load from other processes hits them alike."""
    times = {name: [] for name in models}
    x = mg.tensor(batch)
    names = list(models)
    with mg.no_grad(), mg.eval_mode():
        for model in models.values():          # warm-up
            model(x)
        for i in range(repeats):
            for name in (names if i % 2 == 0 else names[::-1]):
                t0 = time.perf_counter()
                models[name](x)
                times[name].append(time.perf_counter() - t0)
    return times


def figure_setup(r):
    """The part's setup for the figure's caption, from its numbers."""
    return (f"Timing: median of {r['repeats']} interleaved rounds on the machine that made the figure (a "
            f"timing: it varies from run to run).")


def plot_fold(r, path, text):
    """Top: the differences as dots on a log axis (they span 14 orders of magnitude; a bar's
    length would mean nothing there). Bottom: graph nodes and time, bars from zero."""
    fig = plots.pyplot().figure(figsize=(plots.WIDTH, 7.0), layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=[0.16, 1, 1.15])
    ax_diff = fig.add_subplot(grid[1, :])
    names = list(r["diffs"])[::-1]                     # the first row on top
    for i, name in enumerate(names):
        training = name.startswith("training")
        ax_diff.plot(r["diffs"][name], i, "o", ms=9, color="C3" if training else "C0",
                     label=("training mode: the original normalises with batch statistics" if training
                            else "eval mode: both use the running statistics") if i in (0, len(names) - 1) else None)
        ax_diff.annotate(f"{r['diffs'][name]:.1e}", (r["diffs"][name], i), xytext=(0, 8),
                         textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax_diff.set_xscale("log")
    ax_diff.set_xlim(min(r["diffs"].values()) / 30, max(r["diffs"].values()) * 30)
    ax_diff.set_ylim(-0.6, len(names) - 0.2)
    ax_diff.set_yticks(range(len(names)), names)
    ax_diff.set_xlabel("max |logit difference|, folded vs original (log scale)")
    ax_diff.set_ylabel("mode, dtype")
    ax_diff.set_title("The same function in eval mode, to rounding; not in training mode (1000 test samples)")
    ax_diff.grid(axis="x", alpha=0.3)
    plots.legend_panel(fig.add_subplot(grid[0, :]), *ax_diff.get_legend_handles_labels(), ncol=1)
    for column, (key, unit, title, fmt) in enumerate((
            ("nodes", "graph nodes per eval forward", "Graph of one eval forward", "%d"),
            ("ms", "median ms per eval batch of 100", "Time per eval batch (no_grad)", "%.3f"))):
        ax = fig.add_subplot(grid[2, column])
        values = [r[key]["original"], r[key]["folded"]]
        bars = ax.bar(["original", "folded"], values, color=["C0", "C2"], width=0.6)
        ax.bar_label(bars, fmt=fmt)
        ax.set_ylim(0, max(values) * 1.2)              # bars from zero, on a linear axis
        ax.set_ylabel(unit)
        ax.set_xlabel("model")
        ax.set_title(title)
    fig.suptitle(f"fold_batch_norm: {r['layers'][0]} layers become {r['layers'][1]}; fewer nodes, less time")
    plots.save_figure(fig, path, text)
