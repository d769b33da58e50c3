"""examples/train_cnn.py under ``mpiexec -n 2`` (mpi_train_cnn.py runs its main on every rank):
--sync-bn is the one-process run up to rounding, rank 0 alone prints and writes, a crashed run
resumes on every rank to the same numbers, and a bad command line ends every rank with one
message; in one process --sync-bn changes nothing."""
import json
import subprocess

import pytest

from tests.distributed.conftest import mpiexec

from .loader import load_example

WORKER = "tests.examples.mpi_train_cnn"


@pytest.fixture(scope="module")
def train_cnn():
    return load_example("train_cnn")


def run(n, *args, stop=0):
    try:
        return mpiexec(n, WORKER, stop, *args, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpiexec -n {n} train_cnn.py {' '.join(args)} hung")


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sync_bn_on_two_processes_is_the_one_process_run_and_rank_zero_alone_writes(train_cnn, tmp_path):
    one = train_cnn.main(["--epochs", "1", "--quiet"])["history"][0]
    losses = {}
    for sync in (True, False):
        metrics = tmp_path / f"m{sync}.jsonl"
        done = run(2, "--epochs", "1", "--metrics", metrics, *(["--sync-bn"] if sync else []))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "batch 100 (50 on each of 2 processes)" in lines[0] and len(lines) == 4, done.stdout  # header,
        assert lines[-1].startswith(f"mnist1d cnn, norm=batch (fused){', SyncBatchNorm' if sync else ''} seed 0: test")  # table,
        (row,) = rows(metrics)                                                    # one row, one summary
        assert done.stderr.count("train_cnn:   0%") == 1                          # one bar: rank 0's
        losses[sync] = abs(row["train_loss"] - one["train_loss"]) / one["train_loss"]
    assert losses[True] < 1e-3                          # float32 rounding, then AdamW, apart
    assert losses[False] > 10 * losses[True]            # per-process statistics: another run


def test_a_crashed_run_resumes_on_every_rank_to_the_same_numbers(tmp_path):
    straight, resumed, ckpt = tmp_path / "s.jsonl", tmp_path / "r.jsonl", tmp_path / "c.npz"
    common = ["--epochs", "2", "--quiet", "--sync-bn", "--bn", "composed"]
    assert run(2, *common, "--metrics", straight).returncode == 0
    crashed = run(2, *common, "--save", ckpt, stop=1)
    assert crashed.returncode != 0 and "KeyboardInterrupt" in crashed.stderr
    done = run(2, "--resume", ckpt, "--quiet", "--metrics", resumed)
    assert done.returncode == 0, done.stderr
    for a, b in zip(rows(straight), rows(resumed), strict=True):
        a.pop("seconds"), b.pop("seconds")
        assert a == b


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "3"], "--batch-size 3 is the global batch, split over 2 processes: it must be a multiple "
                            "of 2 giving each process 2 or more samples (e.g. 4)"),
    (["--metrics", "no/such/dir/m.jsonl"], "the folder of 'no/such/dir/m.jsonl' does not exist"),
])
def test_a_bad_command_line_ends_every_rank_with_one_message(args, message):
    done = run(2, *args)
    assert done.returncode == 2 and done.stderr.count(message) == 1, done.stderr


def test_one_process_sync_bn_is_batch_norm_and_needs_it(train_cnn, capsys):
    plain = train_cnn.main(["--epochs", "1", "--quiet", "--data", "digits"])
    sync = train_cnn.main(["--epochs", "1", "--quiet", "--data", "digits", "--sync-bn"])
    assert [r["val_loss"] for r in sync["history"]] == [r["val_loss"] for r in plain["history"]]
    assert sync["test_acc"] == plain["test_acc"]
    for args, what in ((["--bn", "none"], "--norm none"), (["--norm", "renorm"], "--norm renorm"),
                       (["--norm", "group"], "--norm group"), (["--model", "logistic"], "--model logistic")):
        with pytest.raises(SystemExit) as exit_info:
            train_cnn.main(["--sync-bn", *args])
        assert exit_info.value.code == 2
        assert f"--sync-bn needs batch norm (SyncBatchNorm replaces BatchNorm layers only): --norm batch and a " \
               f"model with hidden layers, not {what}" in capsys.readouterr().err
