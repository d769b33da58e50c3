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
from .function import check_versions

RELEASED = ("Trying to backward through the graph a second time (or to use a graph whose saved "
            "arrays were already freed). Pass retain_graph=True to the first backward() if you "
            "need to backward through it again.")


def topological_order(roots):
    """Tensors reachable from ``roots`` that require grad, each after every tensor it feeds.

    Iterative depth-first search: a node is emitted once all its parents were emitted; the
    reversed list is the order in which backward visits them.
    """
    order, visited = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        t, parents_done = stack.pop()
        if parents_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            if t._ctx.parents is None:
                raise RuntimeError(RELEASED)
            for p in reversed(t._ctx.parents):  # so the first input is emitted first
                if p is not None and id(p) not in visited:
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
    """
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = g if id(r) not in grads else grads[id(r)] + g
    order = topological_order(roots)
    wanted = None if capture is None else {id(t) for t in capture}
    # stored: ids of arrays that must not become a .grad as they are: already some tensor's
    # .grad, or the caller's own gradient passed to backward(g) (never copied unless it would)
    captured, stored = {}, {id(g) for g in root_grads if type(g) is np.ndarray}
    trace, anomaly = modes.trace, modes.anomaly   # read once, not once per node
    previous, modes.local.grad_enabled = modes.local.grad_enabled, create_graph
    try:
        for t in order:
            grad = grads.pop(id(t), None)
            if grad is None:
                continue  # no path from the roots carried a gradient here
            if type(grad) is not np.ndarray and isinstance(grad, np.generic):
                grad = np.asarray(grad)  # 0-d + 0-d is a numpy scalar: hooks and .grad get arrays
            if t._hooks:
                for hook in list(t._hooks.values()):
                    replaced = hook(grad)
                    if replaced is not None:
                        if tuple(replaced.shape) != tuple(grad.shape):
                            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a "
                                               f"gradient of shape {tuple(replaced.shape)} for a tensor "
                                               f"of shape {tuple(grad.shape)}: a hook may not change it")
                        grad = replaced
            ctx = t._ctx
            if wanted is not None:
                if id(t) in wanted:
                    captured[id(t)] = grad
            elif ctx is None or t._retains_grad:
                accumulate_grad(t, grad, stored)
                if ctx is None and t._post_hooks:
                    for hook in list(t._post_hooks.values()):
                        hook(t)                         # after .grad holds the total
            if ctx is None:
                continue
            fn = ctx.fn
            if ctx.versions is not None:
                for saved, version in ctx.versions:     # PyTorch's check of saved tensors
                    if (t if saved is None else saved)._version[0] != version:
                        check_versions(ctx, t)          # raises, naming the op
            if create_graph:  # the same backward on Tensors: the backward pass is recorded
                input_grads = fn.backward(ctx.differentiable(t),
                                          grad if isinstance(grad, Tensor) else _wrap(grad, False))
            else:
                input_grads = fn.backward(ctx, grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            if trace:
                print(f"backward {fn.__name__:<16} grad {tuple(grad.shape)} -> "
                      + ", ".join(str(None if g is None else tuple(g.shape)) for g in input_grads))
            for parent, g in zip(ctx.parents, input_grads):
                if parent is None or g is None:
                    continue
                data = parent.data
                if g.shape != data.shape:
                    g = unbroadcast(g, data.shape, fn.__name__)
                if (type(g) is not np.ndarray or g.dtype is not data.dtype) and not isinstance(g, Tensor):
                    g = np.asarray(g, dtype=data.dtype)  # a numpy scalar (0-d * 0-d gives one), or
                    # a float64 gradient for a float32 input (times a float64 constant)
                if anomaly:
                    check_finite(g, f"{fn.__name__}.backward returned {{what}} in a gradient",
                                 getattr(ctx, "site", "<created outside detect_anomaly>"))
                key = id(parent)
                grads[key] = grads[key] + g if key in grads else g
            if not retain_graph:
                ctx.saved_tensors = None
                ctx.parents = None
                ctx.versions = None
    finally:
        modes.local.grad_enabled = previous
    if capture is not None:
        return [copy_if(captured.get(id(t)), stored) for t in capture]
    return None


def copy_if(grad, stored):
    """A gradient handed back by ``mg.grad``: a copy if it is an array the caller already holds."""
    return grad.copy() if type(grad) is np.ndarray and id(grad) in stored else grad


def accumulate_grad(t, grad, stored):
    """Add ``grad`` into ``t.grad``. A new ``.grad`` array is never shared with another tensor
    (``a + b`` hands both the same gradient) nor a view (sum's backward broadcasts one)."""
    if t.grad is None:
        if type(grad) is np.ndarray and (id(grad) in stored or grad.base is not None
                                         or not grad.flags.writeable):
            grad = grad.copy()
        t.grad = grad
    else:
        t.grad = t.grad + grad
    stored.add(id(t.grad))


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
