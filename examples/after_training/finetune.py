"""Part 4, finetune: fine-tuning on shifted data, x' = 1.5·x + 0.5, with batches of 4: BN updating,
BN frozen (nn.utils.freeze_batch_norm), BN recalibrated on the new data and then frozen. The
measurement, its table, the conclusion computed from the table's numbers, and the figure. Every
arm fine-tunes a copy of the base model.
"""
import copy

import numpy as np

import minigrad as mg
from helpers import plots
from helpers.bn_stats import bn_layers, stats_gap_per_layer
from minigrad import nn

from .shared import RECAL_BATCH, fit, print_lines, recalibrated, subset, test_accuracy

SHIFT_SCALE, SHIFT_OFFSET = 1.5, 0.5      # x' = 1.5·x + 0.5, train and test
FT_SAMPLES, FT_EPOCHS, FT_BATCH, FT_LR = 1200, 4, 4, 1e-3   # a subset, small batches, AdamW
FIGURE = "bn_finetune.png"


def part_finetune(base, data, seed, samples=FT_SAMPLES, epochs=FT_EPOCHS, batch_size=FT_BATCH, lr=FT_LR,
                  quiet=True):
    """Fine-tune copies of the trained model on shifted data, x' = 1.5·x + 0.5, in small batches:
    BN updating (training mode), frozen with the old statistics, and recalibrated on the shifted
    training data then frozen. Shifted test accuracy before (epoch 0) and after every epoch."""
    shift = (lambda X: (SHIFT_SCALE * X + SHIFT_OFFSET).astype(X.dtype))
    X, y = subset(shift(data["X_train"]), data["y_train"], samples)
    X_test, y_test = shift(data["X_test"]), data["y_test"]
    arms = {"BN updating": copy.deepcopy(base),
            "BN frozen": nn.utils.freeze_batch_norm(copy.deepcopy(base)),
            "recalibrated, frozen": nn.utils.freeze_batch_norm(
                recalibrated(base, X, y, RECAL_BATCH, "paper", seed))}
    curves, unchanged, affine_trained = {}, {}, {}
    for name, model in arms.items():
        before = [b.copy() for b in running_buffers(model)]
        gamma_beta = [p.data.copy() for m in bn_layers(model) for p in (m.weight, m.bias)]
        optimizer = mg.optim.AdamW(model.parameters(), lr=lr)
        curve = [test_accuracy(model, X_test, y_test)]
        fit(model, optimizer, X, y, batch_size, epochs, seed, name, quiet, lr=lr, cosine=False,
            after_epoch=lambda epoch: curve.append(test_accuracy(model, X_test, y_test)))
        curves[name] = curve
        unchanged[name] = all(np.array_equal(a, b) for a, b in zip(before, running_buffers(model)))
        affine_trained[name] = not all(np.array_equal(a, p.data) for a, p in
                                       zip(gamma_beta, (p for m in bn_layers(model) for p in (m.weight, m.bias))))
    # diagnosis of the updating arm: its EMA against its weights' own statistics on the new data
    updated = arms["BN updating"]
    own = recalibrated(updated, X, y, RECAL_BATCH, "paper", seed)
    return {"curves": curves, "unchanged": unchanged, "affine_trained": affine_trained, "samples": len(y), "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "original": test_accuracy(base, data["X_test"], data["y_test"]),
            "updating_gap": stats_gap_per_layer(updated, own), "updating_recalibrated": test_accuracy(own, X_test, y_test)}


def print_finetune(r):
    print(f"\n4. finetune: x' = {SHIFT_SCALE}·x + {SHIFT_OFFSET} (train and test), {r['samples']} shifted training "
          f"samples, batch {r['batch_size']}, AdamW lr {r['lr']:g} (constant), {r['epochs']} epochs")
    print(f"  shifted test accuracy after each epoch (0: before fine-tuning); the base model on the "
          f"unshifted test set: {r['original']:.4f}")
    names = list(r["curves"])
    print(f"  {'epoch':>5}" + "".join(f" {n:>21}" for n in names))
    for epoch in range(r["epochs"] + 1):
        print(f"  {epoch:>5}" + "".join(f" {r['curves'][n][epoch]:>21.4f}" for n in names))
    print("  running statistics unchanged by fine-tuning: "
          + ", ".join(f"{n}: {'yes' if r['unchanged'][n] else 'no'}" for n in names)
          + "; γ, β trained: " + ", ".join(f"{n}: {'yes' if r['affine_trained'][n] else 'no'}" for n in names))
    print(f"  BN updating at the end: its EMA vs its own statistics on the shifted training set (paper), worst "
          f"channel: means {max(m for m, _ in r['updating_gap']):.3f} std, variances "
          f"{100 * max(v for _, v in r['updating_gap']):.1f}% apart; with those instead of the EMA: "
          f"{r['updating_recalibrated']:.4f}")
    return print_lines(finetune_conclusion(r))


