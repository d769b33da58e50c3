"""mg.save / mg.load: load gives back exactly the dict that was saved (same nesting, keys and
types; Tensors as arrays), in one zip at exactly the given path, written atomically, never
pickled; a damaged, truncated or foreign file is always a ValueError and never loads as
different data (every byte flipped, every length cut)."""
import io
import json
import os
import pathlib
import pickle
import re
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, serialization


def checkpoint():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((3, 2)).astype(np.float32),
                  "0.bias": rng.standard_normal(3).astype(np.float32),
                  "1.running_var": rng.uniform(0.5, 2, 3),                     # float64
                  "1.num_batches_tracked": np.array(7, dtype=np.int64)},        # 0-d int64
        "optimizer": {"state": {0: {"step": np.array(3), "exp_avg": np.arange(6.0).reshape(3, 2)}},
                      "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "nesterov": False,
                                        "params": [0, 1]}, {"lr": 1e-3, "params": []}]},
        "epoch": 12,
        "scale": np.float32(0.5),
        "mask": np.array([True, False]),
        "labels": np.array([3, 1, 2], dtype=np.uint8),
        "name": np.array("sgd"),
        "config": {"optimizer": "adam", "hidden": (128, 64), "momentum": None, "bn": True},
    }


def assert_same(loaded, original, path="obj"):
    """Equal, and of the same types all the way down (Tensors come back as their arrays)."""
    if isinstance(original, mg.Tensor):
        original = original.data
    assert type(loaded) is type(original), f"{path}: {type(loaded).__name__}, not {type(original).__name__}"
    if isinstance(original, dict):
        assert list(loaded) == list(original), path                 # the same keys, in order
        for key, value in original.items():
            assert_same(loaded[key], value, f"{path}[{key!r}]")
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original), path
        for i, (a, b) in enumerate(zip(loaded, original)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(original, (np.ndarray, np.generic)):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape, path
        np.testing.assert_array_equal(loaded, original, err_msg=path)
    else:
        assert loaded == original or (loaded != loaded and original != original), path   # NaN


def folder_listing(path):
    return sorted(os.listdir(os.path.dirname(path)))


# ------------------------------------------------------------------ round trips
def test_round_trip_of_a_nested_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    original = checkpoint()
    mg.save(original, path)
    loaded = mg.load(path)
    assert_same(loaded, original)
    assert loaded["epoch"] == 12 and type(loaded["epoch"]) is int
    assert type(loaded["scale"]) is np.float32
    assert loaded["optimizer"]["param_groups"][0]["params"] == [0, 1]     # a list, not an array
    assert list(loaded["optimizer"]["state"]) == [0]                       # an int key, not "0"


def test_lists_tuples_numbers_and_keys_come_back_as_they_were(tmp_path):
    original = {"ragged": [1, [2, 3], [[4.5]], []], "mixed": [{"x": 1}, 2, (3, np.ones(2)), True],
                "numbers": (0, -1, 2**70, 0.1, -0.0, float("inf"), float("nan"), False),
                1: 1.5, "1": 2, "": {"a/b": {"__minigrad__": 3, "file": 4, "allow_pickle": 5}},
                "empty": {}, "t": (), "np": [np.int64(3), np.float64(0.25), np.bool_(True), np.complex64(1j)],
                "text": ["", "ä/\n\"", {"none": None}], "arrays of text": np.array(["a", "bc"])}
    mg.save(original, tmp_path / "c")
    loaded = mg.load(tmp_path / "c")
    assert_same(loaded, original)
    assert loaded[1] == 1.5 and loaded["1"] == 2                           # two keys, not one
    assert type(loaded["np"][1]) is np.float64 and type(loaded["numbers"][3]) is float


def test_round_trip_of_a_model_state_dict_restores_the_model(tmp_path):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).double()
    x = mg.tensor(np.random.default_rng(1).standard_normal((6, 4)))
    with mg.train_mode():
        model(x)
    mg.save(model.state_dict(), tmp_path / "model")
    mg.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).double()
    loaded = mg.load(tmp_path / "model")
    assert list(loaded) == list(model.state_dict())
    other.load_state_dict(loaded)
    assert other[1].num_batches_tracked == 1 and other[0].weight.dtype == np.float64
    with mg.eval_mode():
        np.testing.assert_array_equal(other(x).data, model(x).data)


