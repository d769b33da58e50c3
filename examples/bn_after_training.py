"""After training: what practitioners do with batch norm's statistics, measured on MNIST-1D.

    python examples/bn_after_training.py [--part all|estimators|average|small-batch|finetune|fold]
        [--seed 0] [--epochs 30] [--plot DIR] [--quiet]

Training-mode batch norm normalises with the batch's statistics and keeps an exponential moving
average (EMA) of them, running = (1 - momentum)·running + momentum·batch (momentum 0.1); eval
mode normalises with that average. The BN paper instead recomputes population statistics once
training is over (its Algorithm 2). Five parts, each a table, a conclusion computed from the
table's numbers, and with --plot one PNG:

  estimators   the EMA against population statistics recomputed by nn.recompute_bn_stats, the
               paper's estimator and PreciseBN's pooled one, and how both depend on the size of
               the recalibration batches;
  average      averaging two checkpoints of one run averages their running statistics too, which
               are not the statistics of the averaged network: how much recalibrating them matters;
  small-batch  training with batches of 2 to 128: batch statistics, EMA and population statistics
               at inference (the EMA's known weakness at small batch sizes);
  finetune     fine-tuning on shifted data with batches of 4: BN updating, BN frozen
               (nn.utils.freeze_batch_norm), BN recalibrated on the new data and then frozen;
  fold         nn.utils.fold_batch_norm: equal in eval mode, not in training mode, and what it saves.

The CNN is train_cnn.py's (three Conv1d + BatchNorm1d + ReLU, Linear(125, 10)), trained with AdamW
lr 1e-2 on a cosine schedule, batch 100. ``--part all`` trains one base model and gives every part
but small-batch (which trains its own, from scratch) a copy of it; no part changes another's model.
"""
import argparse
import copy
import os
import statistics
import textwrap
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as in train_cnn.py (before numpy loads)

import numpy as np  # noqa: E402

import common  # noqa: E402
import train_cnn  # noqa: E402
import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.data import DataLoader  # noqa: E402

PARTS = ("estimators", "average", "small-batch", "finetune", "fold")
BATCH, LR, MOMENTUM = 100, 1e-2, 0.1     # train_cnn.py's batch and learning rate; PyTorch's momentum
RECAL_BATCH = 100                         # recalibration batches (training batches, DataLoader)
RECAL_SIZES = (2, 4, 16, 100)             # estimators: recalibration batch sizes
SMALL_SIZES = (2, 4, 8, 32, 128)          # small-batch: training batch sizes
SMALL_SAMPLES, SMALL_EPOCHS = 3600, 4     # ... samples (all; fewer: a fixed subset), epochs for every size
SMALL_RECAL = 128                         # ... population statistics: paper estimator, batch 128
SHIFT_SCALE, SHIFT_OFFSET = 1.5, 0.5      # finetune: x' = 1.5·x + 0.5, train and test
FT_SAMPLES, FT_EPOCHS, FT_BATCH, FT_LR = 1200, 4, 4, 1e-3   # ... a subset, small batches, AdamW
AVERAGE_FRACTIONS = (0.1, 0.2, 1 / 3, 0.5, 2 / 3, 5 / 6)   # average: the checkpoints, as parts of the run
FOLD_REPEATS = 200                        # fold: interleaved timing rounds
SUBSET_SEED = 0                           # the subsets are fixed, whatever --seed is


# ====================================================================== the base model
def train_base(data, epochs, seed, quiet=True):
    """The one model most parts start from: seed's initial weights, ``epochs`` of AdamW on the
    cosine schedule. Returns (model, snapshots): copies of (model, optimizer) after the epochs
    part 2 averages with the end (``checkpoint_epochs``)."""
    mg.manual_seed(seed)
    model = train_cnn.build_model("mnist1d", "cnn", "fused")
    optimizer = mg.optim.AdamW(model.parameters(), lr=LR)
    keep, snapshots = checkpoint_epochs(epochs), {}

    def snapshot(epoch):
        if epoch in keep:
            snapshots[epoch] = copy.deepcopy((model, optimizer))
    fit(model, optimizer, data["X_train"], data["y_train"], BATCH, epochs, seed, "base model", quiet,
        after_epoch=snapshot)
    return model, snapshots


