"""Part 3, small-batch: training from scratch with batches of 2 to 128, then batch statistics, the
EMA and population statistics at inference (the EMA's known weakness at small batch sizes). The
measurement, its table, the conclusion computed from the table's numbers, and the figure. Unlike
the other parts it trains its own models and does not use the base model.
"""
import copy
import time

import numpy as np

import minigrad as mg
from helpers import models, plots
from helpers.bn_stats import bn_layers, stats_gap_per_layer
from minigrad.data import DataLoader

from .shared import LR, fit, print_lines, recalibrated, samples, subset, test_accuracy

SMALL_SIZES = (2, 4, 8, 32, 128)          # training batch sizes
SMALL_SAMPLES, SMALL_EPOCHS = 3600, 4     # samples (all; fewer: a fixed subset), epochs for every size
SMALL_RECAL = 128                         # population statistics: paper estimator, batch 128
FIGURE = "bn_small_batch.png"


def part_small_batch(data, seed, sizes=SMALL_SIZES, samples=SMALL_SAMPLES, epochs=SMALL_EPOCHS, quiet=True):
    """Train from scratch at each batch size (same initial weights, same samples, same epochs) and
    score the test set three ways: batch statistics of test batches of that size (training mode),
    the EMA (eval mode) and population statistics (paper estimator, batches of SMALL_RECAL)."""
    X, y = subset(data["X_train"], data["y_train"], samples)
    X_test, y_test = data["X_test"], data["y_test"]
    rows = {}
    for size in sizes:
        mg.manual_seed(seed)
        model = models.build_model("mnist1d", "cnn", "fused")
        optimizer = mg.optim.AdamW(model.parameters(), lr=LR)
        t0 = time.perf_counter()
        fit(model, optimizer, X, y, size, epochs, seed, f"batch {size}", quiet)
        seconds = time.perf_counter() - t0
        population = recalibrated(model, X, y, SMALL_RECAL, "paper", seed)
        rows[size] = {"batch stats": batch_stats_accuracy(model, X_test, y_test, size, seed),
                      "EMA": test_accuracy(model, X_test, y_test),
                      "population": test_accuracy(population, X_test, y_test),
                      "gap": stats_gap_per_layer(model, population), "mean_var_gap": mean_var_gap(model, population),
                      "steps": epochs * len(DataLoader(X, y, size)), "seconds": seconds}
    return {"rows": rows, "samples": len(y), "n_train": len(data["y_train"]), "epochs": epochs}


SMALL_COLUMNS = ("batch stats", "EMA", "population")


def print_small_batch(r):
    which = (f"all {r['samples']}" if r["samples"] == r["n_train"] else f"a fixed subset of {r['samples']}")
    print(f"\n3. small-batch: trained from scratch on {which} training samples, {r['epochs']} epochs at "
          f"every batch size (same initial weights)")
    print(f"  test accuracy with: batch stats = test batches of the training size (training mode), EMA = "
          f"running statistics (eval), population = recomputed (paper, batches of {SMALL_RECAL})")
    print(f"  {'batch':>5} {'steps':>6} {'batch stats':>11} {'EMA':>7} {'population':>10}   EMA vs population "
          f"variances: worst channel, mean  {'train s':>7}")
    for size, row in r["rows"].items():
        print(f"  {size:>5} {row['steps']:>6} {row['batch stats']:>11.4f} {row['EMA']:>7.4f} "
              f"{row['population']:>10.4f}   {100 * max(v for _, v in row['gap']):>26.1f}% "
              f"{100 * row['mean_var_gap']:>5.1f}%  {row['seconds']:>7.1f}")
    return print_lines(small_batch_conclusion(r))