def test_tensors_are_saved_as_their_arrays(tmp_path):
    t = mg.tensor(np.array([1.5, 2.5]), requires_grad=True)
    mg.save({"t": t, "p": nn.Parameter(np.ones(2, dtype=np.float32))}, tmp_path / "t")
    loaded = mg.load(tmp_path / "t")
    assert type(loaded["t"]) is np.ndarray and type(loaded["p"]) is np.ndarray
    np.testing.assert_array_equal(loaded["t"], [1.5, 2.5])
    assert loaded["p"].dtype == np.float32


def test_saving_overwrites_an_existing_checkpoint(tmp_path):
    path = tmp_path / "c"
    mg.save({"a": np.zeros(2)}, path)
    mg.save({"b": np.ones(3)}, path)
    assert_same(mg.load(path), {"b": np.ones(3)})


def test_the_same_dict_gives_the_same_bytes(tmp_path):
    mg.save(checkpoint(), tmp_path / "a")
    mg.save(checkpoint(), tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    with zipfile.ZipFile(tmp_path / "a") as archive:         # no clock: zip's earliest date, stored
        assert {(i.date_time, i.compress_type) for i in archive.infolist()} == {((1980, 1, 1, 0, 0, 0), 0)}


def test_the_file_is_an_npz_that_numpy_opens(tmp_path):
    mg.save({"w": np.arange(3.0), "n": 2}, tmp_path / "c")
    with np.load(tmp_path / "c", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["0", "checksum.sha256", "tree.json"]
        np.testing.assert_array_equal(archive["0"], np.arange(3.0))


# ------------------------------------------------------------------ paths
@pytest.mark.parametrize("name", ["checkpoint", "model.pt", "weights.bin", "a.npz"])
def test_the_file_is_written_at_exactly_the_path(tmp_path, name):
    path = tmp_path / name
    mg.save({"w": np.ones(2)}, str(path))
    assert os.listdir(tmp_path) == [name]             # no ".npz" appended, no temporary left
    assert_same(mg.load(str(path)), {"w": np.ones(2)})


def test_pathlike_paths(tmp_path):
    class Location:                                    # any os.PathLike, not only pathlib
        def __init__(self, path):
            self.path = path

        def __fspath__(self):
            return self.path

    mg.save({"w": np.arange(3)}, pathlib.Path(tmp_path) / "p")
    assert_same(mg.load(Location(str(tmp_path / "p"))), {"w": np.arange(3)})
    mg.save({"w": np.arange(4)}, Location(str(tmp_path / "q")))
    assert_same(mg.load(tmp_path / "q"), {"w": np.arange(4)})


def test_a_relative_path_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mg.save({"w": np.ones(1)}, "here")
    assert os.listdir(tmp_path) == ["here"]
    assert_same(mg.load("here"), {"w": np.ones(1)})


# ------------------------------------------------------------------ atomicity
def test_a_crash_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    old = {"w": np.arange(5.0)}
    mg.save(old, path)

    def crash(self, zinfo, data):
        self.fp.write(b"PK\x03\x04 half a zip")        # some bytes reach the temporary file
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash)
    with pytest.raises(OSError, match=f"save: cannot write '{path}': disk full"):
        mg.save({"w": np.zeros(1000)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt"]            # the temporary file was removed
    assert_same(mg.load(path), old)


def test_an_interrupt_mid_write_leaves_no_new_file(tmp_path, monkeypatch):
    def interrupt(self, zinfo, data):
        self.fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupt)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"w": np.ones(3)}, tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_the_temporary_file_is_renamed_from_the_target_folder(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(source, destination):
        renames.append((os.path.dirname(os.path.abspath(source)), os.path.abspath(destination)))
        assert os.path.exists(source) and os.path.getsize(source) > 0   # written before the rename
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", spy)
    mg.save({"w": np.ones(2)}, tmp_path / "c")
    assert renames == [(str(tmp_path), str(tmp_path / "c"))]   # same folder: same filesystem


# ------------------------------------------------------------------ errors name the user's path
@pytest.mark.parametrize("where", ["mkstemp", "replace"])
def test_a_failed_write_names_the_checkpoint_not_the_temporary_file(tmp_path, monkeypatch, where):
    # e.g. a read-only folder (mkstemp) or a name the file system refuses (the rename)
    def refuse(*args, **kwds):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".c.abcd1234.tmp"))

    monkeypatch.setattr(serialization.tempfile if where == "mkstemp" else os, where, refuse)
    with pytest.raises(PermissionError) as info:
        mg.save({"w": np.ones(2)}, tmp_path / "c")
    assert str(info.value) == f"[Errno 13] save: cannot write '{tmp_path / 'c'}': Permission denied"
    assert ".tmp" not in str(info.value) and info.value.errno == 13
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_a_name_too_long_is_named(tmp_path):
    path = tmp_path / ("a" * 300)
    with pytest.raises(OSError, match=rf"save: cannot write '{path}': File name too long"):
        mg.save({"w": np.ones(2)}, path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["folder", "folder/", "new/"])