def checkpoint_epochs(epochs):
    """The epochs whose checkpoints part 2 averages with the last one: AVERAGE_FRACTIONS of the
    run (at least epoch 1, before the end), always including the middle, epochs // 2."""
    picked = {min(epochs - 1, max(1, round(f * epochs))) for f in AVERAGE_FRACTIONS}
    return sorted(picked | {max(1, epochs // 2)})


# ====================================================================== 1. estimators
def part_estimators(model, data, seed, sizes=RECAL_SIZES):
    """The EMA against the two population estimators after training, and how both depend on the
    size of the recalibration batches. The model is only copied."""
    X_train, y_train, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    stats = {"EMA": model,
             "paper": recalibrated(model, X_train, y_train, RECAL_BATCH, "paper", seed),
             "pooled": recalibrated(model, X_train, y_train, RECAL_BATCH, "pooled", seed)}
    # how far apart, per layer: max over channels of |Δmean| / reference std and |var ratio - 1|
    gaps = {f"{a} vs {b}": stats_gap(stats[a], stats[b])
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


# ====================================================================== 2. average
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
            "gap": stats_gap(averaged, pooled)}   # per layer: (mean gap in std, variance gap)
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


# ====================================================================== 3. small-batch
def part_small_batch(data, seed, sizes=SMALL_SIZES, samples=SMALL_SAMPLES, epochs=SMALL_EPOCHS, quiet=True):
    """Train from scratch at each batch size (same initial weights, same samples, same epochs) and
    score the test set three ways: batch statistics of test batches of that size (training mode),
    the EMA (eval mode) and population statistics (paper estimator, batches of SMALL_RECAL)."""
    X, y = subset(data["X_train"], data["y_train"], samples)
    X_test, y_test = data["X_test"], data["y_test"]
    rows = {}
    for size in sizes:
        mg.manual_seed(seed)
        model = train_cnn.build_model("mnist1d", "cnn", "fused")
        optimizer = mg.optim.AdamW(model.parameters(), lr=LR)
        t0 = time.perf_counter()
        fit(model, optimizer, X, y, size, epochs, seed, f"batch {size}", quiet)
        seconds = time.perf_counter() - t0
        population = recalibrated(model, X, y, SMALL_RECAL, "paper", seed)
        rows[size] = {"batch stats": batch_stats_accuracy(model, X_test, y_test, size, seed),
                      "EMA": test_accuracy(model, X_test, y_test),
                      "population": test_accuracy(population, X_test, y_test),
                      "gap": stats_gap(model, population), "mean_var_gap": mean_var_gap(model, population),
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


# ====================================================================== 4. finetune
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
            "updating_gap": stats_gap(updated, own), "updating_recalibrated": test_accuracy(own, X_test, y_test)}


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


# ====================================================================== helpers
def fit(model, optimizer, X, y, batch_size, epochs, seed, desc, quiet, start=0, lr=LR, cosine=True,
        after_epoch=None):
    """Train epochs start+1..epochs (common.train_epoch) with lr on train_cnn's cosine schedule
    over ``epochs`` (or constant); the loader serves epoch k's order from (seed, k) alone, so a run
    continued from ``start`` shuffles as an uninterrupted one would."""
    config = {"schedule": "cosine" if cosine else "constant", "lr": lr, "epochs": epochs}
    loader = DataLoader(X, y, batch_size, shuffle=True, seed=seed)
    loader.set_epoch(start)
    with common.progress((epochs - start) * len(loader), desc, quiet) as bar:
        for epoch in range(start + 1, epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = train_cnn.learning_rate(config, epoch)
            common.train_epoch(model, optimizer, loader, bar)
            if after_epoch is not None:
                after_epoch(epoch)


def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def running_buffers(model):
    return [a for m in bn_layers(model) for a in (m.running_mean, m.running_var, m.num_batches_tracked)]


def recalibrated(model, X, y, batch_size, estimator, seed):
    """A copy of ``model`` with population statistics over (X, y) in shuffled batches of
    ``batch_size`` (nn.recompute_bn_stats); the model itself is left alone."""
    copied = copy.deepcopy(model)
    nn.recompute_bn_stats(copied, DataLoader(X, y, batch_size, shuffle=True, seed=seed), estimator=estimator)
    return copied


def test_accuracy(model, X, y):
    """Eval mode: batch norm normalises with the model's running statistics."""
    return common.evaluate(model, X, y)[1]


def batch_stats_accuracy(model, X, y, batch_size, seed):
    """Accuracy when every batch of ``batch_size`` is normalised by its own statistics (training
    mode, no_grad) on a copy, whose running statistics that updates are thrown away."""
    copied, correct = copy.deepcopy(model), 0
    with mg.no_grad(), mg.train_mode():
        for xb, yb in DataLoader(X, y, batch_size, shuffle=True, seed=seed):
            correct += int((copied(mg.tensor(xb)).data.argmax(axis=1) == yb).sum())
    return correct / len(y)


def stats_gap(model, reference):
    """Per BN layer, over its channels: (max |mean difference| in the reference's standard
    deviations, max |variance ratio - 1|) between the two models' running statistics."""
    return [(float(np.max(np.abs(a.running_mean - b.running_mean) / np.sqrt(b.running_var))),
             float(np.max(np.abs(a.running_var / b.running_var - 1))))
            for a, b in zip(bn_layers(model), bn_layers(reference))]


def mean_var_gap(model, reference):
    """Mean over every BN channel of |variance ratio - 1|."""
    return float(np.mean(np.concatenate([np.abs(a.running_var / b.running_var - 1)
                                         for a, b in zip(bn_layers(model), bn_layers(reference))])))


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


def average_checkpoints(a, b):
    """A model whose every parameter and floating-point buffer (running statistics) is the mean of
    a's and b's: what weight averaging does to a network that carries its statistics along."""
    averaged = copy.deepcopy(a)
    sa, sb = a.state_dict(), b.state_dict()
    averaged.load_state_dict({k: (sa[k] + sb[k]) / 2 if sa[k].dtype.kind == "f" else sa[k] for k in sa})
    return averaged


def subset(X, y, n):
    """A fixed random subset of n rows (SUBSET_SEED) in their original order; all if n >= len(y)."""
    if n >= len(y):
        return X, y
    keep = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(y))[:n])
    return X[keep], y[keep]


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


def samples(fraction, n_test=1000):
    """An accuracy difference as a count of test samples (1000 of them: 0.1 point each)."""
    return int(round(abs(fraction) * n_test))


def print_lines(lines):
    for line in lines:
        print("  " + line)
    return lines


def describe_stats(name, n_train):
    return {"EMA": f"running (EMA, momentum {MOMENTUM})", "paper": f"paper (Alg. 2), batches of {RECAL_BATCH}",
            "pooled": f"pooled (PreciseBN), batches of {RECAL_BATCH}",
            "exact": f"exact (pooled, one batch of {n_train})"}[name]


# ====================================================================== figures
def caption(args, data, part, what):
    """Data, model, seed and the part's setup, then the command that made the figure."""
    base = (f"base model: AdamW lr {LR:g} cosine, batch {BATCH}, {args.epochs} epochs, " if part != "small-batch"
            else "")
    return (f"MNIST-1D (train_cnn.py's split: {len(data['y_train'])} train / {len(data['y_test'])} test), its CNN "
            f"(3 x Conv1d+BN+ReLU, Linear); {base}seed {args.seed}. {what}\n"
            f"python examples/bn_after_training.py --part {args.part} --seed {args.seed} --epochs {args.epochs} "
            f"--plot {args.plot}")


def save(fig, plt, path, text):
    """The caption under the axes, wrapped to the figure's width, then the PNG."""
    width_in, height_in = fig.get_size_inches()
    lines = [line for paragraph in text.split("\n") for line in textwrap.wrap(paragraph, int(14 * width_in))]
    fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, (0.15 * len(lines) + 0.1) / height_in, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def plot_estimators(r, path, text):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    layers = np.arange(1, len(r["positions"]) + 1)
    width = 0.8 / len(r["gaps"])
    for i, (pair, per_layer) in enumerate(r["gaps"].items()):
        axes[0].bar(layers + (i - 1) * width, [100 * v for _, v in per_layer], width, label=pair)
    axes[0].set_xticks(layers, [f"BN {i}" for i in layers])
    axes[0].set_xlabel(f"batch-norm layer (recalibrated in batches of {RECAL_BATCH})")
    axes[0].set_ylabel("worst channel |variance ratio - 1| (%)")
    axes[0].set_title("How far apart the statistics are")
    axes[0].legend()
    for estimator, style in (("paper", "o-"), ("pooled", "s--")):
        for i in range(len(layers)):
            axes[1].plot(r["sizes"], [r["by_size"][(estimator, s)]["var_ratio"][i] for s in r["sizes"]], style,
                         color=f"C{i}", label=f"{estimator}, BN {i + 1}")
        axes[2].plot(r["sizes"], [r["by_size"][(estimator, s)]["accuracy"] for s in r["sizes"]], style,
                     label=f"recomputed, {estimator}")
    axes[1].axhline(1, color="gray", lw=0.8)
    axes[2].axhline(r["accuracy"]["EMA"], color="gray", ls=":", label="running (EMA)")
    axes[2].axhline(r["accuracy"]["exact"], color="k", ls="-.", lw=0.8, label=f"exact (one batch of {r['n_train']})")
    for ax in axes[1:]:
        ax.set_xscale("log")
        ax.set_xticks(r["sizes"], [str(s) for s in r["sizes"]])
        ax.minorticks_off()
        ax.set_xlabel("recalibration batch size (samples, log scale)")
        ax.legend(fontsize=8)
    axes[1].set_ylabel("variance / exact variance (mean over channels)")
    axes[1].set_title("Both depend on the batch size (BN 1: only the paper's)")
    accs = [v["accuracy"] for v in r["by_size"].values()] + list(r["accuracy"].values())
    axes[2].set_ylim(min(accs) - 0.01, max(accs) + 0.01)
    axes[2].set_ylabel("test accuracy (fraction; 1 sample = 0.001)")
    axes[2].set_title("Test accuracy with each")
    fig.suptitle("Running (EMA) vs recomputed population statistics after training")
    save(fig, plt, path, text)


def plot_average(r, path, text):
    plt = common.pyplot()
    fig, (ax, ax_fork) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [2.2, 1]})
    labels = {"A": "checkpoint A alone", "B": f"checkpoint B alone (epoch {r['epochs']})",
              "averaged stats": "average, averaged running statistics",
              "recalibrated, paper": "average, recalibrated (paper)",
              "recalibrated, pooled": "average, recalibrated (pooled)"}
    styles = {"A": "o:", "B": "-", "averaged stats": "s-", "recalibrated, paper": "^-", "recalibrated, pooled": "v--"}
    epochs = r["checkpoints"]
    for column in AVERAGE_COLUMNS:
        ax.plot(epochs, [r["rows"][f"epoch {e}"][column] for e in epochs], styles[column], label=labels[column])
    ax.set_xticks(epochs)
    ax.set_xlabel(f"epoch of checkpoint A (averaged with B, the end of the same run)")
    ax.set_ylabel("test accuracy (fraction correct)")
    ax.set_title("Averaging an earlier checkpoint with the end")
    ax.legend(fontsize=8)
    fork = r["rows"][f"fork at {r['half']}"]
    bars = ax_fork.bar(range(len(AVERAGE_COLUMNS)), [fork[c] for c in AVERAGE_COLUMNS],
                       color=[f"C{i}" for i in range(len(AVERAGE_COLUMNS))])   # the left panel's colours
    ax_fork.bar_label(bars, fmt="%.3f", fontsize=8)
    ax_fork.set_xticks(range(len(AVERAGE_COLUMNS)), ["A", "B", "avg\nstats", "recal\npaper", "recal\npooled"])
    low = min(fork[c] for c in AVERAGE_COLUMNS)
    ax_fork.set_ylim(max(0, low - 0.05), min(1, max(fork[c] for c in AVERAGE_COLUMNS) + 0.02))
    ax_fork.set_xlabel("model")
    ax_fork.set_ylabel("test accuracy (fraction correct)")
    ax_fork.set_title(f"A = a fork of the run at epoch {r['half']}, trained to {r['epochs']}\n"
                      f"(colours: the legend on the left)", fontsize=10)
    fig.suptitle("Weight averaging within one run: averaged running statistics vs recalibrated ones")
    save(fig, plt, path, text)


