"""Part 2, average: averaging two checkpoints of one run averages their running statistics too,
which are not the statistics of the averaged network; how much recalibrating them matters. The
measurement, its table, the conclusion computed from the table's numbers, and the figure.
checkpoint_epochs says which checkpoints the base model's training keeps for this part.
"""
import copy

from helpers import plots
from helpers.bn_stats import stats_gap_per_layer

from .shared import BATCH, RECAL_BATCH, fit, print_lines, recalibrated, samples, test_accuracy

AVERAGE_FRACTIONS = (0.1, 0.2, 1 / 3, 0.5, 2 / 3, 5 / 6)   # the checkpoints, as parts of the run
FIGURE = "bn_average.png"


def checkpoint_epochs(epochs):
    """The epochs whose checkpoints part 2 averages with the last one: AVERAGE_FRACTIONS of the
    run (at least epoch 1, before the end), always including the middle, epochs // 2."""
    picked = {min(epochs - 1, max(1, round(f * epochs))) for f in AVERAGE_FRACTIONS}
    return sorted(picked | {max(1, epochs // 2)})


def part_average(base, snapshots, data, epochs, seed, quiet=True):
    """Average two checkpoints of ONE run, weights and running statistics alike, and score the
    average with those averaged statistics, then recalibrated. Pairs: the end (epoch E) with an
    earlier epoch of the same run, and the end with a fork of the run at E/2 trained on to E with
    another shuffling seed (two runs from a shared checkpoint)."""
    X_train, y_train, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    half = max(1, epochs // 2)
    fork, fork_optimizer = copy.deepcopy(snapshots[half])
    fit(fork, fork_optimizer, X_train, y_train, BATCH, epochs, seed + 1, "fork", quiet, start=half)
    pairs = {f"epoch {e}": snapshots[e][0] for e in sorted(snapshots)}
    pairs[f"fork at {half}"] = fork
    rows = {}
    for name, other in pairs.items():
        averaged = average_checkpoints(other, base)
        pooled = recalibrated(averaged, X_train, y_train, RECAL_BATCH, "pooled", seed)
        rows[name] = {
            "A": test_accuracy(other, X_test, y_test), "B": test_accuracy(base, X_test, y_test),
            "averaged stats": test_accuracy(averaged, X_test, y_test),
            "recalibrated, paper": test_accuracy(recalibrated(averaged, X_train, y_train, RECAL_BATCH, "paper", seed),
                                                 X_test, y_test),
            "recalibrated, pooled": test_accuracy(pooled, X_test, y_test),
            "gap": stats_gap_per_layer(averaged, pooled)}   # per layer: (mean gap in std, variance gap)
    return {"rows": rows, "epochs": epochs, "half": half, "checkpoints": sorted(snapshots)}


AVERAGE_COLUMNS = ("A", "B", "averaged stats", "recalibrated, paper", "recalibrated, pooled")
AVERAGE_HEADERS = {"A": "A alone", "B": "B alone", "averaged stats": "avg, averaged stats",
                   "recalibrated, paper": "avg, recal. paper", "recalibrated, pooled": "avg, recal. pooled"}


def print_average(r):
    print(f"\n2. average: checkpoint A averaged with B = the end of the run (epoch {r['epochs']}), weights and "
          f"running statistics alike")
    print(f"  test accuracy; 'averaged stats': the mean of A's and B's running statistics; 'recalibrated': "
          f"recomputed for the averaged weights (training set, batches of {RECAL_BATCH})")
    print(f"  'fork at {r['half']}': a second run from the epoch-{r['half']} checkpoint to epoch {r['epochs']}, "
          f"shuffled with seed + 1")
    print(f"  {'checkpoint A':>12}" + "".join(f" {AVERAGE_HEADERS[c]:>20}" for c in AVERAGE_COLUMNS)
          + f" {'avg stats off (var)':>20}")
    for name, row in r["rows"].items():
        print(f"  {name:>12}" + "".join(f" {row[c]:>20.4f}" for c in AVERAGE_COLUMNS)
              + f" {100 * max(v for _, v in row['gap']):>19.1f}%")
    print("  (last column: worst channel |variance ratio - 1| of the averaged statistics against the averaged "
          "network's own, pooled)")
    return print_lines(average_conclusion(r))


def average_conclusion(r):
    rows = r["rows"]
    rescue = {n: row["recalibrated, pooled"] - row["averaged stats"] for n, row in rows.items()}
    best = max(rescue, key=rescue.get)
    beats = [f"{n} (by {samples(row['recalibrated, pooled'] - max(row['A'], row['B']))} test samples)"
             for n, row in rows.items() if row["recalibrated, pooled"] > max(row["A"], row["B"])]
    fork = rows[f"fork at {r['half']}"]
    return [f"Recalibrating the average changes its accuracy by "
            + ", ".join(f"{100 * v:+.1f}" for v in rescue.values())
            + f" points (A = {', '.join(rescue)}); most for {best} ({samples(rescue[best])} test samples).",
            f"The averaged running statistics against the averaged network's own (worst-channel variance gap): "
            + ", ".join(f"{n} {100 * max(v for _, v in row['gap']):.0f}%" for n, row in rows.items()) + ".",
            f"The recalibrated average beats both of its checkpoints for: {', '.join(beats) if beats else 'none'}; "
            f"the fork pair: {fork['A']:.4f} and {fork['B']:.4f} alone, {fork['averaged stats']:.4f} averaged, "
            f"{fork['recalibrated, pooled']:.4f} recalibrated."]


def average_checkpoints(a, b):
    """A model whose every parameter and floating-point buffer (running statistics) is the mean of
    a's and b's: what weight averaging does to a network that carries its statistics along."""
    averaged = copy.deepcopy(a)
    sa, sb = a.state_dict(), b.state_dict()
    averaged.load_state_dict({k: (sa[k] + sb[k]) / 2 if sa[k].dtype.kind == "f" else sa[k] for k in sa})
    return averaged


def figure_setup(r):
    """The part's setup for the figure's caption, from its numbers."""
    return (f"Top: checkpoint A (epoch 3, 6, ...) of the run averaged with B, its end (epoch {r['epochs']}), "
            f"weights and running statistics alike, scored with the averaged statistics or with statistics "
            f"recalibrated on the training set (batches of {RECAL_BATCH}). Bottom: the same five models for A = a "
            f"second run forked from the epoch-{r['half']} checkpoint and trained to epoch {r['epochs']} with "
            f"shuffling seed + 1.")


def plot_average(r, path, text):
    """Top: test accuracy of each average of an earlier checkpoint with the end, by its epoch.
    Bottom: the fork pair (a second run from the middle checkpoint), as points: the five models
    lie within a few test samples, which bars from zero would hide and bars from 0.9 exaggerate."""
    fig, (legend, ax, ax_fork) = plots.figure(3, 1, height=7.6, gridspec_kw={"height_ratios": [0.3, 1.25, 0.9]})
    labels = {"A": "A alone", "B": f"B alone (epoch {r['epochs']}, the end)",
              "averaged stats": "average, averaged statistics", "recalibrated, paper": "average, recalibrated (paper)",
              "recalibrated, pooled": "average, recalibrated (pooled)"}
    styles = {"A": "o:", "B": "-", "averaged stats": "s-", "recalibrated, paper": "^-", "recalibrated, pooled": "v--"}
    epochs = r["checkpoints"]
    for i, column in enumerate(AVERAGE_COLUMNS):
        ax.plot(epochs, [r["rows"][f"epoch {e}"][column] for e in epochs], styles[column], color=f"C{i}",
                ms=6, label=labels[column])
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch of checkpoint A (averaged with B, the end of the same run)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Averaging an earlier checkpoint of one run with its end")
    ax.grid(alpha=0.3)
    plots.legend_panel(legend, *ax.get_legend_handles_labels())
    fork = r["rows"][f"fork at {r['half']}"]
    names = {"A": "A: the fork", "B": "B: base run", "averaged stats": "avg, averaged stats",
             "recalibrated, paper": "avg, recal. (paper)", "recalibrated, pooled": "avg, recal. (pooled)"}
    rows = list(AVERAGE_COLUMNS)[::-1]
    for i, column in enumerate(rows):
        ax_fork.plot(fork[column], i, "o", ms=9, color=f"C{AVERAGE_COLUMNS.index(column)}")
        ax_fork.annotate(f"{fork[column]:.3f}", (fork[column], i), xytext=(9, 0), textcoords="offset points",
                         va="center", fontsize=9)
    ax_fork.set_yticks(range(len(rows)), [names[c] for c in rows])
    low, high = min(fork[c] for c in rows), max(fork[c] for c in rows)
    ax_fork.set_xlim(low - 0.006, high + 0.008)
    ax_fork.set_ylim(-0.6, len(rows) - 0.4)
    ax_fork.set_xlabel("test accuracy (points; one test sample = 0.001)")
    ax_fork.set_ylabel("model")
    ax_fork.set_title(f"A = a second run forked from the epoch-{r['half']} checkpoint, B = the base run's end")
    ax_fork.grid(axis="x", alpha=0.3)
    fig.suptitle("Weight averaging averages the running statistics too: how much recalibrating them matters")
    plots.save_figure(fig, path, text)