def test_a_folder_as_the_path_is_refused_before_writing(tmp_path, name):
    (tmp_path / "folder").mkdir()
    path = str(tmp_path) + "/" + name
    with pytest.raises(IsADirectoryError, match=f"save: '{path}' is a folder; give the checkpoint a file name"):
        mg.save({"w": np.ones(1)}, path)
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(tmp_path / "folder") == []


# ------------------------------------------------------------------ refusing what needs pickle
@pytest.mark.parametrize("value", [np.array([1, "a", None], dtype=object), np.array([{}], dtype=object)])
def test_object_arrays_are_refused_and_nothing_is_written(tmp_path, value):
    with pytest.raises(TypeError, match="'model/bad' is an object array"):
        mg.save({"model": {"bad": value}}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value, name, kind", [
    (b"bytes", "x", "bytes"), (object(), "x", "object"), (len, "x", "builtin_function_or_method"),
    ([1, [2, b"three"]], "x[1][1]", "bytes"), ({"groups": [{"lr": 1j}]}, "x/groups[0]/lr", "complex"),
    ((1, {3: {1, 2}}), "x[1]/3", "set"), (mg.nn.Linear(1, 1), "x", "Linear"),
], ids=["bytes", "object", "function", "nested_bytes", "in_a_group", "set", "module"])
def test_values_that_are_not_arrays_or_numbers_are_refused_by_name(tmp_path, value, name, kind):
    with pytest.raises(TypeError, match=rf"save: '{re.escape(name)}' is a {kind}; a checkpoint holds arrays"):
        mg.save({"x": value}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key, where", [(2.0, "'x'"), (True, "'x'"), ((1, 2), "'x'"), (None, "'the top level'")])
def test_keys_that_are_not_str_or_int_are_refused(tmp_path, key, where):
    obj = {None: 1} if key is None else {"x": {key: 1}}
    with pytest.raises(TypeError, match=rf"save: {where} has the key .*; keys must be str or int"):
        mg.save(obj, tmp_path / "c")
    assert os.listdir(tmp_path) == []


def test_a_dict_that_contains_itself_is_refused(tmp_path):
    loop = {"a": [1]}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match=r"save: 'x/a\[1\]' contains itself"):
        mg.save({"x": loop}, tmp_path / "c")
    shared = np.ones(2)
    mg.save({"a": shared, "b": [shared, shared]}, tmp_path / "c")      # shared, not cyclic: fine
    assert_same(mg.load(tmp_path / "c"), {"a": shared, "b": [shared, shared]})


def test_only_dicts_are_saved(tmp_path):
    with pytest.raises(TypeError, match="expects a dict"):
        mg.save([np.ones(2)], tmp_path / "c")


@pytest.mark.parametrize("obj", [{"x": b"bytes"}, {"g": [{"x": 1}, object()]}, {"k": {2.5: 1}},
                                 {"a": np.array([None], dtype=object)}],
                         ids=["bytes", "object_in_a_list", "float_key", "object_array"])
