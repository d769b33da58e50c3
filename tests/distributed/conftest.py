"""Launching the multi-process checks from pytest: ``mpiexec -n P python -m
tests.distributed.worker`` once per world size and session (the worker runs every check of
checks_*.py), with a timeout, so a hang fails the tests instead of stalling the suite. Skipped
only when mpi4py or mpiexec is absent; CI installs the [dist] extra (mpi4py and mpich, which
brings mpiexec), so they run there.
"""
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TIMEOUT = 120          # seconds for one whole worker run (~2-6 s); a hang fails, once


def mpiexec_path():
    return shutil.which("mpiexec") or str(Path(sys.executable).with_name("mpiexec"))


def mpiexec(n, module, *args, timeout=TIMEOUT):
    """Run ``python -m tests.distributed.<module>`` (or ``-m <module>`` for a dotted name) on
    ``n`` ranks from the repository root; returns the CompletedProcess (raises TimeoutExpired)."""
    pytest.importorskip("mpi4py", reason="the [dist] extra (mpi4py, mpich) is not installed")
    if not Path(mpiexec_path()).exists():
        pytest.skip("mpiexec not found: pip install -e '.[dist]' brings MPICH's")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if n > (os.cpu_count() or 1):    # oversubscribed: MPICH's waiting ranks yield the core
        env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] = "1"   # instead of spinning (2-3x faster here)
    module = module if "." in module else f"tests.distributed.{module}"
    command = [mpiexec_path(), "-n", str(n), sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@functools.lru_cache(maxsize=None)
def _worker_run(n, out):
    try:
        done = mpiexec(n, "worker", out)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as hung:     # cached like any result: one wait per session
        code = f"none: killed after {TIMEOUT} s"
        output = b"".join(part or b"" for part in (hung.stdout, hung.stderr)).decode(errors="replace")
    passed = {}
    if Path(out).exists():
        for line in Path(out).read_text().splitlines():
            record = json.loads(line)
            passed[record.pop("check")] = record
    return passed, code, output


@pytest.fixture(scope="session")
def worker(tmp_path_factory):
    """``worker(n, check)``: the numbers check ``check`` measured on ``n`` ranks; fails with the
    job's output if the check did not pass."""
    folder = tmp_path_factory.mktemp("mpi")

    def result(n, check):
        passed, code, output = _worker_run(n, str(folder / f"worker-{n}.jsonl"))
        assert check in passed, f"{check} did not pass on {n} ranks (exit code {code}):\n{output[-6000:]}"
        return passed[check]

    return result
