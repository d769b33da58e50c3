"""Context and Function: how one op runs forward and records itself in the graph.

Invariants: ops see only numpy arrays. ``Function.apply`` is the single place that unwraps
Tensors into arrays, runs ``forward``, wraps the result and, when gradients are needed, links
the new Tensor to its Context (the graph node), which holds the parents and the saved arrays.
What a recorded node keeps is its own from the moment it is recorded: the caller's arrays,
lists and indices are copied (``own``), a Tensor's data is guarded by its version counter.
``Context.differentiable`` is the single place that turns saved arrays back into Tensors, for a
backward pass that is itself recorded (``create_graph=True``).
"""
import numpy as np

from .. import modes
from ..tensor import Tensor, _as_array, _wrap
from .anomaly import check_finite, creation_site


SEQUENCES = frozenset((list, tuple))


class Context:
    """One graph node: the op (``fn``), its parent Tensors and what backward needs.

    ``needs_input_grad[i]``: does input i require grad (backward may skip the others).
    ``parents[i]``: the i-th input Tensor if it requires grad, else None; set when the op is
    recorded, and released (None) after backward, like ``saved_tensors``.
    ``saved_tensors``: what forward passed to ``save_for_backward`` (arrays, None or numbers);
    backward reads it, as in PyTorch. ``inputs``: the arrays forward was given, to tell a saved
    input from a saved intermediate (``saved_intermediates``). ``versions``: set when the op saved
    something: each input's version then (None for a non-Tensor), the output's last; with
    ``tensors`` (the inputs) they let ``check_saved`` find a saved tensor changed in place since.
    Hyperparameters (axis, eps, ...) are attributes that forward sets (``ctx.axis = axis``).
    """

    parents = None         # class-level defaults: the hot path sets only what an op needs
    saved_tensors = ()
    versions = tensors = None
    inputs = None

    def __init__(self, fn, needs_input_grad):
        self.fn = fn
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    def differentiable(self, output):
        """A copy of this node whose ``saved_tensors`` are Tensors, for create_graph.

        A saved array that *is* an input's or the output's data becomes that Tensor, so the
        second derivative flows through it; integer and boolean arrays (indices, masks) stay
        arrays, as do None and numbers. A saved float *intermediate* would have to become a
        constant, which is right only if it is piecewise constant in the inputs: so the op must
        rebuild it (``Function.rebuild_saved``) or declare it constant (``saves_constants``);
        otherwise this refuses, naming the op, instead of a silently wrong second derivative.
        """
        fn = self.fn
        intermediates = () if fn.saves_constants else saved_intermediates(self, output)
        if intermediates and fn.rebuild_saved is Function.rebuild_saved:
            i = intermediates[0]
            raise RuntimeError(
                f"create_graph through {fn.__name__}: it saved for backward a float array that is "
                f"neither an input's nor the output's data (saved_tensors[{i}], shape "
                f"{np.shape(self.saved_tensors[i])}), which a recorded backward could only treat as a "
                f"constant: a wrong higher-order gradient if it depends on the inputs. Define "
                f"{fn.__name__}.rebuild_saved to rebuild it from ctx.parents with differentiable "
                f"ops, or set `saves_constants = True` on {fn.__name__} if it is piecewise constant "
                f"in the inputs (a mask, tie weights). (This refusal is PyTorch's once_differentiable.)")
        known = {id(output.data): output}              # saved array -> the Tensor it is
        for p, a in zip(self.parents, self.inputs):
            if p is not None:
                known[id(a)] = p
        saved = tuple((known[id(a)] if id(a) in known else _wrap(a, False))
                      if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                      for a in self.saved_tensors)
        ctx = Context(fn, self.needs_input_grad)
        ctx.__dict__.update(self.__dict__)
        ctx.saved_tensors = fn.rebuild_saved(self, saved)
        return ctx


class Function:
    """Base of every op: subclasses write ``forward`` and ``backward`` side by side.

    ``forward(ctx, *arrays, **params) -> array`` (or a tuple ``(array, *extras)``: the first
    is the differentiable output, the extras are returned to the caller as plain arrays).
    Positional inputs are the operands (Tensors, arrays, numbers; a list of numbers becomes the
    array ``mg.tensor`` would make); keyword arguments are hyperparameters.
    ``backward(ctx, grad_y) -> grad per input`` (None where ``ctx.needs_input_grad`` is False).
    Backward formulas use only operations that numpy arrays and Tensors share (operators,
    ``.sum(axis, keepdims)``, ``.reshape``, ``.T``, ...): on the fast path they run on arrays; with
    ``create_graph=True`` the engine runs the very same code on Tensors, which records the
    backward pass as a graph of its own (higher-order gradients). Where arrays and Tensors spell
    an operation differently (``np.broadcast_to`` against the BroadcastTo op), the op's module
    has a small helper beside the op that picks one by ``isinstance(x, np.ndarray)``.
    """

    # True when every float array the op saves that is not an input's or the output's data is
    # piecewise constant in the inputs (a mask, tie weights), so that create_graph may keep it
    # as a constant; see Context.differentiable.
    saves_constants = False

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
        """Run the op on Tensors (or arrays, numbers, lists of numbers) and record it when needed."""
        arrays, needs, parents, versions = [], [], [], []     # one pass (hot path)
        any_needs = plain = False
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x.requires_grad)
                parents.append(x if x.requires_grad else None)
                versions.append(x._version[0])
                any_needs = any_needs or x.requires_grad
            else:
                if isinstance(x, np.ndarray):
                    plain = True
                elif type(x) in SEQUENCES:           # numbers spelled as a list: a new array
                    x = _as_array(x, None, cls.__name__)
                arrays.append(x)
                needs.append(False)
                parents.append(None)
                versions.append(None)
        record = any_needs and modes.local.grad_enabled
        if record:                 # the graph keeps its own copies: the caller may change theirs
            if plain:
                arrays = [a.copy() if isinstance(x, np.ndarray) else a for a, x in zip(arrays, inputs)]
            if params:
                params = {name: own(value) for name, value in params.items()}
        ctx = Context(cls, needs)
        try:
            out = cls.forward(ctx, *arrays, **params)
        except ValueError as err:  # e.g. numpy's broadcasting message: add the op's name
            raise ValueError(f"{cls.__name__}: {err}") from None
        extras = None
        if type(out) is tuple:
            out, *extras = out
        if type(out) is not np.ndarray:
            out = output_array(ctx, out)
        if record and out.dtype.kind != "f":
            raise TypeError(not_real(cls, out.dtype))
        result = _wrap(out, record)
        if out.base is not None:       # a view (reshape, transpose, indexing) of an input:
            share_version(result, inputs)   # an in-place update of one is an update of both
        if record:
            ctx.parents, ctx.inputs = tuple(parents), arrays
            result._ctx = ctx
            if ctx.saved_tensors:  # what check_saved needs; which input was saved, it finds then
                versions.append(result._version[0])
                ctx.tensors, ctx.versions = inputs, versions
        if modes.anomaly:
            if record:
                ctx.site = creation_site()
            check_finite(out, f"{cls.__name__} produced {{what}} in its forward output",
                         ctx.site if record else creation_site())
        if extras is not None:
            return (result, *extras)
        return result


