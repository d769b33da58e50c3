"""Context and Function: how one op runs forward and records itself in the graph.

Invariant: ops see only numpy arrays. ``Function.apply`` is the single place that unwraps
Tensors into arrays, runs ``forward``, wraps the result and, when gradients are needed,
links the new Tensor to a Context (the graph node) that holds the parents and saved arrays.
"""
import os
import traceback

import numpy as np

from .. import modes
from ..tensor import Tensor, _wrap


class Context:
    """One graph node: the op (``fn``), its parent Tensors and what backward needs.

    ``parents[i]`` is the i-th input Tensor if it requires grad, else None.
    ``saved`` holds arrays from ``save_for_backward`` (released after backward).
    ``needs_input_grad[i]`` lets backward skip gradients nobody asked for.
    Hyperparameters (axis, eps, ...) are plain attributes set by ``forward``.
    """

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Function:
    """Base of every op: subclasses write ``forward`` and ``backward`` side by side.

    ``forward(ctx, *arrays, **params) -> array`` (or a tuple ``(array, *extras)``: the first
    is the differentiable output, the extras are returned to the caller as plain arrays).
    ``backward(ctx, grad_y) -> grad per input`` (None where ``ctx.needs_input_grad`` is False).
    Backward formulas use only operations that numpy arrays and Tensors share (operators,
    ``.sum(axis, keepdims)``, ``.reshape``, ``.T``, ...): on the fast path they run on arrays; with
    ``create_graph=True`` the engine runs the very same code on Tensors, which records the
    backward pass as a graph of its own (higher-order gradients).
    """

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_y):
        raise NotImplementedError

    @staticmethod
    def saved_tensors(ctx, output):
        """``ctx.saved`` as Tensors for a differentiable backward (``create_graph=True``).

        A saved array that *is* an input's or the output's data becomes that Tensor, so the
        second derivative flows through it. Anything else (masks, indices, tie weights) is
        taken as a constant: correct only for quantities that are piecewise constant in the
        inputs. An op that saves a smooth intermediate (x_hat, softmax) overrides this and
        rebuilds it from ``ctx.parents`` with differentiable ops; gradgradcheck tests guard it.
        """
        known = {id(output.data): output}
        for p in ctx.parents:
            if p is not None:
                known[id(p.data)] = p
        return tuple(known[id(a)] if id(a) in known else _wrap(a, False) for a in ctx.saved)

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (or arrays / Python scalars) and record it when needed."""
        ctx = Context()
        ctx.saved = ()
        arrays, needs, any_needs, plain = [], [], False, False   # one pass (the hot path)
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x.requires_grad)
                any_needs = any_needs or x.requires_grad
            else:
                arrays.append(x)
                needs.append(False)
                plain = plain or type(x) is np.ndarray
        record = any_needs and modes.grad_enabled
        if record and plain:
            arrays = unalias(inputs, arrays)
        ctx.needs_input_grad = needs
        try:
            out = cls.forward(ctx, *arrays, **params)
        except ValueError as err:  # e.g. numpy's broadcasting message: add the op's name
            raise ValueError(f"{cls.__name__}: {err}") from None
        extras = None
        if type(out) is tuple:
            out, *extras = out
        if type(out) is not np.ndarray:
            out = np.asarray(out)  # reductions to 0-d return numpy scalars
        result = _wrap(out, record)
        if record:
            ctx.fn = cls
            ctx.parents = tuple([x if n else None for x, n in zip(inputs, needs)])
            result._ctx = ctx
        if modes.anomaly:
            if record:
                ctx.site = creation_site()
            check_finite(out, f"{cls.__name__} produced {{what}} in its forward output",
                         ctx.site if record else creation_site())
        if extras is not None:
            return (result, *extras)
        return result


def unalias(inputs, arrays):
    """A plain array that *is* a differentiable input's data (``x * x.data``) gets its own view
    object: ``saved_tensors`` matches saved arrays to inputs by identity, and it is a constant."""
    owned = {id(x.data) for x in inputs if isinstance(x, Tensor) and x.requires_grad}
    return [a.view() if not isinstance(x, Tensor) and id(a) in owned else a
            for x, a in zip(inputs, arrays)]


class AnomalyError(RuntimeError):
    """A NaN or Inf appeared under ``mg.detect_anomaly()``."""


# The package's own folder, matched as a path prefix: a substring test for "/minigrad/" would also
# skip the user's files in a checkout named minigrad (~/minigrad/train.py).
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def creation_site():
    """The innermost stack frame outside the minigrad package: the user's line."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(PACKAGE_DIR):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}: {frame.line}'
    return "<unknown>"


def check_finite(array, message, site):
    """Raise AnomalyError when a float array holds NaN or Inf (``message`` has ``{what}``)."""
    if isinstance(array, Tensor):
        array = array.data
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        what = "NaN" if np.isnan(array).any() else "Inf"
        raise AnomalyError(message.format(what=what) + f"; the op was created at {site}")
