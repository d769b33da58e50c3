"""Part 1, estimators: the running statistics (EMA) against population statistics recomputed by
nn.recompute_bn_stats after training, the paper's estimator and PreciseBN's pooled one, and how
both depend on the size of the recalibration batches. The measurement, its table, the conclusion
computed from the table's numbers, and the figure. The trained model is only copied.
"""
import numpy as np

import minigrad as mg
from helpers import plots
from helpers.bn_stats import bn_layers, stats_gap_per_layer

from .shared import MOMENTUM, RECAL_BATCH, print_lines, recalibrated, samples, test_accuracy

RECAL_SIZES = (2, 4, 16, 100)             # recalibration batch sizes
FIGURE = "bn_estimators.png"


def part_estimators(model, data, seed, sizes=RECAL_SIZES):
    """The EMA against the two population estimators after training, and how both depend on the
    size of the recalibration batches. The model is only copied."""
    X_train, y_train, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    stats = {"EMA": model,
             "paper": recalibrated(model, X_train, y_train, RECAL_BATCH, "paper", seed),
             "pooled": recalibrated(model, X_train, y_train, RECAL_BATCH, "pooled", seed)}
    # how far apart, per layer: max over channels of |Δmean| / reference std and |var ratio - 1|
    gaps = {f"{a} vs {b}": stats_gap_per_layer(stats[a], stats[b])
            for a, b in (("EMA", "pooled"), ("paper", "pooled"), ("EMA", "paper"))}

    # The yardstick for batch sizes: the whole training set as ONE batch. recompute_bn_stats runs
    # in training mode, so each layer's input is normalised with the statistics of the batch in
    # the layers before it; in one batch of everything those are the population's, as at
    # inference, and pooled gives exactly the variance the inference network sees.
    stats["exact"] = recalibrated(model, X_train, y_train, len(y_train), "pooled", seed)
    accuracy = {name: test_accuracy(m, X_test, y_test) for name, m in stats.items()}
    exact = bn_layers(stats["exact"])
    by_size = {}
    for size in sizes:
        for estimator in ("paper", "pooled"):
            m = recalibrated(model, X_train, y_train, size, estimator, seed)
            by_size[(estimator, size)] = {
                "var_ratio": [float(np.mean(b.running_var / e.running_var)) for b, e in zip(bn_layers(m), exact)],
                "accuracy": test_accuracy(m, X_test, y_test)}
    return {"accuracy": accuracy, "gaps": gaps, "by_size": by_size, "sizes": list(sizes),
            "positions": values_per_sample(model, X_test[:2]), "n_train": len(y_train)}


def values_per_sample(model, X):
    """Positions per sample at each BN layer's input, (N, C, L) -> L (one eval forward)."""
    shapes = []
    handles = [m.register_forward_pre_hook(lambda m, args: shapes.append(args[0].shape)) for m in bn_layers(model)]
    try:
        with mg.eval_mode(), mg.no_grad():
            model(mg.tensor(X))
    finally:
        for h in handles:
            h.remove()
    return [int(np.prod(s[2:])) for s in shapes]


def describe_stats(name, n_train):
    return {"EMA": f"running (EMA, momentum {MOMENTUM})", "paper": f"paper (Alg. 2), batches of {RECAL_BATCH}",
            "pooled": f"pooled (PreciseBN), batches of {RECAL_BATCH}",
            "exact": f"exact (pooled, one batch of {n_train})"}[name]


def print_estimators(r):
    layers = len(r["positions"])
    print("\n1. estimators: running (EMA) vs recomputed population statistics, after training")
    print(f"  recomputed over the training set in shuffled batches of {RECAL_BATCH} (DataLoader); 'exact': "
          f"in one batch of all {r['n_train']}")
    print(f"  {'statistics':38} {'test acc':>8}")
    for name, acc in r["accuracy"].items():
        print(f"  {describe_stats(name, r['n_train']):38} {acc:>8.4f}")
    print("\n  how far apart, per BN layer (worst channel): max |mean difference| in the second one's std, "
          "max |variance ratio - 1|")
    print(f"  {'pair':16}" + "".join(f"  {'BN ' + str(i + 1) + ' mean':>10} {'var':>7}" for i in range(layers)))
    for pair, per_layer in r["gaps"].items():
        print(f"  {pair:16}" + "".join(f"  {d_mean:>10.4f} {100 * d_var:>6.2f}%" for d_mean, d_var in per_layer))
    print(f"\n  recalibration batch size: variance / exact variance (mean over channels), test accuracy")
    print(f"  (a batch of m samples gives m x {', '.join(map(str, r['positions']))} values per channel in "
          f"BN 1-{layers}; paper = mean of within-batch unbiased variances, pooled = variance of all values)")
    print(f"  {'batch':>6} {'estimator':>9}" + "".join(f" {'BN ' + str(i + 1):>8}" for i in range(layers))
          + f" {'test acc':>9}")
    for size in r["sizes"]:
        for estimator in ("paper", "pooled"):
            row = r["by_size"][(estimator, size)]
            print(f"  {size:>6} {estimator:>9}" + "".join(f" {v:>8.4f}" for v in row["var_ratio"])
                  + f" {row['accuracy']:>9.4f}")
    return print_lines(estimators_conclusion(r))