def plot_small_batch(r, path, text):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    sizes = sorted(r["rows"])
    for column, style in zip(SMALL_COLUMNS, ("^:", "o-", "s--")):
        label = {"batch stats": "batch statistics (test batches of the training size)",
                 "EMA": "running statistics (EMA, eval mode)",
                 "population": f"population statistics (paper, batches of {SMALL_RECAL})"}[column]
        ax.plot(sizes, [r["rows"][s][column] for s in sizes], style, label=label)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training batch size (samples, log scale)")
    ax.set_ylabel("test accuracy (fraction correct)")
    ax.set_title(f"Trained from scratch with small batches ({r['epochs']} epochs): which statistics at inference",
                 fontsize=11)
    ax.legend()
    save(fig, plt, path, text)


def plot_finetune(r, path, text):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    epochs = np.arange(r["epochs"] + 1)
    for (name, curve), style in zip(r["curves"].items(), ("o-", "s--", "^-")):
        ax.plot(epochs, curve, style, label=name)
    ax.axhline(r["original"], color="gray", ls=":", label="base model on the unshifted test set")
    ax.set_xticks(epochs)
    ax.set_xlabel("fine-tuning epoch (0: before fine-tuning)")
    ax.set_ylabel("shifted test accuracy (fraction correct)")
    ax.set_title(f"Fine-tuning on x' = {SHIFT_SCALE}x + {SHIFT_OFFSET} in batches of {r['batch_size']}: "
                 f"BN updating vs frozen", fontsize=11)
    ax.legend()
    save(fig, plt, path, text)


