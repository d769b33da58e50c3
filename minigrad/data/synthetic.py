"""Synthetic data sets, generated from a seed: interleaved spirals."""
import numpy as np

from ..checks import check_int, check_real


def make_spirals(n_per_class=100, classes=3, noise=0.2, seed=0):
    """Interleaved spiral arms, one per class: a small 2-D set no linear model can separate.

    Returns ``X`` float32 (n_per_class * classes, 2), within about [-1, 1], and ``y`` int64,
    grouped by class (0, 0, ..., 1, 1, ...). Arm j starts at the origin with angle offset
    2*pi*j/classes and turns 4 radians while its radius grows to 1; ``noise`` is the std of
    Gaussian jitter added to the angle. Deterministic for a given ``seed``.
    """
    n_per_class = check_int(n_per_class, "n_per_class", "make_spirals", minimum=1)
    classes = check_int(classes, "classes", "make_spirals", minimum=1)
    seed = check_int(seed, "seed", "make_spirals", minimum=0)
    if not check_real(noise, "noise", "make_spirals") >= 0:        # NaN fails too
        raise ValueError(f"make_spirals: noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)                          # (n,)
    offset = 2 * np.pi * np.arange(classes)[:, None] / classes           # (C, 1)
    angle = offset + 4 * radius + noise * rng.standard_normal((classes, n_per_class))  # (C, n)
    X = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=-1)  # (C, n, 2)
    y = np.repeat(np.arange(classes, dtype=np.int64), n_per_class)
    return X.reshape(-1, 2).astype(np.float32), y
