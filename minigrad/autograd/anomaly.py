"""Anomaly detection's checks: where an op was created, and NaN/Inf in an array.

``mg.detect_anomaly()`` (in modes.py) turns them on: ``Function.apply`` then records each op's
creation site and checks its output, and the engine checks every gradient it computes.
"""
import os
import traceback

import numpy as np


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
    """Raise AnomalyError when a float array (or a Tensor's data) holds NaN or Inf.

    ``message`` contains ``{what}``, replaced by "NaN" or "Inf"; ``site`` is where the op was made.
    """
    if not isinstance(array, (np.ndarray, np.generic)):
        array = array.data                  # a Tensor under create_graph: check its array
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        what = "NaN" if np.isnan(array).any() else "Inf"
        raise AnomalyError(message.format(what=what) + f"; the op was created at {site}")
