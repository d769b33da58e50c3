"""The small-batch study's tables (markdown, so docs can paste them as printed) and its reading
against the two papers, every sentence computed from the numbers it is given.

Invariant: nothing here trains or scores; ``results`` is small_batches.run()'s
{row: {(size, classes): [per seed: {"test", "train_mode", "gap", "steps", "batch", "seconds"}]}}.
"""
import numpy as np

NAMES = {"batch": "BatchNorm", "renorm": "BatchRenorm", "renorm-0.01": "BatchRenorm, momentum 0.01",
         "group": "GroupNorm (5 groups)", "layer": "LayerNorm (C, L)", "none": "none"}
RENORMS = ("renorm", "renorm-0.01")
PER_SAMPLE = ("group", "layer", "none")     # statistics per sample: the batch cannot matter


def heading(condition):
    """The column of a condition: "b = 8", or "2 classes per batch"."""
    size, classes = condition
    return f"b = {size}" if classes is None else f"{classes} classes per batch"


def values(results, norm, condition, key):
    return np.array([run[key] for run in results[norm][condition]])


def spread(array, scale, signed=False):
    """mean (min-max) of ``array`` · scale: "91.2 (90.1-92.0)"; signed: "-6.1 (-7.0..-5.2)"."""
    a = array * scale
    if signed:
        return f"{a.mean():+.1f} ({a.min():+.1f}..{a.max():+.1f})"
    return f"{a.mean():.1f} ({a.min():.1f}-{a.max():.1f})"


def table(results, config, title, key, cell):
    conditions = config["conditions"]
    lines = [f"| {title} | " + " | ".join(heading(c) for c in conditions) + " |",
             "|---|" + "---:|" * len(conditions)]
    for norm in results:
        lines.append(f"| {NAMES[norm]} | " + " | ".join(cell(values(results, norm, c, key)) for c in conditions)
                     + " |")
    return lines


def tables(results, config):
    """The three tables as lines: test accuracy, the training-mode gap, seconds per epoch."""
    seeds = ",".join(map(str, config["seeds"]))
    return (table(results, config, f"test accuracy, % (eval mode), seeds {seeds}: mean (min-max)", "test",
                  lambda a: spread(a, 100))
            + [""] + table(results, config, "training mode minus eval mode, points", "gap",
                           lambda a: spread(a, 100, signed=True))
            + [""] + table(results, config, "seconds of training per epoch (mean)", "seconds",
                           lambda a: f"{a.mean():.2f}"))


# ---------------------------------------------------------------------- the reading
def recovered(loss, other, noise):
    """" (60% of BatchNorm's loss recovered)", " (no better)", or "" when BatchNorm's ``loss``
    is within ``noise``: no share of noise is worth stating."""
    if loss <= noise:
        return ""
    if other >= loss:
        return " (no better)"
    if other <= 0:
        return " (all of BatchNorm's loss recovered)"
    return f" ({1 - other / loss:.0%} of BatchNorm's loss recovered)"


def mean(results, norm, condition, key="test"):
    return float(values(results, norm, condition, key).mean())


def rounding_noise(results, config):
    """The largest difference, within one seed, between the test accuracies of a per-sample
    normalisation across conditions: they make the same steps, so only float rounding (sums in
    another order) separates them. A fraction of the test set, like the accuracies."""
    worst = 0.0
    for norm in PER_SAMPLE:
        if norm in results:
            per_seed = np.array([values(results, norm, c, "test") for c in config["conditions"]])
            worst = max(worst, float(np.ptp(per_seed, axis=0).max()))      # (conditions, seeds) -> seeds
    return worst


def seed_spread(results, config):
    """The largest max-min over seeds of any cell's test accuracy."""
    return max(float(np.ptp(values(results, norm, c, "test"))) for norm in results for c in config["conditions"])


