"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for nested dicts of arrays, as one .npz.

Never pickle: object arrays are refused on save and ``allow_pickle=False`` on load. Writes are
atomic: a temporary file in the same folder is fsynced and then renamed over ``path``, so a
crash leaves either the old checkpoint or the new one, never half of one. Everything is checked
before the temporary file is created, so a refused ``save`` writes nothing.
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
    """Write ``obj`` to exactly ``path``: a dict whose values are arrays, numbers, Tensors, dicts
    of them, or lists of such dicts (an optimizer's "param_groups"). Keys become strings, and
    ``load`` gives a list of dicts back as a dict keyed "0", "1", ...; an empty dict vanishes."""
    if not isinstance(obj, dict):
        raise TypeError(f"save expects a dict (e.g. a state_dict), got {type(obj).__name__}")
    if FORMAT_KEY in map(str, obj):   # only at the top level: nested, it is "meta/__minigrad__"
        raise ValueError(f"save: the top-level key {FORMAT_KEY!r} is reserved for the format marker; "
                         f"nest it in a dict (e.g. {{'meta': ...}})")
    flat = {}
    _flatten(obj, "", flat)
    clash = sorted(set(flat) & {"file", "allow_pickle"})
    if clash:  # np.savez's own parameter names: "file" raises, "allow_pickle" would be dropped silently
        raise ValueError(f"save: top-level key(s) {clash} clash with np.savez's parameters; nest them "
                         f"in a dict (e.g. {{'model': state}})")
    flat[FORMAT_KEY] = np.array(FORMAT)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):    # else mkstemp's error would name a temporary file
        error = NotADirectoryError if os.path.exists(folder) else FileNotFoundError
        raise error(f"save: the folder {folder!r} (of {path!r}) " +
                    ("is not a folder" if os.path.exists(folder) else "does not exist"))
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
    names = {}                                 # str(key) -> key, to catch {1: a, "1": b}
    for key, value in obj.items():
        if str(key) in names:
            raise ValueError(f"save: the keys {names[str(key)]!r} and {key!r} of "
                             f"{prefix.rstrip(SEP) or 'the top level'!r} are both saved as {str(key)!r}")
        names[str(key)] = key
        key = str(key)
        if SEP in key or not key:
            raise ValueError(f"save: key {prefix + key!r} is empty or contains {SEP!r}")
        name = prefix + key
        if isinstance(value, (list, tuple)) and value and any(isinstance(v, dict) for v in value):
            if not all(isinstance(v, dict) for v in value):
                raise TypeError(f"save: {name!r} mixes dicts with other values; a list can hold "
                                f"numbers (saved as an array) or dicts, not both")
            value = {str(i): v for i, v in enumerate(value)}    # param_groups -> "0", "1", ...
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
