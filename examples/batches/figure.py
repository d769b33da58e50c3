"""The small-batch study's figure: test accuracy, the training-mode gap and the time per epoch for
every normalisation and condition, one marker per normalisation, never joined by lines (each
condition is a separate set of runs), with the seeds' min-max as error bars.

Invariant: drawn from small_batches.run()'s numbers only, saved by helpers/plots.py's one saver.
"""
import numpy as np

from helpers import plots

from .report import NAMES, heading, values

FIGURE = "norm_small_batches.png"
LOOKS = {"batch": ("C0", "o"), "renorm": ("C1", "s"), "renorm-0.01": ("C3", "X"), "group": ("C2", "^"),
         "layer": ("C4", "D"), "none": ("0.35", "v")}
PANELS = (("test", 100, "test accuracy (%)\neval mode"),
          ("gap", 100, "training minus eval\nmode (points)"),
          ("seconds", 1, "training time per\nepoch (s, log scale)"))


def caption(results, config, command):
    """The setup (data, model, steps, seeds, threads) and the command that made the figure."""
    by_class = [c for c in config["conditions"] if c[1] is not None]
    size = np.mean([values(results, row, c, "batch") for row in results for c in by_class]) if by_class else 0
    return (f"MNIST-1D ({config['n_train']} train / {config['n_test']} test), train_cnn.py's CNN (3 x Conv1d + "
            f"norm + ReLU, Linear), AdamW lr {config['lr']:g} cosine over {config['epochs']} epoch(s); every "
            f"optimizer step averages the gradient over the same {config['step']} samples in every run; only "
            f"the batches the normalisation layers see differ: b samples (i.i.d.), or all the step's samples "
            f"of 2 classes (about {size:.0f}). Running statistics' momentum 0.1 (PyTorch's), and 0.01 in the extra "
            f"BatchRenorm row. Seeds {', '.join(map(str, config['seeds']))}: marker = mean, bar = "
            f"min-max; {config['threads']} BLAS thread(s). GroupNorm, LayerNorm and none do not depend on the "
            f"batch: their points differ only by float rounding, and their gap is 0 by construction.\n{command}")


def plot(results, config, path, text):
    """Three panels sharing the conditions' axis; the legend in a row of its own above them."""
    from matplotlib import ticker
    conditions, norms = config["conditions"], list(results)
    fig, axes = plots.figure(4, 1, height=9.0, sharex=False,
                             gridspec_kw={"height_ratios": [0.18, 1, 0.75, 0.75]})
    legend, panels = axes[0], axes[1:]
    x = np.arange(len(conditions)) + np.array([0.4 if c[1] is not None else 0 for c in conditions])
    offsets = np.linspace(-0.28, 0.28, len(norms))          # side by side: coinciding points stay apart
    for ax, (key, scale, ylabel) in zip(panels, PANELS):
        for offset, norm in zip(offsets, norms):
            colour, marker = LOOKS[norm]
            per_seed = np.array([values(results, norm, c, key) * scale for c in conditions])   # (conditions, seeds)
            middle = per_seed.mean(axis=1)
            ax.errorbar(x + offset, middle, yerr=[middle - per_seed.min(axis=1), per_seed.max(axis=1) - middle],
                        fmt=marker, ls="none", color=colour, ms=6, capsize=2, label=NAMES[norm])
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        for border in x[:-1] + np.diff(x) / 2:
            ax.axvline(border, color="0.85", lw=0.8)        # the conditions' borders
        ax.set_xticks(x, [heading(c).replace(" per ", "\nper ") for c in conditions])
        ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    panels[1].axhline(0, color="0.5", lw=0.8)
    panels[2].set_yscale("log")
    panels[2].yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))      # 0.1, 0.2, 0.5, 1, ...
    panels[2].yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    panels[2].yaxis.set_minor_formatter(ticker.NullFormatter())
    panels[0].set_title("Test accuracy after training: batch statistics suffer at small and class-sorted batches")
    panels[1].set_title("Training mode minus eval mode on the test set, batched as in training")
    panels[2].set_title("The price of small batches: one forward and backward call per batch")
    panels[2].set_xlabel("the batches the normalisation layers see in training (separate runs, the same steps)")
    plots.legend_panel(legend, *panels[0].get_legend_handles_labels(), ncol=3)
    fig.suptitle("When batches are small: five normalisations of MNIST-1D's CNN")
    plots.save_figure(fig, path, text)