def test_a_refused_save_leaves_the_old_file_alone(tmp_path, obj):
    path = tmp_path / "c"
    mg.save({"w": np.arange(3)}, path)
    with pytest.raises((TypeError, ValueError)):
        mg.save(obj, path)
    assert os.listdir(tmp_path) == ["c"]
    assert_same(mg.load(path), {"w": np.arange(3)})


def test_a_missing_folder_is_file_not_found_naming_the_folder(tmp_path):
    folder = tmp_path / "runs" / "today"
    with pytest.raises(FileNotFoundError, match=f"the folder '{folder}' .*does not exist"):
        mg.save({"w": np.ones(1)}, folder / "c")
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mg.save({"w": np.ones(1)}, str(folder / "c"))
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        mg.save({"w": np.ones(1)}, tmp_path / "plain" / "c")
    assert os.listdir(tmp_path) == ["plain"]


# ------------------------------------------------------------------ damaged and foreign files
def small_checkpoint():
    return {"w": np.arange(4, dtype=np.float32).reshape(2, 2), "state": {0: {"step": np.array(3)}},
            "groups": [{"lr": 0.5, "params": [0], "betas": (0.9, 0.99)}], "epoch": 7, "s": np.float64(2.5)}


def test_every_damaged_byte_and_every_truncation_is_a_value_error_or_the_same_load(tmp_path):
    # zip internals raise NotImplementedError ("compression method"), RuntimeError ("encrypted"),
    # EOFError, ...: load turns each into its one ValueError, and the checksum over every member
    # makes sure that what does load is exactly what was saved
    path, damaged = tmp_path / "c", tmp_path / "damaged"
    original = small_checkpoint()
    mg.save(original, path)
    data = path.read_bytes()
    outcomes = {"same": 0, "refused": 0}
    for i in range(len(data)):
        for bad in (data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:],
                    data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:], data[:i]):
            damaged.write_bytes(bad)
            try:
                loaded = mg.load(damaged)
            except ValueError as err:
                assert "minigrad checkpoint" in str(err) or "is damaged" in str(err), str(err)
                outcomes["refused"] += 1
                continue
            assert_same(loaded, original, f"byte {i}")     # e.g. a flipped time stamp: harmless
            outcomes["same"] += 1
    assert outcomes["refused"] > 2 * len(data)              # most damage is refused


def rewrite(path, change):
    """The archive at ``path`` with ``change(members)`` applied, as a valid zip (fresh CRCs)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_changed_member_with_a_valid_zip_crc_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "c"
    mg.save(small_checkpoint(), path)
    rewrite(path, lambda m: m.update({"tree.json": m["tree.json"].replace(b"0.5", b"0.7")}))
    with pytest.raises(ValueError, match="is damaged: its contents do not match its checksum"):
        mg.load(path)
    mg.save(small_checkpoint(), path)
    rewrite(path, lambda m: m.pop("checksum.sha256"))
    with pytest.raises(ValueError, match="is damaged"):
        mg.load(path)
    mg.save(small_checkpoint(), path)
    rewrite(path, lambda m: m.update({"extra.npy": m["0.npy"]}))
    with pytest.raises(ValueError, match="is damaged"):
        mg.load(path)


def with_valid_checksum(path, tree, arrays=()):
    """A hand-made checkpoint whose checksum is right: only its contents can be wrong ("deep":
    a tree nested deeper than Python's recursion limit)."""
    deep = '{"format": "minigrad-checkpoint-2", "tree": {"dict": [["a", ' + "[" * 10**5 + "]" * 10**5 + "]]}}"
    members = {"tree.json": (deep if tree == "deep" else json.dumps(tree)).encode()}
    for i, data in enumerate(arrays):
        members[f"{i}.npy"] = data
    members["checksum.sha256"] = serialization._digest(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize("tree, arrays", [
    ({"format": "minigrad-checkpoint-9", "tree": {"dict": []}}, ()),
    ({"tree": {"dict": []}}, ()),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [["a", {"array": 1}]]}}, (npy(np.ones(1)),)),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [["a", {"array": -1}]]}}, (npy(np.ones(1)),)),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [["a", {"pickle": 0}]]}}, ()),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [[1.5, 1]]}}, ()),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [[None, 1]]}}, ()),
    ({"format": "minigrad-checkpoint-2", "tree": {"dict": [["a", {"array": 0}]]}}, (b"not an npy",)),
    ("deep", ()),
], ids=["format", "no_format", "index", "negative_index", "kind", "key", "null", "npy", "deep"])
def test_a_malformed_checkpoint_with_a_valid_checksum_is_a_value_error(tmp_path, tree, arrays):
    with_valid_checksum(tmp_path / "c", tree, arrays)
    with pytest.raises(ValueError, match="is not a well-formed minigrad checkpoint"):
        mg.load(tmp_path / "c")


