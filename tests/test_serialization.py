"""mg.save / mg.load: nested dicts of arrays in one .npz at exactly the given path, written
atomically, never pickled, refusing foreign or damaged files with a ValueError."""
import os
import pathlib
import pickle

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def checkpoint():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((3, 2)).astype(np.float32),
                  "0.bias": rng.standard_normal(3).astype(np.float32),
                  "1.running_var": rng.uniform(0.5, 2, 3),                     # float64
                  "1.num_batches_tracked": np.array(7, dtype=np.int64)},        # 0-d int64
        "optimizer": {"state": {"0": {"step": np.array(3), "exp_avg": np.arange(6.0).reshape(3, 2)}},
                      "hyperparameters": {"lr": 0.01, "betas": (0.9, 0.999), "nesterov": False}},
        "epoch": 12,
        "scale": np.float32(0.5),
        "mask": np.array([True, False]),
        "labels": np.array([3, 1, 2], dtype=np.uint8),
    }


def assert_same(loaded, original, path=""):
    assert set(loaded) == set(original), path
    for key, value in original.items():
        if isinstance(value, dict):
            assert_same(loaded[key], value, f"{path}/{key}")
            continue
        expected = np.asarray(value)
        got = loaded[key]
        assert type(got) is np.ndarray, f"{path}/{key} is {type(got).__name__}"
        assert got.dtype == expected.dtype and got.shape == expected.shape, f"{path}/{key}"
        np.testing.assert_array_equal(got, expected, err_msg=f"{path}/{key}")


def folder_listing(path):
    return sorted(os.listdir(os.path.dirname(path)))


# ------------------------------------------------------------------ round trips
def test_round_trip_of_a_nested_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    original = checkpoint()
    mg.save(original, path)
    loaded = mg.load(path)
    assert_same(loaded, original)
    assert loaded["model"]["1.num_batches_tracked"].dtype == np.int64
    assert loaded["model"]["1.num_batches_tracked"].shape == ()
    assert loaded["epoch"].shape == () and int(loaded["epoch"]) == 12


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
    real_savez = np.savez

    def crash(file, *args, **kwds):
        file.write(b"PK\x03\x04 half a zip")           # some bytes reach the temporary file
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"w": np.zeros(1000)}, path)
    monkeypatch.setattr(np, "savez", real_savez)
    assert os.listdir(tmp_path) == ["ckpt"]            # the temporary file was removed
    assert_same(mg.load(path), old)


def test_an_interrupt_mid_write_leaves_no_new_file(tmp_path, monkeypatch):
    def interrupt(file, *args, **kwds):
        file.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupt)
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


# ------------------------------------------------------------------ refusing what needs pickle
@pytest.mark.parametrize("value", [np.array([1, "a", None], dtype=object), np.array([{}], dtype=object)])
def test_object_arrays_are_refused_and_nothing_is_written(tmp_path, value):
    with pytest.raises(TypeError, match="object array"):
        mg.save({"model": {"bad": value}}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["a string", None, object(), len, [1, [2, 3]]],
                         ids=["str", "None", "object", "function", "ragged"])
def test_values_that_are_not_arrays_or_numbers_are_refused(tmp_path, value):
    with pytest.raises((TypeError, ValueError)):
        mg.save({"x": value}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


def test_only_dicts_are_saved(tmp_path):
    with pytest.raises(TypeError, match="expects a dict"):
        mg.save([np.ones(2)], tmp_path / "c")


@pytest.mark.parametrize("key", ["a/b", ""])
def test_keys_with_the_separator_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="empty or contains '/'"):
        mg.save({"model": {key: np.ones(1)}}, tmp_path / "c")


@pytest.mark.parametrize("key", ["file", "allow_pickle"])
def test_top_level_keys_that_clash_with_savez_are_refused_not_lost(tmp_path, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        mg.save({key: np.ones(2)}, tmp_path / "c")
    mg.save({"nested": {key: np.ones(2)}}, tmp_path / "c")     # fine one level down
    assert_same(mg.load(tmp_path / "c"), {"nested": {key: np.ones(2)}})


# ------------------------------------------------------------------ damaged and foreign files
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


def test_a_plain_npz_without_the_marker_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.ones(3))
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        mg.load(path)


