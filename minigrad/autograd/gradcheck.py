"""Finite-difference checks of gradients: first order (gradcheck) and second (gradgradcheck).

Both compare along a *random* upstream gradient u: the checked scalar is <u, f(x)>. A constant
u (the classic ``f(x).sum()``) hides bugs: ``batch_norm(x).sum()`` does not depend on x at all,
so every gradient, right or wrong, "matches" zero. A dependence guard warns about that case.
"""
import warnings

import numpy as np

from .engine import grad
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message names input, index and values."""


class VacuousGradcheckWarning(UserWarning):
    """The checked output does not depend on an input, so the check proves nothing about it."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_on_vacuous=False,
              check_dependence=True):
    """Check ``fn``'s gradients against central finite differences, in float64.

    ``inputs``: Tensors (those with ``requires_grad`` are checked; they are copied to float64)
    or other arguments passed through. ``fn(*inputs)`` returns a Tensor or a tuple of Tensors.
    Passes when |analytic - numeric| <= atol + rtol * |numeric| everywhere; returns True, or
    raises GradcheckError. When the numeric gradient of an input is zero within ``atol`` the
    output does not depend on it: a VacuousGradcheckWarning (an error with ``raise_on_vacuous``).
    """
    inputs = [_float64_copy(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    outputs = _as_tuple(fn(*inputs))
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(o.shape) for o in outputs]  # random, never all-ones

    live = [(o, u) for o, u in zip(outputs, upstream) if o.requires_grad]
    analytic = [None] * len(checked)
    if live:
        found = grad([o for o, _ in live], [inputs[i] for i in checked],
                     grad_outputs=[u for _, u in live], allow_unused=True)
        analytic = [None if g is None else g.data for g in found]

    def objective():  # graph recording stays on: fn may itself differentiate (gradgradcheck)
        return sum(float((o.data * u).sum()) for o, u in zip(_as_tuple(fn(*inputs)), upstream))

    for k, i in enumerate(checked):
        x = inputs[i].data
        numeric = numerical_gradient(objective, x, eps)
        got = np.zeros(x.shape) if analytic[k] is None else analytic[k]
        excess = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            # plain ints and floats: numpy 2 would print index (np.int64(1),), np.float64(0.5)
            worst = tuple(int(j) for j in np.unravel_index(int(np.argmax(excess)), x.shape))
            raise GradcheckError(f"gradcheck: input {i} (shape {x.shape}) at index {worst}: analytic "
                                 f"{float(got[worst])!r} vs numeric {float(numeric[worst])!r} "
                                 f"(atol={atol}, rtol={rtol})")
        if check_dependence and np.abs(numeric).max(initial=0.0) <= atol:
            message = (f"gradcheck: the output does not depend on input {i} (shape {x.shape}) within "
                       f"atol={atol}: the check is vacuous (is the loss a plain .sum() of a normalised output?)")
            if raise_on_vacuous:
                raise GradcheckError(message)
            warnings.warn(message, VacuousGradcheckWarning, stacklevel=2)
    return True


def numerical_gradient(objective, x, eps=1e-6):
    """Central differences of the scalar ``objective()`` with respect to the float64 array ``x``,
    which is perturbed in place one entry at a time (and restored): d objective / dx, shape of x."""
    numeric = np.zeros(x.shape)
    flat, flat_numeric = x.reshape(-1), numeric.reshape(-1)   # views into x and numeric
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        plus = objective()
        flat[j] = original - eps
        minus = objective()
        flat[j] = original
        flat_numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives: gradcheck of x -> d<u, fn(x)>/dx (u random, fixed).

    The inner gradient is built with ``create_graph=True``, so this checks that every backward
    formula on the path is itself differentiated correctly. First, that recorded gradient must
    equal the plain one (no create_graph): a backward whose Tensor path computed something else
    would otherwise be checked against its own wrong derivative and pass.
    """
    inputs = [_float64_copy(x) for x in inputs]
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        raise ValueError("gradgradcheck: no input has requires_grad=True, nothing to check")
    rng = np.random.default_rng(seed + 1)
    upstream = [rng.standard_normal(o.shape) for o in _as_tuple(fn(*inputs))]

    def first_derivative(*xs):
        outs = _as_tuple(fn(*xs))
        wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        found = grad(list(outs), wrt, grad_outputs=[Tensor(u) for u in upstream],
                     create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(np.zeros(x.shape)) for g, x in zip(found, wrt))

    outs = _as_tuple(fn(*inputs))
    wrt = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    live = [(o, u) for o, u in zip(outs, upstream) if o.requires_grad]
    plain = grad([o for o, _ in live], wrt, grad_outputs=[u for _, u in live], allow_unused=True) \
        if live else [None] * len(wrt)
    for i, (recorded, ordinary, x) in enumerate(zip(first_derivative(*inputs), plain, wrt)):
        ordinary = np.zeros(x.shape) if ordinary is None else ordinary.data
        if not np.allclose(recorded.data, ordinary, rtol=1e-7, atol=1e-10):
            raise GradcheckError(f"gradgradcheck: the gradient with create_graph=True differs from the plain "
                                 f"one for checked input {i} (shape {x.shape}): max difference "
                                 f"{float(np.abs(recorded.data - ordinary).max())!r}")
    return gradcheck(first_derivative, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     check_dependence=False)


def _float64_copy(x):
    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
    return x


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)
