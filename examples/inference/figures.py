"""The moving-average study's three figures, from the numbers bn_inference.py measured and printed.

Each answers one question: which statistics give the best validation accuracy, epoch by epoch
(accuracy); does the moving average reach the population statistics (statistics); how does
accuracy with batch statistics depend on the batch size (batch size). All go through the one saver.
"""
import numpy as np

from helpers import plots

# One look per method, the same in every panel: fixed statistics solid, batch statistics dashed.
STYLES = {"running": ("C0", "o", "-"), "population": ("C2", "s", "-"), "cumulative": ("C7", "D", "-"),
          "sorted": ("C6", "X", ":")}
BATCH_STYLES = [("C1", "v", "--"), ("C4", "^", "--"), ("C3", "<", "--"), ("C5", ">", "--"), ("C8", "P", "--"),
                ("C9", "*", "--")]


def styles(keys):
    """{method key: (colour, marker, line style)}; batch sizes take BATCH_STYLES in order."""
    batch = iter(BATCH_STYLES)
    return {k: STYLES.get(k.split(" ")[0]) or next(batch) for k in keys}


def plot_accuracy(history, names, path, setup, made_by):
    """Validation accuracy per epoch for every method: all of it (top), then the top of the range
    (bottom) where the methods that work sit within a few images of each other; there each method
    is moved sideways by its own small offset, so equal values stay visible side by side."""
    keys = [k for k in history[0]["rows"] if not any(isinstance(h["rows"][k], str) for h in history)]
    look = styles(keys)
    epochs = np.array([h["epoch"] for h in history])
    acc = {k: np.array([h["rows"][k][0] for h in history]) for k in keys}
    fig, (key, top, zoom) = plots.figure(3, 1, height=8.6, gridspec_kw={"height_ratios": [0.32, 1, 1.25]})
    offsets = dict(zip(keys, np.linspace(-0.24, 0.24, len(keys))))
    for k in keys:
        colour, marker, line = look[k]
        top.plot(epochs, acc[k], color=colour, marker=marker, ls=line, ms=5, label=names[k])
        zoom.plot(epochs + offsets[k], acc[k], color=colour, marker=marker, ls=line, ms=6, lw=1.2)
    fixed = np.concatenate([acc[k][1:] for k in ("running", "population", "cumulative") if k in acc] or [[0.9]])
    zoom.set_ylim(fixed.min() - 0.012, min(1.0, max(a.max() for a in acc.values()) + 0.006))
    top.set_ylim(0, 1.02)
    top.set_title("All methods (batches of 1 cannot be normalised: not drawn)")
    zoom.set_title(f"Epochs 2-{epochs[-1]} zoomed to the top; each method offset sideways so that equal "
                   f"values stay visible")
    for ax in (top, zoom):
        ax.set_xticks(epochs)
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    zoom.set_xlabel("epoch")
    zoom.yaxis.set_major_formatter("{x:.2f}")
    plots.legend_panel(key, *top.get_legend_handles_labels())
    zoom.set_xlim(1.5, epochs[-1] + 0.5)
    fig.suptitle("Which statistics batch norm normalises with at inference")
    plots.save_figure(fig, path, f"{setup} One validation image = 1/359 = 0.0028 of accuracy. "
                                 f"(2) batch stats: each validation batch normalised by its own statistics "
                                 f"(sorted by label: batches of mostly one class).\n{made_by}")


def plot_statistics(history, batches_per_epoch, momentum, path, setup, made_by):
    """The EMA after every batch against the population statistics after every epoch, for the
    first BN layer's traced channels: mean (top), variance (bottom)."""
    from matplotlib.lines import Line2D
    fig, (legend, ax_mean, ax_var) = plots.figure(3, 1, height=7.6, gridspec_kw={"height_ratios": [0.22, 1, 1]})
    ax_var.sharex(ax_mean)
    steps = np.arange(1, sum(len(h["trace"]) for h in history) + 1) / batches_per_epoch   # in epochs
    means = np.array([m for h in history for m, _ in h["trace"]])                        # (steps, channels)
    variances = np.array([v for h in history for _, v in h["trace"]])
    epochs = [h["epoch"] for h in history]
    for k in range(means.shape[1]):
        for ax, trace, index in ((ax_mean, means, 0), (ax_var, variances, 1)):
            ax.plot(steps, trace[:, k], lw=1.3, color=f"C{k}")
            ax.plot(epochs, [h["channels"]["population"][index][k] for h in history], "o", ms=7,
                    mfc="white", mew=1.8, color=f"C{k}")
    for ax in (ax_mean, ax_var):
        for e in epochs[:-1]:
            ax.axvline(e, color="0.85", lw=0.8, zorder=0)
        ax.grid(axis="y", alpha=0.3)
    ax_mean.set_ylabel("running mean\n(pre-activation units)")
    ax_var.set_ylabel("running variance\n(squared units, log scale)")
    ax_var.set_yscale("log")
    ax_var.set_xlabel("training progress (epochs; grey lines: epoch boundaries, where nothing restarts)")
    key = [Line2D([], [], color="0.3", lw=1.3, label=f"EMA after every batch (momentum {momentum})"),
           Line2D([], [], color="0.3", marker="o", ls="", mfc="white", mew=1.8,
                  label="population statistics (Alg. 2) of the weights after each epoch")]
    key += [Line2D([], [], ls="", label=" ")] * (means.shape[1] - 2)      # so the channels fill column 2
    key += [Line2D([], [], color=f"C{k}", lw=4, label=f"channel {k}") for k in range(means.shape[1])]
    plots.legend_panel(legend, key)
    fig.suptitle("The moving average carries across epochs and tracks the population statistics "
                 "of the current weights (first BatchNorm1d layer)")
    plots.save_figure(fig, path, f"{setup}\n{made_by}")


def plot_batch_size(curve, rows, path, setup, made_by):
    """Validation accuracy with batch statistics against the validation batch size, after the
    last epoch, beside the fixed statistics that give one number for any batch size."""
    fig, ax = plots.figure(height=4.8)
    sizes = sorted(curve)
    ax.plot(sizes, [curve[s] for s in sizes], "o-", color="C1", label="batch statistics of each validation batch")
    ax.axhline(rows["running"][0], color="C0", lw=2, label=f"running statistics (EMA): {rows['running'][0]:.4f}")
    ax.axhline(rows["population"][0], color="C2", ls="--", lw=2,
               label=f"population statistics: {rows['population'][0]:.4f}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("validation batch size (samples, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(top=1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.suptitle("With batch statistics a prediction depends on its batch; running and population "
                 "statistics do not (any batch size, even 1)")
    plots.save_figure(fig, path, f"{setup} After the last epoch; batches are a seeded shuffle of the "
                                 f"validation set.\n{made_by}")
