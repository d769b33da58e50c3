"""The bundled 8x8 handwritten digits (UCI optdigits; source and licence in README.md here)."""
import gzip
import importlib.resources

import numpy as np


def load_digits():
    """The bundled 8x8 digits (UCI optdigits, test part; see minigrad/data/README.md).

    Returns ``X`` float32 (1797, 64), pixel counts 0..16 divided by 16 so values lie in [0, 1]
    and are multiples of 1/16, and ``y`` int64 (1797,), labels 0..9 (about 180 of each).
    Reads the package data on every call (about 20 ms) rather than caching a mutable array.
    """
    resource = importlib.resources.files("minigrad.data").joinpath("digits.csv.gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)    # (1797, 65)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"digits.csv.gz: expected rows of 65 integers, got shape {table.shape}")
    X = table[:, :64].astype(np.float32) / np.float32(16)          # (1797, 64) in [0, 1]
    y = table[:, 64].copy()                                        # (1797,) int64
    return X, y


