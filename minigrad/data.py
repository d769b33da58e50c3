"""Data for examples and training loops: loaders, a seeded split, and a batch iterator.

Everything here is plain numpy: arrays in, arrays out; nothing touches Tensor or autograd.
Invariant: every random choice comes from a generator built from an explicit seed, never from
numpy's global state, so a run is reproducible from its arguments. Nothing is ever downloaded.
"""
import gzip
import importlib.resources
import numbers
import os
import zlib

import numpy as np

__all__ = ["DataLoader", "load_digits", "load_mnist", "make_spirals", "read_idx",
           "train_val_split"]


def _check_int(name, value, minimum):
    """Return ``value`` as an int if it is an integer >= minimum (bools rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def load_digits():
    """The bundled 8x8 digits (UCI optdigits, test part; see minigrad/datasets/README.md).

    Returns ``X`` float32 (1797, 64), pixel counts 0..16 divided by 16 so values lie in [0, 1]
    and are multiples of 1/16, and ``y`` int64 (1797,), labels 0..9 (about 180 of each).
    Reads the package data on every call (about 20 ms) rather than caching a mutable array.
    """
    resource = importlib.resources.files("minigrad.datasets").joinpath("digits.csv.gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)    # (1797, 65)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"digits.csv.gz: expected rows of 65 integers, got shape {table.shape}")
    X = table[:, :64].astype(np.float32) / np.float32(16)          # (1797, 64) in [0, 1]
    y = table[:, 64].copy()                                        # (1797,) int64
    return X, y


def train_val_split(X, y, val_fraction=0.2, seed=0, stratify=True):
    """Split ``(X, y)`` into ``(X_train, y_train, X_val, y_val)``, seeded and deterministic.

    ``X`` has shape (N, ...) and ``y`` shape (N,); outputs keep their dtypes and trailing
    shape, and each part keeps the original row order. The validation set holds
    ``round(val_fraction * N)`` rows. With ``stratify=True`` every class gives the floor or
    ceiling of ``val_fraction * (its count)`` of them (largest remainders get the ceiling), so
    class proportions match in both parts; otherwise rows are drawn uniformly at random.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim != 1:
        raise ValueError(f"expected X of shape (N, ...) and y of shape (N,), got X {X.shape} "
                         f"and y {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if (isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real)
            or not 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, "
                         f"got {val_fraction!r}")
    seed = _check_int("seed", seed, 0)
    n = len(y)
    n_val = int(round(val_fraction * n))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} of {n} samples gives {n_val} validation "
                         f"and {n - n_val} training samples; both parts need at least one")
    rng = np.random.default_rng(seed)
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        quota = val_fraction * counts                     # exact per-class share, (C,)
        take = np.floor(quota).astype(np.int64)
        # Hand the rows lost to flooring to the largest remainders (stable sort: ties go to
        # the smaller class label), so sum(take) == n_val and each class is off by < 1 row.
        short = n_val - int(take.sum())
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
        val_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                                  for c, k in zip(classes, take)])
    else:
        val_idx = rng.permutation(n)[:n_val]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


