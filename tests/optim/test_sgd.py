"""optim/sgd.py: SGD (momentum, dampening, Nesterov, weight decay) step by step against the
numpy transcription of PyTorch's rule, and the momentum buffer's independence from p.grad."""
import numpy as np
import pytest

from minigrad import nn, optim

from .common import Quadratic, run_minigrad, sgd_reference


SGD_CASES = {
    "plain": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.05, weight_decay=0.1),
    "everything": dict(lr=0.03, momentum=0.7, weight_decay=0.05, nesterov=True),
    "decay_damped": dict(lr=0.03, momentum=0.5, dampening=0.5, weight_decay=0.2),
}


@pytest.mark.parametrize("case", SGD_CASES, ids=SGD_CASES.keys())
def test_sgd_matches_the_pytorch_formula(case):
    problem = Quadratic()
    got = run_minigrad(lambda params: optim.SGD(params, **SGD_CASES[case]), problem)
    for step, (g, want) in enumerate(zip(got, sgd_reference(problem.p0, problem, **SGD_CASES[case]))):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def test_sgd_first_steps_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5, dampening=0.5)
    p.grad = np.array([1.0, 2.0])
    opt.step()                 # buffer = g (no dampening on the first step)
    np.testing.assert_allclose(p.data, [0.9, -2.2])
    p.grad = np.array([3.0, -1.0])
    opt.step()                 # buffer = 0.5 [1, 2] + 0.5 [3, -1] = [2, 0.5]
    np.testing.assert_allclose(p.data, [0.7, -2.25])


def test_the_momentum_buffer_does_not_alias_the_gradient():
    p = nn.Parameter(np.array([1.0, 1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = np.array([1.0, 2.0])
    opt.step()
    buf = opt.state[p]["momentum_buffer"]
    assert not np.shares_memory(buf, p.grad)
    p.grad[...] = 100.0                                 # e.g. accumulating into the same array
    np.testing.assert_array_equal(buf, [1.0, 2.0])
    p.grad = np.array([1.0, 1.0])
    opt.step()                                          # buffer 0.5 [1, 2] + [1, 1] = [1.5, 2]
    np.testing.assert_allclose(p.data, [1 - 0.1 - 0.15, 1 - 0.2 - 0.2])
    assert not np.shares_memory(opt.state[p]["momentum_buffer"], p.grad)
    np.testing.assert_array_equal(p.grad, [1.0, 1.0])
