"""All of minigrad's global mutable state, and the context managers that toggle it.

Per thread, as in PyTorch: gradient recording (``no_grad``), kept in ``local``, so a thread
inside ``no_grad()`` never switches off another thread's graph. Process-wide: the train/eval
flag (read by layers such as BatchNorm1d and Dropout, never by primitive ops), anomaly
detection and backward tracing; also the random generator for initialisation and dropout,
and the counter of hook-handle ids.
Invariant: every toggle restores the previous value in ``finally``, so an exception that
escapes a ``with`` block never leaves a flag changed. The engine reads the attributes directly
(``modes.local.grad_enabled``) because that is the cheapest lookup on the hot path.
"""
import contextlib
import itertools
import sys
import threading

import numpy as np


class _PerThread(threading.local):
    """State each thread has its own copy of; a new thread starts with these defaults."""

    def __init__(self):
        self.grad_enabled = True   # Function.apply records a graph only while this is True


local = _PerThread()
training = True       # process-wide: layers use batch statistics (BN) / drop units while True
anomaly = False       # check every forward output and gradient for NaN/Inf, keep creation sites
trace = False         # print each backward step (op, gradient shapes), for teaching
rng = np.random.default_rng()  # parameter initialisation and dropout masks; see manual_seed
handle_ids = itertools.count()  # a fresh id for every hook handle (Tensor.register_hook)


def is_grad_enabled():
    """True when operations in this thread record the graph needed for backward."""
    return local.grad_enabled


def set_grad_enabled(flag):
    """Turn graph recording on or off for this thread (prefer ``no_grad()``, which restores)."""
    local.grad_enabled = bool(flag)


class _Toggle(contextlib.ContextDecorator):
    """Set one flag (an attribute of ``owner``) on entry; restore the previous value on exit,
    also on error."""

    def __init__(self, owner, name, value):
        self.owner, self.name, self.value = owner, name, value
        self.saved = []  # a stack, so one instance may be re-entered

    def _recreate_cm(self):   # as a decorator: a fresh one per call (threads share no stack)
        return _Toggle(self.owner, self.name, self.value)

    def __enter__(self):          # returns None, as PyTorch's no_grad() does (`as g`: g is None)
        self.saved.append(getattr(self.owner, self.name))
        setattr(self.owner, self.name, self.value)

    def __exit__(self, *exc):     # returns None: an exception inside propagates
        setattr(self.owner, self.name, self.saved.pop())


_module = sys.modules[__name__]   # the owner of the process-wide flags


def no_grad(fn=None):
    """Context manager and decorator (``@no_grad`` or ``@no_grad()``): operations inside
    record nothing in this thread; results have ``requires_grad=False``. For evaluation and
    manual updates."""
    toggle = _Toggle(local, "grad_enabled", False)
    return toggle if fn is None else toggle(fn)


def enable_grad(fn=None):
    """Context manager and decorator: re-enable recording inside a ``no_grad`` block."""
    toggle = _Toggle(local, "grad_enabled", True)
    return toggle if fn is None else toggle(fn)


def is_training():
    """The global train/eval flag that layers read (True at import).

    It is global on purpose: one switch for the whole program (all threads), as in tinygrad's
    ``Tensor.training``. The consequence: you cannot put one BatchNorm layer in eval while
    the rest of a model trains (``freeze_batch_norm`` is the one per-layer exception), and a
    thread that evaluates under ``eval_mode()`` switches the flag for every thread;
    ``Module.train()``/``eval()`` set this same flag.
    """
    return training


def set_training(flag):
    """Set the global train/eval flag (prefer ``train_mode()``/``eval_mode()``, which restore)."""
    global training
    training = bool(flag)


def train_mode():
    """Context manager and decorator: training mode inside, previous mode restored after."""
    return _Toggle(_module, "training", True)


def eval_mode():
    """Context manager and decorator: evaluation mode inside (BN uses running statistics)."""
    return _Toggle(_module, "training", False)


def detect_anomaly():
    """Context manager: a NaN or Inf produced in forward or backward raises AnomalyError.

    The error names the op and the user's line that created it. Costs a stack capture per op
    and a finiteness check per array, so use it for debugging only.
    """
    return _Toggle(_module, "anomaly", True)


def trace_backward():
    """Context manager: print one line per backward step (op, gradient shapes)."""
    return _Toggle(_module, "trace", True)


def manual_seed(seed):
    """Seed the generator that initialises parameters and draws dropout masks."""
    global rng
    rng = np.random.default_rng(seed)
    return rng
