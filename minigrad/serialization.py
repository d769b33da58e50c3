"""Checkpoints: ``save(obj, path)`` writes a dict, ``load(path)`` gives the same dict back.

A checkpoint is a zip file (an .npz, which numpy can also open) with each array as an .npy
member ``0.npy``, ``1.npy``, ...; ``tree.json``, the nesting (dicts with str or int keys, lists,
tuples, Python numbers, strings and None, arrays by member number); and ``checksum.sha256``, a digest of
every other member that ``load`` verifies first, so a damaged file is refused and never loads
as different data. Never pickle. Writes are atomic (a temporary file in the same folder,
fsynced, renamed over ``path``), and everything is checked before it is created.
"""
import hashlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from .checks import is_int
from .tensor import Tensor

FORMAT = "minigrad-checkpoint-2"
TREE, CHECKSUM = "tree.json", "checksum.sha256"
EARLIER_FORMAT = "__minigrad__.npy"      # checkpoint-1: keys as strings, lists as arrays or dicts


def save(obj, path):
    """Write the dict ``obj`` to exactly ``path``. Values may be arrays, Tensors (saved as their
    arrays), numpy scalars, Python ints, floats, bools, strings and None, and dicts (str or int
    keys), lists and tuples of them, nested freely. ``load`` returns the same nesting with the
    same types, Tensors as arrays. Anything else (objects, sets) is a TypeError naming its key."""
    if not isinstance(obj, dict):
        raise TypeError(f"save expects a dict (e.g. a state_dict), got {type(obj).__name__}")
    arrays = []
    tree = _encode(obj, "", arrays, set())
    members = {TREE: json.dumps({"format": FORMAT, "tree": tree}).encode()}
    for i, array in enumerate(arrays):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        members[f"{i}.npy"] = buffer.getvalue()
    members[CHECKSUM] = _digest(members)
    _write_atomically(members, _file_path(path))


def load(path):
    """Read a checkpoint written by ``save``: the dict that was saved (arrays as writable
    ndarrays). A missing file is FileNotFoundError; a file that is damaged, truncated, foreign
    or not a minigrad checkpoint is ValueError, always, before anything is returned."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    with open(path, "rb") as f:               # a folder or an unreadable file: their own OSError
        raw = f.read()
    try:                                      # zipfile reports damage as BadZipFile, and also as
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:   # NotImplementedError (a flipped
            infos = archive.infolist()        # compression method), RuntimeError ("encrypted"),
            members = {info.filename: archive.read(info) for info in infos}  # EOFError, zlib.error..
    except Exception as err:                  # noqa: BLE001 - every one of them means "damaged"
        raise ValueError(f"{path!r} is not a readable minigrad checkpoint (truncated, damaged or not "
                         f"a zip/.npz file): {type(err).__name__}: {err}") from None
    if TREE not in members:
        raise ValueError(f"{path!r} was written by an earlier minigrad (format checkpoint-1), which this "
                         f"version does not read; numpy.load(path) still gives its arrays"
                         if EARLIER_FORMAT in members else
                         f"{path!r} is a zip/.npz file but not a minigrad checkpoint (no {TREE!r})")
    checksum = members.pop(CHECKSUM, None)
    if len(members) + (checksum is not None) != len(infos) or checksum != _digest(members):
        raise ValueError(f"{path!r} is damaged: its contents do not match its checksum")
    try:                                      # only a hand-made file with a valid checksum gets here
        header = json.loads(members.pop(TREE))
        if header["format"] != FORMAT:
            raise ValueError(f"format {header['format']!r}")
        arrays = [np.lib.format.read_array(io.BytesIO(members[f"{i}.npy"]), allow_pickle=False)
                  for i in range(len(members))]
        return _decode(header["tree"], arrays)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as err:
        raise ValueError(f"{path!r} is not a well-formed minigrad checkpoint: {err}") from None


# ------------------------------------------------------------------ the tree: Python <-> JSON
def _encode(value, name, arrays, inside):
    """``value`` as JSON: numbers as themselves, a list as a list, {"dict": [[key, value], ...]},
    {"tuple": [...]}, {"array": i} / {"scalar": i} for arrays[i]. Checks every value."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in inside:
            raise ValueError(f"save: {name or 'the dict'!r} contains itself")
        inside = inside | {id(value)}
        if isinstance(value, dict):
            return {"dict": [[_key(key, name), _encode(item, f"{name}/{key}" if name else str(key), arrays, inside)]
                             for key, item in value.items()]}
        items = [_encode(item, f"{name}[{i}]", arrays, inside) for i, item in enumerate(value)]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (np.ndarray, np.generic)):      # before float: np.float64 is a float
        if value.dtype.hasobject:
            raise TypeError(f"save: {name!r} is an object array, which would need pickle; refused")
        arrays.append(np.asarray(value))
        return {"array" if isinstance(value, np.ndarray) else "scalar": len(arrays) - 1}
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise TypeError(f"save: {name!r} is a {type(value).__name__}; a checkpoint holds arrays, Tensors, "
                    f"numbers, bools, strings, None, and dicts, lists and tuples of them (no pickling)")


def _key(key, name):
    if type(key) is str or is_int(key):
        return key if type(key) is str else int(key)
    raise TypeError(f"save: {name or 'the top level'!r} has the key {key!r} ({type(key).__name__}); "
                    f"keys must be str or int")


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(item, arrays) for item in node]
    if not isinstance(node, dict):      # bool, int, float, str, None: json gives no other type
        return node
    ((kind, value),) = node.items()
    if kind == "dict":
        if not all(type(key) in (str, int) for key, _ in value):
            raise TypeError("a key that is neither str nor int")
        return {key: _decode(item, arrays) for key, item in value}
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in value)
    if kind not in ("array", "scalar") or type(value) is not int or not 0 <= value < len(arrays):
        raise ValueError(f"unexpected node {node!r}")
    return arrays[value] if kind == "array" else arrays[value][()]


def _digest(members):
    """SHA-256 of every member's name, length and bytes, in name order, as hex bytes."""
    digest = hashlib.sha256()
    for name in sorted(members):
        data = members[name]
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest().encode()


# ------------------------------------------------------------------ the file
def _file_path(path):
    """``path`` as a str, refused (naming it) if it cannot be a file in an existing folder."""
    path = os.fsdecode(os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):    # else mkstemp's error would name a temporary file
        error = NotADirectoryError if os.path.exists(folder) else FileNotFoundError
        raise error(f"save: the folder {folder!r} (of {path!r}) " +
                    ("is not a folder" if os.path.exists(folder) else "does not exist"))
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise IsADirectoryError(f"save: {path!r} is a folder; give the checkpoint a file name")
    return path


def _write_atomically(members, path):
    """Write the zip to a temporary file beside ``path``, fsync it, rename it over ``path``;
    an OSError names ``path`` (not the temporary file), which is removed."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                   prefix="." + os.path.basename(path)[:100] + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as archive:          # stored, not compressed
                for name, data in members.items():            # a fixed date: same dict, same bytes
                    archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode of a new file
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise type(err)(*((err.errno, f"save: cannot write {path!r}: {err.strerror}")
                              if err.errno is not None else (f"save: cannot write {path!r}: {err}",))) from err
        raise