def estimators_conclusion(r):
    acc, sizes, by = r["accuracy"], r["sizes"], r["by_size"]
    spread = max(acc.values()) - min(acc.values())
    small, last = sizes[0], len(r["positions"]) - 1
    off = lambda estimator, size, layer: 100 * abs(by[(estimator, size)]["var_ratio"][layer] - 1)  # noqa: E731
    first_pooled = max(off("pooled", s, 0) for s in sizes)
    accs = {e: [by[(e, s)]["accuracy"] for s in sizes] for e in ("paper", "pooled")}
    return [f"After training all four give test accuracies within {100 * spread:.1f} points ({samples(spread)} of "
            f"the test samples): EMA {acc['EMA']:.4f}, paper {acc['paper']:.4f}, pooled {acc['pooled']:.4f}, "
            f"exact {acc['exact']:.4f}; the EMA's variances are at most "
            f"{100 * max(v for _, v in r['gaps']['EMA vs pooled']):.1f}% from the pooled ones, the paper's "
            f"{100 * max(v for _, v in r['gaps']['paper vs pooled']):.2f}%.",
            f"BN 1 normalises the data itself: pooled is exact at every batch size (at most {first_pooled:.2g}% off), "
            f"the paper's estimator is {off('paper', small, 0):.2f}% off in batches of {small}.",
            f"Deeper layers see inputs normalised with the earlier layers' batch statistics, which depend on the "
            f"batch: in batches of {small}, BN {last + 1}'s variances are {off('paper', small, last):.1f}% (paper) and "
            f"{off('pooled', small, last):.1f}% (pooled) off the exact ones; in batches of {sizes[-1]}, "
            f"{off('paper', sizes[-1], last):.2f}% and {off('pooled', sizes[-1], last):.2f}%.",
            f"None of it moves the test accuracy much: over batch sizes {small}-{sizes[-1]} paper gives "
            f"{min(accs['paper']):.4f}-{max(accs['paper']):.4f}, pooled {min(accs['pooled']):.4f}-{max(accs['pooled']):.4f}."]



def figure_setup(r):
    """The part's setup for the figure's caption, from its numbers."""
    return (f"Population statistics recomputed on the training set: top in batches of {RECAL_BATCH}, "
            f"middle and bottom in batches of {', '.join(map(str, r['sizes']))}; exact: pooled in one batch "
            f"of all {r['n_train']}. Paper: Algorithm 2 (mean of unbiased batch variances); pooled: "
            f"PreciseBN (the variance of all values).")


def plot_estimators(r, path, text):
    """Top: how far apart the statistics are, per layer (bars from zero). Middle: each
    estimator's variance against the exact one, by recalibration batch size. Bottom: test
    accuracy with each, beside the EMA's and the exact statistics' (often the same number: drawn
    as a wide band and a line on top of it, so both stay visible)."""
    fig, (ax_gap, ax_var, ax_acc) = plots.figure(3, 1, height=10.4, gridspec_kw={"height_ratios": [0.9, 1.1, 1]})
    layers = np.arange(1, len(r["positions"]) + 1)
    width = 0.8 / len(r["gaps"])
    for i, (pair, per_layer) in enumerate(r["gaps"].items()):
        bars = ax_gap.bar(layers + (i - 1) * width, [100 * v for _, v in per_layer], width, label=pair,
                          color=("C7", "C9", "C8")[i])
        ax_gap.bar_label(bars, fmt="%.2f", fontsize=8)
    ax_gap.set_xticks(layers, [f"BN {i}" for i in layers])
    ax_gap.set_xlabel(f"batch-norm layer (recomputed in batches of {RECAL_BATCH})")
    ax_gap.set_ylabel("worst channel\n|variance ratio - 1| (%)")
    ax_gap.set_ylim(0, 1.25 * max(100 * v for per_layer in r["gaps"].values() for _, v in per_layer))
    ax_gap.set_title("How far apart the statistics are after training")
    ax_gap.legend(loc="upper left", ncol=3)
    for estimator, marker, line in (("paper", "o", "-"), ("pooled", "s", "--")):
        for i in range(len(layers)):
            ax_var.plot(r["sizes"], [r["by_size"][(estimator, s)]["var_ratio"][i] for s in r["sizes"]],
                        marker=marker, ls=line, color=f"C{i}", ms=6, label=f"{estimator}, BN {i + 1}")
        ax_acc.plot(r["sizes"], [r["by_size"][(estimator, s)]["accuracy"] for s in r["sizes"]], marker=marker,
                    ls=line, color="C0" if estimator == "paper" else "C1", ms=7, label=f"recomputed, {estimator}")
    ax_var.axhline(1, color="gray", lw=0.8)
    ax_var.set_ylabel("variance / exact variance\n(mean over channels)")
    ax_var.set_title("Both estimators depend on the batch size (BN 1: only the paper's)")
    ax_var.legend(loc="lower right", ncol=2)
    ema, exact = r["accuracy"]["EMA"], r["accuracy"]["exact"]
    ax_acc.axhline(exact, color="C2", lw=7, alpha=0.35, label=f"exact (one batch of {r['n_train']}): {exact:.4f}")
    ax_acc.axhline(ema, color="k", ls=":", lw=1.6, label=f"running (EMA): {ema:.4f}"
                   + (" (= exact: the line lies on the band)" if ema == exact else ""))
    accs = [v["accuracy"] for v in r["by_size"].values()] + list(r["accuracy"].values())
    ax_acc.set_ylim(min(accs) - 0.004, max(accs) + 0.006)
    ax_acc.set_ylabel("test accuracy\n(one sample = 0.001)")
    ax_acc.set_title("Test accuracy with each")
    ax_acc.legend(loc="lower right", ncol=2)
    for ax in (ax_var, ax_acc):
        ax.set_xscale("log")
        ax.set_xticks(r["sizes"], [str(s) for s in r["sizes"]])
        ax.minorticks_off()
        ax.set_xlabel("recalibration batch size (samples, log scale)")
        ax.grid(alpha=0.3)
    fig.suptitle("Running (EMA) vs population statistics recomputed after training (nn.recompute_bn_stats)")
    plots.save_figure(fig, path, text)
