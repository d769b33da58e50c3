"""examples/helpers/ranks.py in one process (world size 1: this process does it all); under
mpiexec it is exercised by tests/examples/test_train_cnn_distributed.py."""
import argparse

import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from helpers import ranks  # noqa: E402


def test_one_process_writes_and_checks_everything_itself():
    assert ranks.writes() and ranks.command_prefix() == ""
    parser = argparse.ArgumentParser()
    error = parser.error
    ranks.quiet_errors(parser)
    assert parser.error == error                          # rank 0 keeps its voice
    seen = []
    assert ranks.on_rank_zero(lambda: seen.append(1) or "checked") == "checked" and seen == [1]
    with pytest.raises(SystemExit):
        ranks.on_rank_zero(lambda: parser.error("no"))


@pytest.mark.parametrize("batch, ok", [(2, True), (3, True), (100, True), (1, False)])
def test_one_process_takes_any_batch_of_two_or_more(batch, ok):
    problems = ranks.batch_problems({"batch_size": batch})
    assert (problems == []) is ok
    if not ok:
        assert problems == ["--batch-size 1 is the global batch, split over 1 processes: it must be a multiple "
                            "of 1 giving each process 2 or more samples (e.g. 2)"]
