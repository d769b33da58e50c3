"""Hooks: functions a user attaches to a tensor, and the handles that remove them.

``Tensor.register_hook(fn)``: the engine calls ``fn(grad)`` when the tensor's gradient is
complete; a non-None return replaces it (same kind and shape). ``register_post_accumulate_grad_hook
(fn)``: ``fn(tensor)`` after a leaf's ``.grad`` was accumulated (DistributedDataParallel uses it).
``Module.register_forward_pre_hook`` hands out the same ``RemovableHandle``.
"""
import numpy as np

from .. import modes
from ..tensor import Tensor


class RemovableHandle:
    """Returned by ``register_hook`` and ``register_post_accumulate_grad_hook``;
    ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks):
        self.hooks, self.id = hooks, next(modes.handle_ids)

    def remove(self):
        self.hooks.pop(self.id, None)


def add_hook(hooks, hook):
    """Register ``hook`` in the dict ``hooks`` under a fresh id; the handle removes it."""
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__} {hook!r:.60}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def run_hooks(t, grad):
    """Pass ``grad`` through ``t``'s hooks in order; a hook's non-None return replaces it and
    must be the same kind (an array, a Tensor under create_graph) of the same shape."""
    for hook in list(t._hooks.values()):
        replaced = hook(grad)
        if replaced is None:
            continue
        tensor = isinstance(grad, Tensor)
        if tensor != isinstance(replaced, Tensor) or not (
                tensor or (isinstance(replaced, (np.ndarray, np.generic)) and replaced.dtype.kind == "f")):
            raise TypeError(f"hook {hook_name(hook)} returned {type(replaced).__name__} "
                            f"{replaced!r:.60}; expected None or "
                            f"{'a Tensor' if tensor else 'a floating-point numpy array'} of shape "
                            f"{tuple(grad.shape)} (the gradient, changed)")
        if tuple(replaced.shape) != tuple(grad.shape):
            raise RuntimeError(f"hook {hook_name(hook)} returned a gradient of shape "
                               f"{tuple(replaced.shape)} for a tensor of shape {tuple(grad.shape)}: "
                               f"a hook may not change it")
        grad = replaced if tensor else np.asarray(replaced, dtype=grad.dtype)
    return grad


def run_post_accumulate_hooks(t):
    """Call each ``hook(t)`` registered with ``register_post_accumulate_grad_hook``."""
    for hook in list(t._post_accumulate_hooks.values()):
        returned = hook(t)
        if returned is not None:
            raise TypeError(f"post accumulate grad hook {hook_name(hook)} returned "
                            f"{type(returned).__name__} {returned!r:.60}; it must return None "
                            f"(it may change tensor.grad in place)")


def hook_name(hook):
    return repr(getattr(hook, "__name__", hook))
