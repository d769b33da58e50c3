"""All of minigrad's global mutable state, and the context managers that toggle it.

Flags: gradient recording (``no_grad``), training vs evaluation (read by layers such as
BatchNorm1d and Dropout, never by primitive ops), anomaly detection and backward tracing; also
the random generator for initialisation and dropout, and the counter of hook-handle ids.
Invariant: every toggle restores the previous value in ``finally``, so an exception that
escapes a ``with`` block never leaves a flag changed. The engine reads the module attributes
directly (``modes.grad_enabled``) because that is the cheapest lookup on the hot path.
"""
import contextlib
import itertools

import numpy as np

grad_enabled = True   # Function.apply records a graph only while this is True
training = True       # layers normalise with batch statistics (BN) / drop units while True
anomaly = False       # check every forward output and gradient for NaN/Inf, keep creation sites
trace = False         # print each backward step (op, gradient shapes), for teaching
rng = np.random.default_rng()  # parameter initialisation and dropout masks; see manual_seed
handle_ids = itertools.count()  # a fresh id for every hook handle (Tensor.register_hook)


def is_grad_enabled():
    """True when operations record the graph needed for backward."""
    return grad_enabled


def set_grad_enabled(flag):
    """Turn graph recording on or off globally (prefer ``no_grad()``, which restores)."""
    global grad_enabled
    grad_enabled = bool(flag)


class _Toggle(contextlib.ContextDecorator):
    """Set one module flag on entry and restore the previous value on exit (also on error)."""

    def __init__(self, name, value):
        self.name, self.value = name, value
        self.saved = []  # a stack, so one instance may be re-entered (e.g. as a decorator)

    def __enter__(self):
        self.saved.append(globals()[self.name])
        globals()[self.name] = self.value
        return self

    def __exit__(self, *exc):
        globals()[self.name] = self.saved.pop()
        return False


def no_grad(fn=None):
    """Context manager and decorator (``@no_grad`` or ``@no_grad()``): operations inside
    record nothing; results have ``requires_grad=False``. For evaluation and manual updates."""
    toggle = _Toggle("grad_enabled", False)
    return toggle if fn is None else toggle(fn)


def enable_grad(fn=None):
    """Context manager and decorator: re-enable recording inside a ``no_grad`` block."""
    toggle = _Toggle("grad_enabled", True)
    return toggle if fn is None else toggle(fn)


def is_training():
    """The global train/eval flag that layers read (True at import).

    It is global on purpose: one switch for the whole program, as in tinygrad's
    ``Tensor.training``. The consequence: you cannot put one BatchNorm layer in eval while
    the rest of a model trains; ``Module.train()``/``eval()`` set this same flag.
    """
    return training


def set_training(flag):
    """Set the global train/eval flag (prefer ``train_mode()``/``eval_mode()``, which restore)."""
    global training
    training = bool(flag)


def train_mode():
    """Context manager and decorator: training mode inside, previous mode restored after."""
    return _Toggle("training", True)


def eval_mode():
    """Context manager and decorator: evaluation mode inside (BN uses running statistics)."""
    return _Toggle("training", False)


def detect_anomaly():
    """Context manager: a NaN or Inf produced in forward or backward raises AnomalyError.

    The error names the op and the user's line that created it. Costs a stack capture per op
    and a finiteness check per array, so use it for debugging only.
    """
    return _Toggle("anomaly", True)


def trace_backward():
    """Context manager: print one line per backward step (op, gradient shapes)."""
    return _Toggle("trace", True)


def manual_seed(seed):
    """Seed the generator that initialises parameters and draws dropout masks."""
    global rng
    rng = np.random.default_rng(seed)
    return rng
