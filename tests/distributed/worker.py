"""Run under mpiexec by the tests, from the repository root:
``mpiexec -n P python -m tests.distributed.worker OUT`` runs every check of checks_*.py on every
rank, in order. Rank 0 appends one JSON line per passed check to OUT, with the numbers the check
measured; a failing check raises, and the excepthook installed by ``minigrad.distributed.init()``
ends the whole job with that rank's traceback.
"""
import json
import sys

from minigrad import distributed as dist

from . import checks_collectives, checks_parallel, checks_syncbn


def main(out):
    dist.init()
    for module in (checks_collectives, checks_parallel, checks_syncbn):
        for check in module.CHECKS:
            numbers = check() or {}
            dist.barrier()                    # no rank starts a check before all finished the last
            if dist.get_rank() == 0:
                with open(out, "a") as f:
                    f.write(json.dumps({"check": check.__name__, **numbers}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
