"""Run under mpiexec by test_train_cnn_distributed.py, from the repository root:
``mpiexec -n P python -m tests.examples.mpi_train_cnn STOP ARGS...`` runs examples/train_cnn.py's
main(ARGS) on every rank; with STOP > 0, rank 0 raises KeyboardInterrupt when epoch STOP + 1 is
about to be recorded (a crash: the excepthook ends the job, the checkpoint of epoch STOP stays)."""
import sys

from .loader import load_example

from helpers import runs  # noqa: E402  (examples/ is on sys.path: see loader.py)

train_cnn = load_example("train_cnn")
stop, argv = int(sys.argv[1]), sys.argv[2:]
if stop:
    real, calls = runs.Log.epoch_done, []

    def crash_after_epoch_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) > stop:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    runs.Log.epoch_done = crash_after_epoch_stop
train_cnn.main(argv)