def reading(results, config):
    """What the numbers say about Ioffe's claim (BatchRenorm recovers most of batch norm's
    small-batch and non-i.i.d. loss) and Wu & He's (GroupNorm's accuracy does not depend on the
    batch size), as lines."""
    iid = [c for c in config["conditions"] if c[1] is None]
    non_iid = [c for c in config["conditions"] if c[1] is not None]
    largest, smallest = max(iid), min(iid)
    noise, seeds = rounding_noise(results, config), seed_spread(results, config)
    n_test = config["n_test"]
    renorms = [r for r in RENORMS if r in results]
    lines = []

    def significant(*cells):
        """A difference larger than these BatchNorm cells' spread over seeds and the rounding noise."""
        return max([noise] + [float(np.ptp(values(results, "batch", c, "test"))) for c in cells])

    if "batch" in results and renorms:
        top = mean(results, "batch", largest)
        parts = []
        for c in (c for c in iid if c != largest):
            bn = top - mean(results, "batch", c)
            parts.append(f"{heading(c)}: BatchNorm -{100 * bn:.1f}, " + ", ".join(
                f"{NAMES[r]} {-100 * (top - mean(results, r, c)):+.1f}"
                + recovered(bn, top - mean(results, r, c), significant(c, largest)) for r in renorms))
        lines.append(f"Small batches, in points against BatchNorm at {heading(largest)} ({100 * top:.1f}%): "
                     + "; ".join(parts) + ".")
        for c in non_iid:
            size = mean(results, "batch", c, "batch")      # the class batches' mean size
            reference = min(iid, key=lambda s: abs(np.log(s[0] / size)))     # the nearest i.i.d. size
            drop = {r: mean(results, r, reference) - mean(results, r, c) for r in ["batch"] + renorms}
            lines.append(f"{heading(c).capitalize()} (about {size:.0f} samples each) against i.i.d. "
                         f"{heading(reference)}: BatchNorm loses {100 * drop['batch']:.1f} points, "
                         + ", ".join(f"{NAMES[r]} {100 * drop[r]:.1f}"
                                     + recovered(drop["batch"], drop[r], significant(c, reference)) for r in renorms)
                         + f"; BatchNorm's training mode is {100 * mean(results, 'batch', c, 'gap'):+.1f} points "
                           f"from its eval mode there.")
        worst = max(abs(mean(results, r, c, "gap")) for r in renorms for c in config["conditions"])
        worst_bn = max(abs(mean(results, "batch", c, "gap")) for c in config["conditions"])
        why = ("r and d inside their final bounds make its training forward the eval formula, as the paper "
               "designed it" if worst <= 0.5 / 100 else "r or d still meet their bounds (clipped: not the eval "
               "formula)")
        lines.append(f"BatchRenorm's training mode is at most {100 * worst:.1f} points (mean) from its eval mode "
                     f"in every condition ({why}); BatchNorm's gap reaches {100 * worst_bn:.1f} points.")
    per_sample = [n for n in PER_SAMPLE if n in results]
    if per_sample:
        gaps = max(abs(r["gap"]) for n in per_sample for c in config["conditions"] for r in results[n][c])
        lines.append(f"{', '.join(NAMES[n] for n in per_sample)}: within a seed the conditions differ by at "
                     f"most {round(noise * n_test)} of {n_test} test samples (the same steps, float sums in "
                     f"another order), against a spread over seeds of up to {100 * seeds:.1f} points: "
                     f"independent of the batch, by construction; their train-eval gap is at most "
                     f"{100 * gaps:.1f} points.")
    if "batch" in results:
        ahead = [f"{NAMES[n]} {100 * (mean(results, 'batch', largest) - mean(results, n, largest)):+.1f}"
                 for n in results if n != "batch"]
        lines.append(f"At {heading(largest)}, BatchNorm's lead: " + ", ".join(ahead) + " points.")
    first = next(iter(results))
    cost = mean(results, first, smallest, "seconds") / mean(results, first, largest, "seconds")
    lines.append(f"Time: an epoch in batches of {smallest[0]} takes {cost:.0f}x as long as in batches of "
                 f"{largest[0]} ({NAMES[first]}): {config['step'] // smallest[0]} forward and backward calls per "
                 f"step instead of {max(1, config['step'] // largest[0])}, each mostly Python overhead at these "
                 f"sizes.")
    return [line for line in lines if line]


def print_report(results, config):
    """Print the tables and the reading; return the reading's lines."""
    print()
    for line in tables(results, config):
        print(line)
    lines = reading(results, config)
    print()
    for line in lines:
        print("- " + line)
    return lines
