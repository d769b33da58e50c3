"""The benchmarks' hand-written numpy baselines compute what minigrad computes (no timing here).

A benchmark ratio means something only if both sides do the same arithmetic: these tests run the
correctness checks the benchmark scripts run before timing, on the small configuration.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
mlp_steps = pytest.importorskip("mlp_steps")   # benchmarks/mlp_steps.py (imports torch only if installed)
baselines = pytest.importorskip("baselines")


def test_numpy_step_matches_minigrad_fused_and_composed():
    steps = mlp_steps.make_steps(mlp_steps.make_problem("small"), include_torch=False)
    errors = mlp_steps.check_steps(steps)      # raises AssertionError on any mismatch
    assert set(errors) == {"minigrad fused", "minigrad composed", "numpy"}
    assert max(errors.values()) < 2e-4


def test_the_check_catches_a_wrong_numpy_backward(monkeypatch):
    right = baselines.batchnorm_backward

    def slightly_wrong(dout, cache):
        dx, dgamma, dbeta = right(dout, cache)
        return dx * 1.001, dgamma, dbeta

    monkeypatch.setattr(baselines, "batchnorm_backward", slightly_wrong)
    steps = mlp_steps.make_steps(mlp_steps.make_problem("small"), include_torch=False)
    with pytest.raises(AssertionError, match="gradients differ"):
        mlp_steps.check_steps(steps)


def test_numpy_batch_norm_baseline_matches_the_fused_op():
    from minigrad.autograd.function import Context
    from minigrad.ops.fused import BatchNormFused
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6))
    gamma, beta, dout = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((32, 6))
    y_ref, mean, var, cache = baselines.batchnorm_forward(x, gamma, beta)
    ctx = Context(BatchNormFused, [True, True, True])
    y, batch_mean, batch_var, _ = BatchNormFused.forward(ctx, x, gamma, beta, 1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(batch_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(batch_var, var, rtol=1e-12)
    for got, ref in zip(BatchNormFused.backward(ctx, dout), baselines.batchnorm_backward(dout, cache)):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