def test_a_bare_npy_file_is_refused(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        mg.load(path)


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


def test_an_npz_holding_a_pickled_object_array_is_refused(tmp_path):
    path, canary = tmp_path / "evil.npz", tmp_path / "canary"
    payload = np.empty(1, dtype=object)
    payload[0] = Exploit(str(canary))
    np.savez(path, __minigrad__=np.array("checkpoint-1"), w=payload)   # needs pickle to read
    with pytest.raises(ValueError):
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


# ------------------------------------------------------------------ refused keys, nothing written
def assert_nothing_written(folder):
    assert os.listdir(folder) == []                    # neither the file nor a temporary


@pytest.mark.parametrize("obj", [{"__minigrad__": np.ones(1)}, {"__minigrad__": "checkpoint-1"},
                                 {"__minigrad__": {"a": np.ones(1)}}], ids=["array", "marker", "dict"])
def test_the_format_marker_key_is_refused_at_the_top_level(tmp_path, obj):
    # it would overwrite (or be overwritten by) the marker: an unreadable or silently shortened file
    with pytest.raises(ValueError, match="'__minigrad__' is reserved for the format marker"):
        mg.save(obj, tmp_path / "c")
    assert_nothing_written(tmp_path)


def test_the_format_marker_key_is_fine_when_nested(tmp_path):
    original = {"meta": {"__minigrad__": np.arange(3)}, "w": np.ones(2)}
    mg.save(original, tmp_path / "c")                  # saved as "meta/__minigrad__": no clash
    assert_same(mg.load(tmp_path / "c"), original)


@pytest.mark.parametrize("obj, message", [
    ({1: np.ones(1), "1": np.zeros(1)}, r"the keys 1 and '1' of 'the top level' are both saved as '1'"),
    ({"model": {"1": np.ones(1), 1: np.zeros(1)}}, r"the keys '1' and 1 of 'model' are both saved as '1'"),
    ({"a": {"b": {0: 1, "0": 2}}}, r"of 'a/b' are both saved as '0'"),
    ({"groups": [{"x": 1}, {"x": 2, 2.0: 3, "2.0": 4}]}, r"of 'groups/1' are both saved as '2.0'"),
], ids=["top", "nested", "deep", "in_a_list"])
def test_keys_that_collide_as_strings_are_refused(tmp_path, obj, message):
    with pytest.raises(ValueError, match=message):
        mg.save(obj, tmp_path / "c")
    assert_nothing_written(tmp_path)


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


@pytest.mark.parametrize("obj", [{"x": "text"}, {"model": {"1": np.ones(1), 1: np.ones(1)}},
                                 {"__minigrad__": 1}, {"file": 1}, {"a/b": 1},
                                 {"g": [{"x": 1}, np.ones(1)]}],
                         ids=["str", "collision", "marker", "savez_name", "separator", "mixed_list"])
def test_a_refused_save_leaves_the_old_file_alone(tmp_path, obj):
    path = tmp_path / "c"
    mg.save({"w": np.arange(3)}, path)
    with pytest.raises((TypeError, ValueError)):
        mg.save(obj, path)
    assert os.listdir(tmp_path) == ["c"]
    assert_same(mg.load(path), {"w": np.arange(3)})


# ------------------------------------------------------------------ lists of dicts (param_groups)
def test_a_list_of_dicts_comes_back_keyed_by_position(tmp_path):
    groups = [{"lr": 0.1, "params": [0, 1]}, {"lr": 0.01, "betas": (0.9, 0.99), "params": [2]}]
    mg.save({"optimizer": {"param_groups": groups, "empty": []}}, tmp_path / "c")
    loaded = mg.load(tmp_path / "c")["optimizer"]
    assert sorted(loaded["param_groups"]) == ["0", "1"]
    assert loaded["param_groups"]["0"]["params"].tolist() == [0, 1]
    assert loaded["param_groups"]["1"]["betas"].tolist() == [0.9, 0.99]
    assert loaded["param_groups"]["1"]["lr"].shape == () and loaded["param_groups"]["1"]["lr"] == 0.01
    assert loaded["empty"].shape == (0,)               # an empty list stays an (empty) array


def test_a_list_mixing_dicts_and_other_values_is_refused(tmp_path):
    with pytest.raises(TypeError, match="'g' mixes dicts with other values"):
        mg.save({"g": [{"x": 1}, 2]}, tmp_path / "c")
    assert_nothing_written(tmp_path)


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
