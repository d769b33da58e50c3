"""Run under mpiexec by test_parallel.py: DistributedDataParallel is the first distributed call
(no init() before it), on models that differ between ranks: it must still compare them and raise
on every rank, not skip the comparison because MPI was not started yet."""
import os

from minigrad import nn
from minigrad.nn.parallel import DistributedDataParallel

width = 2 if os.environ["PMI_RANK"] == "0" else 3      # the rank, before anything asked MPI
try:
    DistributedDataParallel(nn.Linear(4, width))
except ValueError as err:
    print(f"refused: {err}", flush=True)
else:
    print("built", flush=True)
