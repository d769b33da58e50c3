"""The backward pass: topological order, one backward call per node, gradient accumulation.

Invariants: traversal is iterative (no recursion limit on deep graphs) and keys nodes by
identity; every gradient that reaches a tensor has that tensor's shape, made so in exactly one
place (``unbroadcast``); after a backward without ``retain_graph`` every node on the path drops
its saved arrays and parents, so a training loop's memory does not grow.
"""
import numpy as np

from .. import modes
from ..tensor import Tensor, _root_grad, _wrap
from .anomaly import check_finite
from .function import check_saved
from .hooks import run_hooks, run_post_accumulate_hooks

RELEASED = ("Trying to backward through the graph a second time (or to use a graph whose saved "
            "arrays were already freed). Pass retain_graph=True to the first backward() if you "
            "need to backward through it again.")


def topological_order(roots):
    """Tensors reachable from ``roots`` that require grad, each after every tensor it feeds.

    Iterative depth-first search: a node is emitted once all its parents were emitted; the
    reversed list is the order in which backward visits them. The visited set holds the Tensors
    themselves: their hash is their identity (``object.__hash__``), and distinct live objects
    never share one, so their elementwise ``==`` is never called.
    """
    order, visited = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        t, parents_done = stack.pop()
        if parents_done:
            order.append(t)
            continue
        if t in visited:
            continue
        visited.add(t)
        ctx = t._ctx
        if ctx is None:                      # a leaf waits for nothing
            order.append(t)
            continue
        if ctx.parents is None:
            raise RuntimeError(RELEASED)
        stack.append((t, True))
        for p in reversed(ctx.parents):      # so the first input is emitted first
            if p is not None and p not in visited:
                stack.append((p, False))
    order.reverse()
    return order


def unbroadcast(grad, shape, op):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``.

    (2, 3, 4) -> (3, 1): sum axis 0 (added) and axis 2 (stretched from 1), then reshape.
    Works on arrays and on Tensors (create_graph), since both have ``sum`` and ``reshape``.
    """
    extra = grad.ndim - len(shape)
    if extra >= 0 and all(g == n or n == 1 for g, n in zip(grad.shape[extra:], shape)):
        stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
        return grad.sum(axis=tuple(range(extra)) + stretched, keepdims=True).reshape(shape)
    raise ValueError(f"{op}.backward produced a gradient of shape {tuple(grad.shape)} for an input "
                     f"of shape {shape}; it cannot be summed down to the input's shape")


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None):
    """Propagate ``root_grads`` from ``roots`` to every tensor that requires grad.

    Without ``capture``: leaves (and tensors that called ``retain_grad``) accumulate into
    ``.grad``. With ``capture`` (a list of tensors, for ``mg.grad``): nothing is written to
    ``.grad``; returns the gradient reaching each captured tensor (None if none did).
    With ``create_graph`` gradients are Tensors and the backward pass itself is recorded.

    Each tensor, in topological order: (1) its gradient, the sum of what reached it, is made an
    array of its dtype and passed through its hooks; (2) it is kept (``.grad``, or captured);
    (3) its op's backward runs, after the check of the tensors it saved; (4) each input's
    gradient, summed down to the input's shape, is added to what reached that input; (5) the
    node releases its saved arrays. ``grads`` and ``captured`` are keyed by the Tensors
    themselves (identity hashes, as in ``topological_order``).
    """
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[r] = g if r not in grads else grads[r] + g
    order = topological_order(roots)
    wanted = None if capture is None else set(capture)
    captured = {}
    taken = {id(g) for g in root_grads if type(g) is np.ndarray}   # see take(): the caller's
    trace, anomaly = modes.trace, modes.anomaly   # read once, not once per node
    previous, modes.local.grad_enabled = modes.local.grad_enabled, create_graph
    try:
        for t in order:
            grad = grads.pop(t, None)
            if grad is None:
                continue  # no path from the roots carried a gradient here
            # (1) numpy scalars (0-d * 0-d gives one) become arrays; a float64 gradient for a
            # float32 tensor (times a float64 constant) becomes float32; then the hooks
            if type(grad) is not np.ndarray or grad.dtype is not t.data.dtype:
                grad = grad if isinstance(grad, Tensor) else np.asarray(grad, dtype=t.data.dtype)
            if t._hooks:
                grad = run_hooks(t, grad)
            ctx = t._ctx
            # (2) kept
            if wanted is not None:
                if t in wanted:
                    captured[t] = grad
            elif ctx is None or t._retains_grad:
                t.grad = take(grad, taken) if t.grad is None else t.grad + grad
                if t._post_accumulate_hooks:
                    run_post_accumulate_hooks(t)
            if ctx is None:
                continue
            # (3) backward, once the tensors it saved are known unchanged (PyTorch's check)
            if ctx.versions is not None:
                check_saved(ctx, t)
            fn = ctx.fn
            if create_graph:  # the same backward on Tensors: the backward pass is recorded
                input_grads = fn.backward(ctx.differentiable(t),
                                          grad if isinstance(grad, Tensor) else _wrap(grad, False))
            else:
                input_grads = fn.backward(ctx, grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            if trace:
                print_step(fn, grad, input_grads)
            # (4) to each input that requires grad, its gradient in its shape
            for parent, g in zip(ctx.parents, input_grads):
                if parent is None or g is None:
                    continue
                if g.shape != parent.data.shape:
                    g = unbroadcast(g, parent.data.shape, fn.__name__)
                if anomaly:
                    check_finite(g, f"{fn.__name__}.backward returned {{what}} in a gradient",
                                 getattr(ctx, "site", "<created outside detect_anomaly>"))
                grads[parent] = grads[parent] + g if parent in grads else g
            # (5) free the saved arrays: a training loop's memory stays flat
            if not retain_graph:
                ctx.saved_tensors = ctx.parents = ctx.versions = ctx.tensors = ctx.inputs = None
    finally:
        modes.local.grad_enabled = previous
    if capture is not None:
        return [take(captured[t], taken) if t in captured else None for t in capture]
    return None


def take(grad, taken):
    """``grad`` to become a new ``.grad`` or an ``mg.grad`` result: itself, or a copy when someone
    else may hold it. That is when it is a view of another array (Sum's backward broadcasts one,
    a read-only view) or an array already handed out (``taken``: the caller's
    backward(g) passes through Add unchanged; Add hands one array to both inputs). Then it is
    taken too."""
    if type(grad) is np.ndarray:
        if grad.base is not None or id(grad) in taken:
            grad = grad.copy()
        taken.add(id(grad))
    return grad


def print_step(fn, grad, input_grads):
    """trace_backward's line: the op, the gradient it got, the gradient of each input."""
    print(f"backward {fn.__name__:<16} grad {tuple(grad.shape)} -> "
          + ", ".join(str(None if g is None else tuple(g.shape)) for g in input_grads))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of stored in ``.grad``.

    Like torch.autograd.grad: ``grad_outputs`` weights each output (default 1 for one-element
    outputs); returns a tuple of Tensors, one per input (None for an unused input when
    ``allow_unused``). With ``create_graph`` the results are part of a graph and can be
    differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: output {i} (shape {t.shape}) does not require grad and has no graph")
    roots = [_root_grad(o, g, create_graph) for o, g in zip(outputs, grad_outputs)]
    results = run_backward(outputs, roots, create_graph if retain_graph is None else retain_graph,
                           create_graph, capture=inputs)
    for i, g in enumerate(results):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {inputs[i].shape}) was not used to compute "
                               f"the outputs; pass allow_unused=True to get None for it")
    return tuple(g if g is None or isinstance(g, Tensor) else _wrap(g, False) for g in results)