def plot_fold(r, path, text):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    names = list(r["diffs"])
    bars = axes[0].bar(range(len(names)), [r["diffs"][n] for n in names], color=["C0", "C1", "C3"],
                       label=["eval mode, float64", "eval mode, float32", "training mode (original: batch stats)"])
    axes[0].bar_label(bars, fmt="%.1e", fontsize=8)
    axes[0].set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("max |logit difference| (logits, log scale)")
    axes[0].set_xlabel("mode and dtype (1000 test samples)")
    axes[0].set_title("Folded vs original")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[0].set_ylim(min(r["diffs"].values()) / 100, max(r["diffs"].values()) * 1e3)
    for ax, key, unit, title in ((axes[1], "nodes", "graph nodes per eval forward", "Graph of one eval forward"),
                                 (axes[2], "ms", "median time per eval batch of 100 (ms)",
                                  "Time per eval batch (no_grad)")):
        values = [r[key]["original"], r[key]["folded"]]
        bars = ax.bar(["original", "folded"], values, color=["C0", "C2"], label=["original", "folded"])
        ax.bar_label(bars, fmt="%d" if key == "nodes" else "%.3f")
        ax.set_ylim(0, max(values) * 1.2)
        ax.set_ylabel(unit)
        ax.set_xlabel("model")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("fold_batch_norm: the same function in eval mode, fewer nodes, less time")
    save(fig, plt, path, text)