class DataLoader:
    """Iterate over ``(X_batch, y_batch)`` numpy arrays, reshuffled every epoch.

    ``X`` has shape (N, ...) and ``y`` shape (N,); each batch is a copy (fancy indexing) of
    shape (B, ...) and (B,) with their dtypes. ``len(loader)`` is the number of batches.

    Epochs: each ``iter()`` call (each ``for`` loop, even one left early) serves epoch
    ``loader.epoch`` and then advances it by one; it starts at 0. Epoch k's order is drawn from
    a generator seeded with ``(seed, k)`` alone, independent of earlier epochs, so to resume a
    run at epoch k call ``loader.set_epoch(k)`` and the batches come out exactly as before.

    Last batch: with ``drop_last=True`` a short final batch is dropped. With ``drop_last=False``
    it is kept, except that a final batch of exactly ONE sample is folded into the previous one
    (9 samples, batch_size 4 -> sizes [4, 5]), because training-mode batch norm cannot
    normalise a single sample (its batch variance is 0). A data set of one sample is an error;
    ``batch_size=1`` still gives one-sample batches, as explicitly asked.
    """

    def __init__(self, X, y, batch_size, shuffle=True, seed=0, drop_last=False):
        self.X, self.y = np.asarray(X), np.asarray(y)
        if self.X.ndim == 0 or self.y.ndim != 1 or len(self.X) != len(self.y):
            raise ValueError(f"expected X of shape (N, ...) and y of shape (N,) with the same N, "
                             f"got X {self.X.shape} and y {self.y.shape}")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.epoch = 0  # the epoch the next iteration will serve
        n = len(self.y)
        if n < 2:
            raise ValueError(f"DataLoader needs at least 2 samples, got {n}: a batch of one "
                             f"sample breaks training-mode batch norm")
        if len(self) == 0:
            raise ValueError(f"drop_last=True with {n} samples and batch_size={batch_size} "
                             f"leaves no batches; lower batch_size or set drop_last=False")

    def _bounds(self):
        """The (start, stop) of each batch within an epoch's order, after the last-batch rule."""
        n, b = len(self.y), self.batch_size
        stops = list(range(b, n + 1, b))               # the full batches
        if n % b and not self.drop_last:
            if n % b == 1 and stops:
                stops[-1] = n                          # fold the lone sample into the last batch
            else:
                stops.append(n)                        # keep the short final batch
        return list(zip([0] + stops[:-1], stops))

    def __len__(self):
        return len(self._bounds())

    def set_epoch(self, epoch):
        """Make the next iteration serve epoch ``epoch`` (e.g. to resume a saved run)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def order(self, epoch):
        """Sample indices of epoch ``epoch`` in serving order, (N,) int64; changes no state."""
        epoch, n = _check_int("epoch", epoch, 0), len(self.y)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        # Draw the order now, not lazily, so the epoch counter moves when the loop starts.
        order = self.order(self.epoch)
        self.epoch += 1
        return ((self.X[order[a:b]], self.y[order[a:b]]) for a, b in self._bounds())


def read_idx(file):
    """Parse one IDX file (the MNIST format) into an ndarray of its stated dtype and shape.

    ``file`` is a path or a binary file object; gzip content is detected by its magic bytes.
    Layout, big-endian: bytes 0-1 zero, byte 2 the dtype code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), byte 3 the number of dims, then
    each dim as uint32, then the values in C order. The result is in native byte order.
    """
    if hasattr(file, "read"):
        name, raw = getattr(file, "name", "<file object>"), file.read()
    else:
        name = os.fspath(file)
        with open(name, "rb") as f:
            raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{name}: looks gzip-compressed but does not decompress: "
                             f"{err}") from err
    if len(raw) < 4:
        raise ValueError(f"{name}: expected a 4-byte IDX magic number, file has {len(raw)} bytes")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise ValueError(f"{name}: bad IDX magic number 0x{raw[:4].hex()}: expected 0x0000, a "
                         f"dtype code in {{08, 09, 0b, 0c, 0d, 0e}}, then the number of dims")
    dtype, ndim = np.dtype(dtypes[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header: {ndim} dims need {header} bytes, "
                         f"file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "size mismatch"
        raise ValueError(f"{name}: {what}: shape {shape} of {dtype.str[1:]} needs {expected} "
                         f"data bytes, found {found}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))       # a writable copy in native byte order


def _find_idx(directory, stem):
    """Path of ``stem`` or ``stem.gz`` in ``directory``; FileNotFoundError lists both tried."""
    tried = [os.path.join(directory, stem), os.path.join(directory, stem + ".gz")]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"MNIST file not found; tried {', '.join(tried)}")


def load_mnist(path, split="train"):
    """Load MNIST (or a look-alike such as Fashion-MNIST) from local IDX files; never downloads.

    ``path`` is a directory holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, each plain
    or gzipped (``.gz``). ``split`` is "train" (60000 images) or "test" (10000, the t10k files).
    Returns ``X`` float32 (N, rows*cols) = (N, 784) for MNIST, pixel bytes / 255 in [0, 1], and
    ``y`` int64 (N,).
    """
    prefixes = {"train": "train", "test": "t10k"}
    if split not in prefixes:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = prefixes[split]
    missing, paths = [], {}
    for kind, stem in (("images", f"{prefix}-images-idx3-ubyte"),
                       ("labels", f"{prefix}-labels-idx1-ubyte")):
        try:
            paths[kind] = _find_idx(path, stem)
        except FileNotFoundError as err:
            missing.append(str(err))
    if missing:
        raise FileNotFoundError("; ".join(missing))
    images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{paths['images']}: expected uint8 images of shape (N, rows, cols) "
                         f"(magic 0x00000803), found {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{paths['labels']}: expected uint8 labels of shape (N,) "
                         f"(magic 0x00000801), found {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"image/label count mismatch: {paths['images']} holds {len(images)} "
                         f"images, {paths['labels']} holds {len(labels)} labels")
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)  # (N, 784)
    return X, labels.astype(np.int64)


def make_spirals(n_per_class=100, classes=3, noise=0.2, seed=0):
    """Interleaved spiral arms, one per class: a small 2-D set no linear model can separate.

    Returns ``X`` float32 (n_per_class * classes, 2), within about [-1, 1], and ``y`` int64,
    grouped by class (0, 0, ..., 1, 1, ...). Arm j starts at the origin with angle offset
    2*pi*j/classes and turns 4 radians while its radius grows to 1; ``noise`` is the std of
    Gaussian jitter added to the angle. Deterministic for a given ``seed``.
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    classes = _check_int("classes", classes, 1)
    seed = _check_int("seed", seed, 0)
    if not isinstance(noise, numbers.Real) or noise < 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)                          # (n,)
    offset = 2 * np.pi * np.arange(classes)[:, None] / classes           # (C, 1)
    angle = offset + 4 * radius + noise * rng.standard_normal((classes, n_per_class))  # (C, n)
    X = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=-1)  # (C, n, 2)
    y = np.repeat(np.arange(classes, dtype=np.int64), n_per_class)
    return X.reshape(-1, 2).astype(np.float32), y
