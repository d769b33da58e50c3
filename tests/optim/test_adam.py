"""optim/adam.py: Adam and AdamW step by step against the numpy transcription of PyTorch's rule
(bias correction, L2 or decoupled weight decay)."""
import numpy as np
import pytest

from minigrad import nn, optim

from .common import Quadratic, adam_reference, run_minigrad


ADAM_CASES = {
    "adam": (optim.Adam, dict(lr=0.1), False),
    "adam_betas_eps": (optim.Adam, dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3), False),
    "adam_l2": (optim.Adam, dict(lr=0.05, weight_decay=0.3), False),
    "adamw_default_decay": (optim.AdamW, dict(lr=0.1), True),
    "adamw": (optim.AdamW, dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.5), True),
}


@pytest.mark.parametrize("case", ADAM_CASES, ids=ADAM_CASES.keys())
def test_adam_and_adamw_match_the_pytorch_formula(case):
    cls, kwargs, decoupled = ADAM_CASES[case]
    problem = Quadratic(seed=1)
    got = run_minigrad(lambda params: cls(params, **kwargs), problem)
    if cls is optim.AdamW and "weight_decay" not in kwargs:
        kwargs = dict(kwargs, weight_decay=1e-2)                # AdamW's default, as in PyTorch
    want = adam_reference(problem.p0, problem, decoupled=decoupled, **kwargs)
    for step, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def test_adam_first_step_moves_each_coordinate_by_lr():
    # bias correction makes the first step lr · g / (|g| + eps'): lr · sign(g), whatever |g|
    p = nn.Parameter(np.array([1.0, 1.0, 1.0]))
    p.grad = np.array([1e-3, -5.0, 300.0])
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [0.99, 1.01, 0.99], rtol=1e-6)


def test_adamw_decays_weights_that_adam_does_not():
    p_adam = nn.Parameter(np.array([2.0]))
    p_adamw = nn.Parameter(np.array([2.0]))
    for p in (p_adam, p_adamw):
        p.grad = np.array([0.5])
    optim.Adam([p_adam], lr=0.1).step()
    optim.AdamW([p_adamw], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p_adam.data, [1.9], rtol=1e-7)
    np.testing.assert_allclose(p_adamw.data, [2.0 * (1 - 0.05) - 0.1], rtol=1e-7)