# ====================================================================== command line
def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--part", type=common.choice("all", *PARTS), default="all",
                   help="which part to run: all, " + ", ".join(PARTS))
    p.add_argument("--seed", type=common.number(int, 0), default=0, help="initial weights and shuffling")
    p.add_argument("--epochs", type=common.number(int, 2), default=30,
                   help="epochs of the base model (parts 1, 2, 4, 5); small-batch trains its own, "
                        f"{SMALL_EPOCHS} epochs per batch size")
    p.add_argument("--plot", metavar="DIR", default=None,
                   help=f"write one PNG per part into this existing folder (needs matplotlib: {common.PLOT_HINT})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def check_plot_folder(parser, args):
    """--plot DIR must be an existing folder and matplotlib installed; checked before any work."""
    if args.plot is None:
        return
    if not os.path.isdir(args.plot):
        parser.error(f"--plot: {args.plot!r} is not an existing folder")
    if not common.have_matplotlib():
        parser.error(f"--plot needs matplotlib ({common.PLOT_HINT})")


# part -> (file name, plot function, the part's setup for the caption, from its numbers)
FIGURES = {"estimators": ("bn_estimators.png", plot_estimators,
                          lambda r: f"Recalibrated on the training set: left in batches of {RECAL_BATCH}, middle and "
                                    f"right in batches of {', '.join(map(str, r['sizes']))}; exact: one batch of all "
                                    f"{r['n_train']}."),
           "average": ("bn_average.png", plot_average,
                       lambda r: f"Checkpoints of one run, weights and running statistics averaged; the fork is "
                                 f"trained from epoch {r['half']} to {r['epochs']} with shuffling seed + 1."),
           "small-batch": ("bn_small_batch.png", plot_small_batch,
                           lambda r: f"Trained from scratch at each batch size on {r['samples']} training samples: "
                                     f"AdamW lr {LR:g} cosine over {r['epochs']} epochs, the same initial weights."),
           "finetune": ("bn_finetune.png", plot_finetune,
                        lambda r: f"Fine-tuned on {r['samples']} shifted training samples, batch {r['batch_size']}, "
                                  f"AdamW lr {r['lr']:g} constant."),
           "fold": ("bn_fold.png", plot_fold,
                    lambda r: f"Timing: {r['repeats']} interleaved rounds, 1 BLAS thread, 2-core machine.")}
PRINTERS = {"estimators": print_estimators, "average": print_average, "small-batch": print_small_batch,
            "finetune": print_finetune, "fold": print_fold}


def main(argv=None):
    """Run the study; returns {"config", "base_test_acc", part: {its numbers, "conclusion"}, "seconds"}."""
    parser = make_parser()
    args = parser.parse_args(argv)
    check_plot_folder(parser, args)
    parts = PARTS if args.part == "all" else (args.part,)
    X_train, y_train, _, _, X_test, y_test = train_cnn.load("mnist1d", "cnn", False)
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    result = {"config": {"part": args.part, "seed": args.seed, "epochs": args.epochs}, "seconds": {}}
    print(f"MNIST-1D: {len(y_train)} train / {len(y_test)} test; train_cnn.py's CNN with BatchNorm1d "
          f"(momentum {MOMENTUM}), AdamW lr {LR:g} cosine, batch {BATCH}, seed {args.seed}")
    start = time.perf_counter()
    if set(parts) - {"small-batch"}:
        t0 = time.perf_counter()
        base, snapshots = train_base(data, args.epochs, args.seed, args.quiet)
        result["seconds"]["base"] = time.perf_counter() - t0
        result["base_test_acc"] = test_accuracy(base, X_test, y_test)
        print(f"base model: {args.epochs} epochs in {result['seconds']['base']:.1f} s, test accuracy "
              f"{result['base_test_acc']:.4f} (running statistics)")
    for part in parts:
        t0 = time.perf_counter()
        if part == "estimators":
            numbers = part_estimators(base, data, args.seed, RECAL_SIZES)
        elif part == "average":
            numbers = part_average(base, snapshots, data, args.epochs, args.seed, args.quiet)
        elif part == "small-batch":
            numbers = part_small_batch(data, args.seed, SMALL_SIZES, SMALL_SAMPLES, SMALL_EPOCHS, args.quiet)
        elif part == "finetune":
            numbers = part_finetune(base, data, args.seed, FT_SAMPLES, FT_EPOCHS, FT_BATCH, FT_LR, args.quiet)
        else:
            numbers = part_fold(base, data, FOLD_REPEATS)
        numbers["conclusion"] = PRINTERS[part](numbers)
        result[part] = numbers
        if args.plot is not None:
            name, plot, setup = FIGURES[part]
            plot(numbers, os.path.join(args.plot, name), caption(args, data, part, setup(numbers)))
        result["seconds"][part] = time.perf_counter() - t0
    result["seconds"]["total"] = time.perf_counter() - start
    print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    return result


if __name__ == "__main__":
    main()
