"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for nested dicts of arrays, as one .npz.

Never pickle: object arrays are refused on save and ``allow_pickle=False`` on load. Writes are
atomic: a temporary file in the same folder is fsynced and then renamed over ``path``, so a
crash leaves either the old checkpoint or the new one, never half of one.
"""
import os
import tempfile
import zipfile

import numpy as np

from .tensor import Tensor

SEP = "/"                      # nested keys are flattened to "model/0.weight"
FORMAT_KEY = "__minigrad__"    # marks our files; a foreign .npz is refused
FORMAT = "checkpoint-1"


def save(obj, path):
    """Write ``obj`` (a dict of arrays, numbers, Tensors or nested dicts) to exactly ``path``."""
    if not isinstance(obj, dict):
        raise TypeError(f"save expects a dict (e.g. a state_dict), got {type(obj).__name__}")
    flat = {FORMAT_KEY: np.array(FORMAT)}
    _flatten(obj, "", flat)
    clash = sorted(set(flat) & {"file", "allow_pickle"})
    if clash:  # np.savez's own parameter names: "file" raises, "allow_pickle" would be dropped silently
        raise ValueError(f"save: top-level key(s) {clash} clash with np.savez's parameters; nest them "
                         f"in a dict (e.g. {{'model': state}})")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **flat)    # a file object: numpy appends no ".npz" suffix
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode of a new file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path):
    """Read a checkpoint written by ``save``: nested dicts of plain ndarrays (numbers as 0-d)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy file holds one array
            raise ValueError("it holds a single .npy array, not an .npz archive")
        with archive:
            flat = {key: archive[key] for key in archive.files}   # eager: read everything now
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as err:
        raise ValueError(f"{path!r} is not a readable minigrad checkpoint (truncated, corrupt or "
                         f"not an .npz file): {err}") from None
    if not isinstance(flat, dict) or str(flat.pop(FORMAT_KEY, "")) != FORMAT:
        raise ValueError(f"{path!r} is an .npz file but not a minigrad checkpoint (no {FORMAT_KEY!r} marker)")
    nested = {}
    for key, value in flat.items():
        *parents, leaf = key.split(SEP)
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _flatten(obj, prefix, out):
    for key, value in obj.items():
        key = str(key)
        if SEP in key or not key:
            raise ValueError(f"save: key {prefix + key!r} is empty or contains {SEP!r}")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + SEP, out)
            continue
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, (np.ndarray, np.generic, int, float, bool, tuple, list)):
            raise TypeError(f"save: {name!r} is a {type(value).__name__}; only arrays, numbers and "
                            f"dicts of them can be saved (no pickling)")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"save: {name!r} is an object array, which would need pickle; refused")
        out[name] = array
