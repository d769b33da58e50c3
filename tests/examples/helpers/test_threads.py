"""examples/helpers/threads.py: one BLAS thread unless --threads N, set before numpy loads, so the
main job prints the same numbers whatever the environment's thread variables say."""
import json
import os
import subprocess
import sys

import pytest

from ..loader import EXAMPLES

from helpers import threads  # noqa: E402  (examples/ is on sys.path: see loader.py)


def test_requested_reads_threads_from_the_command_line():
    assert threads.requested([]) == threads.DEFAULT == 1
    assert threads.requested(["--epochs", "3"]) == 1
    assert threads.requested(["--threads", "3"]) == 3
    assert threads.requested(["--threads=4", "--epochs", "2"]) == 4
    assert threads.requested(["--threads", "2", "--quiet", "--threads", "5"]) == 5   # the last wins
    for bad in (["--threads", "0"], ["--threads", "x"], ["--threads", "-2"], ["--threads"], ["--threads="]):
        assert threads.requested(bad) == 1, bad           # argparse reports these; pin the default


def test_pin_overrides_every_variable(monkeypatch):
    for name in threads.VARIABLES:
        monkeypatch.setenv(name, "8")
    threads.pin(2)
    assert {name: os.environ[name] for name in threads.VARIABLES} == dict.fromkeys(threads.VARIABLES, "2")


def test_apply_without_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)      # `import threadpoolctl` fails
    monkeypatch.setattr(threads, "PINNED", 1)
    assert threads.apply(1, given=True) is None                  # what was pinned: nothing to do
    assert threads.apply(3, given=False) is None                 # a default cannot be honoured: kept
    message = threads.apply(3, given=True)
    assert message.startswith("--threads 3: this process loaded numpy with 1 thread(s)")
    assert "install threadpoolctl" in message
    monkeypatch.setattr(threads, "PINNED", None)
    assert "its own thread count" in threads.apply(2, given=True)


def test_apply_with_threadpoolctl_changes_a_running_process(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(threads, "PINNED", None)
    for name in threads.VARIABLES:
        monkeypatch.setenv(name, "1")                            # undone after the test
    with threadpoolctl.threadpool_limits(limits=None):          # restores this process's limits
        assert threads.apply(2, given=True) is None
        blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 2 for i in blas)
        assert threads.PINNED == 2 and os.environ["OPENBLAS_NUM_THREADS"] == "2"


PROBE = ("import sys; sys.path.insert(0, {examples!r}); import helpers, numpy, json, threadpoolctl; "
         "print(json.dumps([i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']))")


def clean_env(**changes):
    env = {k: v for k, v in os.environ.items() if k not in threads.VARIABLES}
    env.update(changes)
    return env


@pytest.mark.parametrize("env, argv, expected", [
    ({}, [], 1),
    ({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, [], 1),
    ({"OMP_NUM_THREADS": "1"}, ["--threads", "2"], 2),
])
def test_importing_helpers_first_sets_what_blas_uses(env, argv, expected):
    pytest.importorskip("threadpoolctl")
    done = subprocess.run([sys.executable, "-c", PROBE.format(examples=str(EXAMPLES)), *argv],
                          env=clean_env(**env), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts and all(c == expected for c in counts)


def test_the_main_job_prints_the_same_numbers_whatever_the_thread_variables_say(tmp_path):
    """The issue's check: train_mlp.py with its defaults, under OMP_NUM_THREADS unset, 1 and 2,
    and OPENBLAS_NUM_THREADS unset and set; every metric but the time must be equal, exactly."""
    runs = []
    for i, env in enumerate(({}, {"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "2"},
                             {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})):
        path = tmp_path / f"m{i}.jsonl"
        done = subprocess.run([sys.executable, str(EXAMPLES / "train_mlp.py"), "--quiet", "--metrics", str(path)],
                              env=clean_env(**env), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        runs.append([{k: v for k, v in row.items() if k != "seconds"} for row in rows])
    assert len(runs[0]) == 20
    assert all(run == runs[0] for run in runs[1:])
