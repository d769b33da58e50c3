"""What several parts of the after-training study share: its constants, training (fit), the copies
it scores (recalibrated), test accuracy, test-sample counts, printing and captions (figures are
saved by helpers/plots.py's one saver).

Invariant: only fit changes a model (the one it is asked to train); recalibrated returns a copy
and test_accuracy only reads.
"""
import copy

import numpy as np

import minigrad as mg
from helpers import models, progress
from minigrad import nn
from minigrad.data import DataLoader
from minigrad.nn import functional as F

BATCH, LR, MOMENTUM = 100, 1e-2, 0.1     # train_cnn.py's batch and learning rate; PyTorch's momentum
RECAL_BATCH = 100                         # recalibration batches (training batches, DataLoader)
SUBSET_SEED = 0                           # the subsets are fixed, whatever --seed is


def fit(model, optimizer, X, y, batch_size, epochs, seed, desc, quiet, start=0, lr=LR, cosine=True,
        after_epoch=None):
    """Train epochs start+1..epochs with lr on train_cnn's cosine schedule over ``epochs`` (or
    constant); the loader serves epoch k's order from (seed, k) alone, so a run continued from
    ``start`` shuffles as an uninterrupted one would. One progress bar for the call (its epochs)."""
    config = {"schedule": "cosine" if cosine else "constant", "lr": lr, "epochs": epochs}
    loader = DataLoader(X, y, batch_size, shuffle=True, seed=seed)
    loader.set_epoch(start)
    with progress.run_bar(epochs, desc, quiet, done=start) as bar:
        for epoch in range(start + 1, epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = models.learning_rate(config, epoch)
            with mg.train_mode():
                for xb, yb in progress.batches(loader, f"epoch {epoch}", quiet):
                    loss = F.cross_entropy(model(mg.tensor(xb)), yb)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            bar.update(1)
            if after_epoch is not None:
                after_epoch(epoch)


def recalibrated(model, X, y, batch_size, estimator, seed):
    """A copy of ``model`` with population statistics over (X, y) in shuffled batches of
    ``batch_size`` (nn.recompute_bn_stats); the model itself is left alone."""
    copied = copy.deepcopy(model)
    nn.recompute_bn_stats(copied, DataLoader(X, y, batch_size, shuffle=True, seed=seed), estimator=estimator)
    return copied


def test_accuracy(model, X, y):
    """Eval mode: batch norm normalises with the model's running statistics."""
    with mg.eval_mode(), mg.no_grad():
        return float((model(mg.tensor(X)).data.argmax(axis=1) == y).mean())


def subset(X, y, n):
    """A fixed random subset of n rows (SUBSET_SEED) in their original order; all if n >= len(y)."""
    if n >= len(y):
        return X, y
    keep = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(y))[:n])
    return X[keep], y[keep]


def samples(fraction, n_test=1000):
    """An accuracy difference as a count of test samples (1000 of them: 0.1 point each)."""
    return int(round(abs(fraction) * n_test))


def print_lines(lines):
    for line in lines:
        print("  " + line)
    return lines


# ---------------------------------------------------------------------- figures
def caption(args, data, part, what):
    """Data, model, seed and the part's setup, then the command that made the figure."""
    base = (f"base model: AdamW lr {LR:g} cosine, batch {BATCH}, {args.epochs} epochs, " if part != "small-batch"
            else "")
    return (f"MNIST-1D (train_cnn.py's split: {len(data['y_train'])} train / {len(data['y_test'])} test), its CNN "
            f"(3 x Conv1d+BN+ReLU, Linear); {base}seed {args.seed}, {args.threads or 1} BLAS thread(s). {what}\n"
            f"python examples/bn_after_training.py --part {args.part} --seed {args.seed} --epochs {args.epochs} "
            f"--plot {args.plot}" + (f" --threads {args.threads}" if args.threads else ""))
