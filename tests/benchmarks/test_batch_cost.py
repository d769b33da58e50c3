"""bench_batch_cost's arithmetic: the least-squares fit and the fixed cost a target allows."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import bench_batch_cost  # noqa: E402


def test_fit_recovers_a_line_and_is_least_squares():
    a, b = bench_batch_cost.fit([(1, 0.6 + 0.01), (10, 0.6 + 0.1), (50, 0.6 + 0.5)])
    assert a == pytest.approx(0.6) and b == pytest.approx(0.01)
    a, b = bench_batch_cost.fit([(0, 0.0), (1, 1.0), (2, 1.0)])   # not on a line: the LS answer
    assert (a, b) == pytest.approx((1 / 6, 0.5))


def test_a_step_runs_and_counts_faults():
    step = bench_batch_cost.stepper(4)
    assert bench_batch_cost.faults_per_step(step, steps=2) >= 0