def finetune_conclusion(r):
    c = r["curves"]
    final = {n: v[-1] for n, v in c.items()}
    ranked = sorted(final, key=final.get, reverse=True)
    lost = r["original"] - c["BN frozen"][0]
    regained = c["recalibrated, frozen"][0] - c["BN frozen"][0]
    best_name, best_epoch = max(((n, e) for n in c for e in range(len(c[n]))), key=lambda ne: c[ne[0]][ne[1]])
    lines = [f"After {r['epochs']} epochs: " + ", ".join(f"{n} {final[n]:.4f}" for n in ranked)
             + f"; the best of all {c[best_name][best_epoch]:.4f}: {best_name}, epoch {best_epoch}.",
             f"The shift costs the old statistics {100 * lost:.1f} points ({r['original']:.4f} -> "
             f"{c['BN frozen'][0]:.4f}); recalibrating on the shifted data, before any step, regains "
             f"{100 * regained:.1f} of them ({c['recalibrated, frozen'][0]:.4f})"
             + (": the shift is almost all a per-channel scale and offset, which batch norm removes once its "
                "statistics are the new data's." if lost > 0 and regained >= 0.9 * lost else ".")]
    lines.append(f"Frozen with the old statistics the weights have to learn the shift: {c['BN frozen'][0]:.4f} -> "
                 f"{c['BN frozen'][1]:.4f} after one epoch, {final['BN frozen']:.4f} at the end.")
    fix = r["updating_recalibrated"] - final["BN updating"]
    frozen_best = max(final["BN frozen"], final["recalibrated, frozen"])
    if final["BN updating"] >= frozen_best:
        why = f"with its own recomputed statistics instead of its EMA: {r['updating_recalibrated']:.4f}"
    elif abs(fix) < 0.005:
        why = (f"recomputing its statistics changes that by only {100 * fix:+.1f} points, so what holds it back "
               f"is not its EMA but its weights, trained (as the frozen arms' were not) through batch norm on "
               f"batches of {r['batch_size']}")
    else:
        why = (f"with its own recomputed statistics instead of its EMA it scores {r['updating_recalibrated']:.4f} "
               f"({100 * fix:+.1f} points)")
    lines.append(f"BN updating adapts its statistics and ends at {final['BN updating']:.4f} "
                 f"({100 * (final['BN updating'] - frozen_best):+.1f} points against the better frozen arm); {why}.")
    return lines


def running_buffers(model):
    return [a for m in bn_layers(model) for a in (m.running_mean, m.running_var, m.num_batches_tracked)]


def figure_setup(r):
    """The part's setup for the figure's caption, from its numbers."""
    return (f"Fine-tuned on {r['samples']} shifted training samples, batch {r['batch_size']}, "
            f"AdamW lr {r['lr']:g} constant. At epoch 0 'BN updating' and 'BN frozen' are the same model "
            f"(the circle behind the square).")


def plot_finetune(r, path, text):
    fig, (legend, ax) = plots.figure(2, 1, height=5.0, gridspec_kw={"height_ratios": [0.14, 1]})
    epochs = np.arange(r["epochs"] + 1)
    # the first two arms are the same model at epoch 0: a bigger circle stays visible behind the square
    for (name, curve), style, size in zip(r["curves"].items(), ("o-", "s--", "^-"), (11, 7, 8)):
        ax.plot(epochs, curve, style, ms=size, label=name)
    ax.axhline(r["original"], color="gray", ls=":", label=f"base model on the unshifted test set: {r['original']:.4f}")
    ax.set_xticks(epochs)
    ax.set_xlabel("fine-tuning epoch (0: before fine-tuning)")
    ax.set_ylabel("shifted test accuracy")
    ax.grid(alpha=0.3)
    plots.legend_panel(legend, *ax.get_legend_handles_labels())
    fig.suptitle(f"Fine-tuning on x' = {SHIFT_SCALE}x + {SHIFT_OFFSET} in batches of {r['batch_size']}: "
                 f"batch norm updating, frozen, or recalibrated then frozen")
    plots.save_figure(fig, path, text)
