"""Run under mpiexec by test_distributed.py: the last rank raises while the others wait for it
in a collective. The excepthook installed by init() must end the whole job with that error."""
import time

import numpy as np

from minigrad import distributed as dist

dist.init()
if dist.get_rank() == dist.get_world_size() - 1:
    time.sleep(0.2)                      # the others are inside all_reduce by now
    print("the failing rank's last words", end="")     # still buffered when it raises
    raise ValueError(f"rank {dist.get_rank()} fails on purpose")
dist.all_reduce(np.ones(3))              # waits for the failed rank: only Abort ends this
print("unreachable: the job should have been aborted", flush=True)
