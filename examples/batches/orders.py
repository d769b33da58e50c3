"""Which samples form each batch: an epoch's optimizer steps (an i.i.d. order cut into steps of
``step`` samples) and, within each step, the batches the normalisation layers see: consecutive
parts of ``size`` samples (i.i.d.), or the step's samples grouped by class, ``classes`` classes
to a batch (non-i.i.d.).

Invariant: a step's samples depend on (seed, epoch) and the data alone, never on the condition,
so every normalisation and every condition, i.i.d. or not, makes the same optimizer steps on the
same samples; only who shares a normalisation batch with whom differs.
"""
import numpy as np


def iid_order(n, seed, epoch):
    """Epoch ``epoch``'s (0, 1, ...) permutation of range(n), from a generator seeded with
    (seed, epoch), as DataLoader(..., seed=seed) draws it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def split(indices, size):
    """``indices`` cut into consecutive parts of ``size``; a last part of ONE index joins the part
    before it (the DataLoader's rule: training-mode batch norm cannot normalise one sample)."""
    parts = [indices[s:s + size] for s in range(0, len(indices), size)]
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [np.concatenate(parts[-2:])]
    return parts


def by_class(indices, y, classes, rng):
    """The samples ``indices`` grouped into batches of ``classes`` classes each: the classes
    present, in random order, taken ``classes`` at a time; each batch holds every sample of its
    classes (a step of 128 has ~13 of each of the 10 classes: batches of ~26 for 2 classes). An
    odd class out joins the last batch. Within a batch, the samples keep their order."""
    labels = y[indices]
    present = rng.permutation(np.unique(labels))
    groups = [present[s:s + classes] for s in range(0, len(present), classes)]
    if len(groups) > 1 and len(groups[-1]) < classes:
        groups[-2:] = [np.concatenate(groups[-2:])]
    return [indices[np.isin(labels, group)] for group in groups]


def steps(y, step, size, classes, seed, epoch):
    """Epoch ``epoch``'s optimizer steps, each a list of its normalisation batches (index arrays
    into y): the i.i.d. order cut into steps of ``step`` samples, then each step cut into parts
    of ``size`` (``classes`` None), or grouped ``classes`` classes to a batch (Ioffe 2017's
    non-i.i.d. case: each normalisation batch from few classes, while the step, and so the
    gradient, stays an i.i.d. sample)."""
    rng = np.random.default_rng([seed, epoch, 1])          # the class pairing's own stream
    return [split(batch, size) if classes is None else by_class(batch, y, classes, rng)
            for batch in split(iid_order(len(y), seed, epoch), step)]
