"""MNIST's IDX file format: ``read_idx`` parses one file, ``load_mnist`` a local MNIST folder.

Nothing is downloaded: point ``load_mnist`` at a folder that holds the four files.
"""
import gzip
import os
import zlib

import numpy as np


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


