"""Argument checks shared across minigrad: the one place each kind of argument is validated.

Every helper takes ``(value, name, where)`` in that order (``where`` names the function or
layer, for the message), returns the value (an ``int``, an ``np.dtype``) and raises before
any work: TypeError for the wrong kind of value, ValueError for a value out of range, saying
what was expected and what came: ``"Conv1d: in_channels must be >= 1, got 0"``.
"""
import numbers

import numpy as np


def is_int(value):
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(value, name, where, minimum=None):
    """``value`` as an int: TypeError unless an integer (not a bool), ValueError if < ``minimum``."""
    if not is_int(value):
        raise TypeError(f"{where}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_real(value, name, where):
    """``value`` unchanged if it is a real number (int, float or a numpy one, not a bool), else TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    return value


def check_probability(p):
    """Dropout's p: a number in [0, 1] (the layer and the function share this check; torch's words)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    return p


def float_dtype(dtype, where):
    """``dtype`` as a real floating-point np.dtype, else TypeError. Complex is refused too:
    minigrad differentiates real tensors only (PyTorch would also take complex)."""
    try:
        if dtype is None:           # np.dtype(None) is float64: never what a caller meant
            raise TypeError
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where} only accepts floating point dtypes (e.g. np.float32), "
                        f"but got {dtype!r}") from None
    if dtype.kind != "f":
        real_only = "; minigrad differentiates real tensors only" if dtype.kind == "c" else ""
        raise TypeError(f"{where} only accepts floating point dtypes, but got desired dtype={dtype}{real_only}")
    return dtype