def test_a_truncated_file_is_a_value_error(tmp_path):
    path = tmp_path / "c"
    mg.save(checkpoint(), path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a readable minigrad checkpoint"):
            mg.load(path)


def test_random_bytes_are_a_value_error(tmp_path):
    path = tmp_path / "noise"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match="not a readable minigrad checkpoint"):
        mg.load(path)


def test_a_plain_npz_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.ones(3))
    with pytest.raises(ValueError, match=r"is a zip/\.npz file but not a minigrad checkpoint \(no 'tree\.json'\)"):
        mg.load(path)


def test_a_checkpoint_of_the_earlier_format_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, __minigrad__=np.array("checkpoint-1"), **{"model/0.weight": np.ones(2)})
    with pytest.raises(ValueError, match=r"earlier minigrad \(format checkpoint-1\).*numpy\.load\(path\)"):
        mg.load(path)


def test_a_bare_npy_file_is_refused(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="not a readable minigrad checkpoint .*not a zip"):
        mg.load(path)


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError):
        mg.load(tmp_path)


class Exploit:
    """Unpickling this would create a file: proof that load never unpickles."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_is_refused_without_being_unpickled(tmp_path):
    path, canary = tmp_path / "evil", tmp_path / "canary"
    path.write_bytes(pickle.dumps({"model": Exploit(str(canary))}))
    with pytest.raises(ValueError):
        mg.load(path)
    assert not canary.exists()


def test_a_pickled_object_array_is_refused_even_with_a_valid_checksum(tmp_path):
    path, canary = tmp_path / "evil", tmp_path / "canary"
    payload = np.empty(1, dtype=object)
    payload[0] = Exploit(str(canary))
    with_valid_checksum(path, {"format": "minigrad-checkpoint-2", "tree": {"dict": [["w", {"array": 0}]]}},
                        [npy(payload, allow_pickle=True)])
    with pytest.raises(ValueError, match="not a well-formed minigrad checkpoint.*allow_pickle"):
        mg.load(path)
    assert not canary.exists()


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        mg.load(tmp_path / "absent")


# ------------------------------------------------------------------ eager loading
def open_paths():
    folder = "/proc/self/fd"
    return {os.path.realpath(os.path.join(folder, fd)) for fd in os.listdir(folder)}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
def test_load_reads_everything_and_closes_the_file(tmp_path):
    path = tmp_path / "c"
    original = checkpoint()
    mg.save(original, path)
    loaded = mg.load(path)
    assert str(path) not in open_paths()
    os.remove(path)                                    # nothing refers to the file any more
    assert_same(loaded, original)
    loaded["model"]["0.weight"][0, 0] = 42.0           # plain, writable arrays


# ------------------------------------------------------------------ durability and file mode
def test_the_temporary_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_size))    # the bytes are written by now
        real_fsync(fd)

    def replace(source, destination):
        events.append(("replace", os.path.getsize(source)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    mg.save({"w": np.ones(100)}, tmp_path / "c")
    assert [e for e, _ in events] == ["fsync", "replace"]  # a crash after the rename keeps the data
    assert events[0][1] == events[1][1] > 800


def test_a_new_checkpoint_gets_the_usual_file_mode_and_the_umask_is_kept(tmp_path):
    old = os.umask(0o022)
    try:
        mg.save({"w": np.ones(1)}, tmp_path / "c")
        assert os.umask(0o022) == 0o022                       # save restored the process umask
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "c").st_mode & 0o777 == 0o644   # 0o666 & ~umask, not mkstemp's 0o600