def output_array(ctx, out):
    """The forward output as an ndarray: reductions and math on 0-d arrays return numpy scalars
    (np.float64), which have no ``base``, no ``flags``, no in-place operators. An op that saved
    its output (Exp) saved that scalar: it saves the array instead, so that create_graph knows it."""
    scalar, out = out, np.asarray(out)
    if ctx.saved_tensors:
        ctx.saved_tensors = tuple(out if a is scalar else a for a in ctx.saved_tensors)
    return out


def not_real(cls, dtype):
    """The message for a recorded op whose output is not a real floating-point array."""
    if dtype.kind == "c":
        return (f"{cls.__name__} produced a {dtype} result from an input that requires grad: minigrad "
                f"differentiates floating-point (real) tensors only; use complex data without grad "
                f"(under mg.no_grad(), or with inputs that do not require grad)")
    return (f"{cls.__name__} produced a {dtype} result from an input that requires grad: only "
            f"floating-point results can carry gradients; compute it under mg.no_grad() or from "
            f"detached inputs")


def own(value):
    """``value`` made the graph's own, whatever the caller does with theirs later: arrays (and a
    Tensor's data) copied; lists, tuples, dicts and slices rebuilt around owned parts; numbers,
    strings, None and other values as they are."""
    kind = type(value)
    if value is None or kind is int or kind is float or kind is bool or kind is str:
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Tensor):
        return value.data.copy()
    if kind is list:
        return [own(v) for v in value]
    if kind is tuple:
        return tuple(own(v) for v in value)
    if kind is dict:
        return {k: own(v) for k, v in value.items()}
    if kind is slice:
        return slice(own(value.start), own(value.stop), own(value.step))
    return value


def check_saved(ctx, output):
    """Before ``ctx``'s backward: raise if a tensor it saved (an input's data, or ``output``'s,
    the tensor it made) was changed in place since it was recorded (PyTorch's check). Only a
    tensor whose version moved is looked for among the saved arrays, by identity."""
    saved = ctx.saved_tensors
    for x, version, array in zip(ctx.tensors, ctx.versions, ctx.inputs):
        if version is not None and x._version[0] != version and any(a is array for a in saved):
            raise modified_since_saved(ctx, x, version)
    version = ctx.versions[-1]
    if output._version[0] != version and any(a is output.data for a in saved):
        raise modified_since_saved(ctx, output, version)


def saved_intermediates(ctx, output):
    """Positions in ``ctx.saved_tensors`` of float values forward computed (x - μ, a softmax, tie
    weights, a numpy float such as x.mean()): neither one of its inputs nor the output's data."""
    given = [id(a) for a in ctx.inputs] + [id(output.data)]
    return tuple(i for i, a in enumerate(ctx.saved_tensors)
                 if isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind == "f" and id(a) not in given)


def share_version(result, inputs):
    """Give ``result`` (whose array views another) the version cell of the input it views. A view
    made under no_grad of a tensor that requires grad is marked: changing it in place with grad
    enabled is refused (``Tensor._check_in_place``), as in PyTorch."""
    owner = result.data.base
    for x in inputs:
        if isinstance(x, Tensor) and (x.data is owner or x.data.base is owner):
            result._version = x._version
            if x._no_grad_view or (x.requires_grad and not modes.local.grad_enabled):
                result._no_grad_view = True
            return


def modified_since_saved(ctx, tensor, version):
    """The error backward raises, naming the op, when a tensor it saved was changed in place
    since (PyTorch's check; ``tensor`` is at another version than ``version``)."""
    return RuntimeError(
        f"one of the tensors {ctx.fn.__name__} saved for backward has been modified by an "
        f"in-place operation: a {tensor.dtype} tensor of shape {tensor.shape} is at version "
        f"{tensor._version[0]}; expected version {version} instead. Update it after "
        f"backward, or use an out-of-place op (t = t + 1)")
