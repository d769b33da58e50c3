"""Context and Function: how one op runs forward and records itself in the graph.

Invariant: ops see only numpy arrays. ``Function.apply`` is the single place that unwraps
Tensors into arrays, runs ``forward``, wraps the result and, when gradients are needed, links
the new Tensor to its Context (the graph node), which holds the parents and the saved arrays.
``Context.differentiable`` is the single place that turns saved arrays back into Tensors, for a
backward pass that is itself recorded (``create_graph=True``).
"""
import numpy as np

from .. import modes
from ..tensor import Tensor, _wrap
from .anomaly import check_finite, creation_site


class Context:
    """One graph node: the op (``fn``), its parent Tensors and what backward needs.

    ``needs_input_grad[i]``: does input i require grad (backward may skip the others).
    ``parents[i]``: the i-th input Tensor if it requires grad, else None; set when the op is
    recorded, and released (None) after backward, like ``saved_tensors``.
    ``saved_tensors``: what forward passed to ``save_for_backward`` (arrays, None or numbers);
    backward reads it, as in PyTorch. ``versions``: for each saved array that is a Tensor's data,
    (that Tensor or None for the output, its version then), which backward checks.
    Hyperparameters (axis, eps, ...) are attributes that forward sets (``ctx.axis = axis``).
    """

    parents = None         # class-level defaults: the hot path sets only what an op needs
    saved_tensors = ()
    versions = None

    def __init__(self, fn, needs_input_grad):
        self.fn = fn
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    def differentiable(self, output):
        """A copy of this node whose ``saved_tensors`` are Tensors, for create_graph.

        A saved array that *is* an input's or the output's data becomes that Tensor, so the
        second derivative flows through it; any other float array (tie weights, a mask)
        becomes a constant Tensor, which is right only for quantities piecewise constant in the
        inputs. Integer and boolean arrays (indices) stay arrays, as do None and numbers. Ops
        that save a smooth intermediate (x - μ, softmax) rebuild it in ``Function.rebuild_saved``;
        gradgradcheck tests guard that.
        """
        known = {id(output.data): output}
        for p in self.parents:
            if p is not None:
                known[id(p.data)] = p
        saved = tuple((known[id(a)] if id(a) in known else _wrap(a, False))
                      if isinstance(a, np.ndarray) and a.dtype.kind in "fc" else a
                      for a in self.saved_tensors)
        ctx = Context.__new__(Context)
        ctx.__dict__.update(self.__dict__)
        ctx.saved_tensors = self.fn.rebuild_saved(self, saved)
        return ctx


class Function:
    """Base of every op: subclasses write ``forward`` and ``backward`` side by side.

    ``forward(ctx, *arrays, **params) -> array`` (or a tuple ``(array, *extras)``: the first
    is the differentiable output, the extras are returned to the caller as plain arrays).
    ``backward(ctx, grad_y) -> grad per input`` (None where ``ctx.needs_input_grad`` is False).
    Backward formulas use only operations that numpy arrays and Tensors share (operators,
    ``.sum(axis, keepdims)``, ``.reshape``, ``.T``, ...): on the fast path they run on arrays; with
    ``create_graph=True`` the engine runs the very same code on Tensors, which records the
    backward pass as a graph of its own (higher-order gradients). Where arrays and Tensors spell
    an operation differently (``np.broadcast_to`` against the BroadcastTo op), the op's module
    has a small helper beside the op that picks one by ``isinstance(x, np.ndarray)``.
    """

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_y):
        raise NotImplementedError

    @staticmethod
    def rebuild_saved(ctx, saved):
        """For create_graph: ``saved`` is ``ctx.saved_tensors`` as Tensors (``Context.differentiable``).

        An op that saved a smooth intermediate of its inputs returns it rebuilt from
        ``ctx.parents`` with differentiable ops, so that its second derivative is right; the
        default keeps everything as given.
        """
        return saved

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (or arrays / Python scalars) and record it when needed."""
        arrays, needs, parents, any_needs, plain = [], [], [], False, False   # one pass (hot path)
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x.requires_grad)
                parents.append(x if x.requires_grad else None)
                any_needs = any_needs or x.requires_grad
            else:
                arrays.append(x)
                needs.append(False)
                parents.append(None)
                plain = plain or type(x) is np.ndarray
        record = any_needs and modes.local.grad_enabled
        if record and plain:   # the graph keeps its own copy of a plain array: the caller may
            arrays = [a.copy() if type(x) is np.ndarray else a      # change theirs later
                      for a, x in zip(arrays, inputs)]
        ctx = Context.__new__(Context)       # Context(cls, needs), without the call
        ctx.fn, ctx.needs_input_grad = cls, needs
        try:
            out = cls.forward(ctx, *arrays, **params)
        except ValueError as err:  # e.g. numpy's broadcasting message: add the op's name
            raise ValueError(f"{cls.__name__}: {err}") from None
        extras = None
        if type(out) is tuple:
            out, *extras = out
        if type(out) is not np.ndarray:   # reductions and math on 0-d arrays return numpy scalars
            scalar, out = out, np.asarray(out)
            if ctx.saved_tensors:         # an op that saved its output (Exp) saved the scalar:
                ctx.saved_tensors = tuple(out if a is scalar else a for a in ctx.saved_tensors)
        result = _wrap(out, record)
        if out.base is not None:       # a view (reshape, transpose, indexing) of an input:
            share_version(result, inputs)   # an in-place update of one is an update of both
        if record:
            ctx.parents = tuple(parents)
            result._ctx = ctx
            if ctx.saved_tensors:
                ctx.versions = saved_versions(ctx.saved_tensors, inputs, out)
        if modes.anomaly:
            if record:
                ctx.site = creation_site()
            check_finite(out, f"{cls.__name__} produced {{what}} in its forward output",
                         ctx.site if record else creation_site())
        if extras is not None:
            return (result, *extras)
        return result


def saved_versions(saved, inputs, out):
    """[(Tensor or None for the output, version)] for the saved arrays that are a Tensor's data,
    or None: what backward must find unchanged. Arrays the op made itself are its own.
    (Compared by identity, never ==; plain loops: the cheapest form on the hot path.)"""
    found = []
    for x in inputs:
        if isinstance(x, Tensor):
            data = x.data
            for a in saved:
                if a is data:
                    found.append((x, x._version[0]))
                    break
    for a in saved:
        if a is out:
            found.append((None, 0))            # the output itself (Exp saves y)
            break
    return found or None


def share_version(result, inputs):
    """Give ``result`` (whose array views another) the version cell of the input it views."""
    owner = result.data.base
    for x in inputs:
        if isinstance(x, Tensor) and (x.data is owner or x.data.base is owner):
            result._version = x._version
            return


def check_versions(ctx, output):
    """Raise, naming the op, if a tensor it saved was changed in place since (PyTorch's check)."""
    for tensor, version in ctx.versions:
        tensor = output if tensor is None else tensor
        if tensor._version[0] != version:
            raise RuntimeError(
                f"one of the tensors {ctx.fn.__name__} saved for backward has been modified by an "
                f"in-place operation: a {tensor.dtype} tensor of shape {tensor.shape} is at version "
                f"{tensor._version[0]}; expected version {version} instead. Update it after "
                f"backward, or use an out-of-place op (t = t + 1)")