def small_batch_conclusion(r):
    rows = r["rows"]
    sizes = sorted(rows)
    ema_minus = {s: rows[s]["EMA"] - rows[s]["population"] for s in sizes}
    worst = max(sizes, key=lambda s: abs(ema_minus[s]))
    batch_minus = {s: rows[s]["batch stats"] - max(rows[s]["EMA"], rows[s]["population"]) for s in sizes}
    best = max(sizes, key=lambda s: rows[s]["population"])
    spread = rows[best]["population"] - min(rows[s]["population"] for s in sizes)
    verdict = ("matters more than the statistics" if spread > max(abs(v) for v in ema_minus.values())
               else "matters less than the statistics")
    return [f"EMA minus population accuracy: " + ", ".join(f"batch {s}: {100 * ema_minus[s]:+.1f}" for s in sizes)
            + f" points (largest |gap| {samples(abs(ema_minus[worst]))} test samples, at batch {worst}); the "
            f"EMA's mean variance gap: " + ", ".join(f"{100 * rows[s]['mean_var_gap']:.1f}%" for s in sizes) + ".",
            f"Batch statistics at inference, against the better of the two fixed ones: "
            + ", ".join(f"batch {s}: {100 * batch_minus[s]:+.1f}" for s in sizes) + " points.",
            f"The batch size of training {verdict}: population accuracy "
            f"{min(rows[s]['population'] for s in sizes):.4f}-{rows[best]['population']:.4f} (best at batch {best}) "
            f"after {r['epochs']} epochs, i.e. {rows[sizes[0]]['steps']} steps at batch {sizes[0]}, "
            f"{rows[sizes[-1]]['steps']} at batch {sizes[-1]}."]


def batch_stats_accuracy(model, X, y, batch_size, seed):
    """Accuracy when every batch of ``batch_size`` is normalised by its own statistics (training
    mode, no_grad) on a copy, whose running statistics that updates are thrown away."""
    copied, correct = copy.deepcopy(model), 0
    with mg.no_grad(), mg.train_mode():
        for xb, yb in DataLoader(X, y, batch_size, shuffle=True, seed=seed):
            correct += int((copied(mg.tensor(xb)).data.argmax(axis=1) == yb).sum())
    return correct / len(y)


def mean_var_gap(model, reference):
    """Mean over every BN channel of |variance ratio - 1|."""
    return float(np.mean(np.concatenate([np.abs(a.running_var / b.running_var - 1)
                                         for a, b in zip(bn_layers(model), bn_layers(reference))])))


def figure_setup(r):
    """The part's setup for the figure's caption, from its numbers."""
    sizes = sorted(r["rows"])
    return (f"Trained from scratch at each batch size on {r['samples']} training samples: AdamW lr {LR:g} "
            f"cosine over {r['epochs']} epochs, the same initial weights. Each batch size is a separate run, "
            f"and the same epochs are {r['rows'][sizes[0]]['steps']} steps at batch {sizes[0]} but "
            f"{r['rows'][sizes[-1]]['steps']} at batch {sizes[-1]}: no line joins them; compare the three "
            f"statistics within a batch size.")


def plot_small_batch(r, path, text):
    """Test accuracy with three kinds of statistics, one group per training batch size. The groups
    are separate conditions (the same epochs are many more steps at small batches), so no line
    joins them: compare the three markers within a group."""
    fig, (legend, ax) = plots.figure(2, 1, height=5.4, gridspec_kw={"height_ratios": [0.22, 1]})
    sizes = sorted(r["rows"])
    looks = {"batch stats": ("C0", "^", "batch statistics (test batches of the training size)"),
             "EMA": ("C1", "o", "running statistics (EMA, eval mode)"),
             "population": ("C2", "s", f"population statistics (paper, batches of {SMALL_RECAL})")}
    for offset, column in zip((-0.22, 0, 0.22), SMALL_COLUMNS):
        colour, marker, label = looks[column]
        ax.plot(np.arange(len(sizes)) + offset, [r["rows"][s][column] for s in sizes], marker, ls="",
                color=colour, ms=9, label=label)
    for i in range(1, len(sizes)):
        ax.axvline(i - 0.5, color="0.8", lw=0.8)      # the conditions' borders
    ax.set_xticks(range(len(sizes)), [f"batch {s}\n{r['rows'][s]['steps']} steps" for s in sizes])
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_xlabel(f"training batch size, and the optimizer steps that {r['epochs']} epochs make at it "
                  f"(separate runs)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Compare the markers within a batch size, not across: the runs differ in steps too")
    ax.grid(axis="y", alpha=0.3)
    plots.legend_panel(legend, *ax.get_legend_handles_labels(), ncol=1)
    fig.suptitle(f"Trained from scratch with small batches ({r['epochs']} epochs each): which statistics "
                 f"at inference")
    plots.save_figure(fig, path, text)
