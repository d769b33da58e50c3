"""The comparison's arithmetic on results: differences, errors, medians, strict JSON.

Relative numbers are max |a - b| over the largest |entry|, so a near-zero entry cannot blow up.
"""
import math
import statistics

import numpy as np


def difference(a, b):
    """{"abs": max |a - b|, "rel": that over the largest |entry| of a or b}; None if absent."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    worst = float(np.max(np.abs(a - b), initial=0.0))
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return {"abs": worst, "rel": worst / scale if scale > 0 else worst}


def relative_error(got, ref):
    """max |got - ref| / max |ref|: the error relative to the reference's scale (nan stays)."""
    if got is None or ref is None:
        return None
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = float(np.max(np.abs(ref), initial=0.0)) or 1.0
    return float(np.max(np.abs(got - ref), initial=0.0)) / scale


def closer(fused, composed, margin=1.5):
    """Which error is smaller: "fused", "composed", or "tie" (within a factor ``margin``)."""
    if fused is None or composed is None:
        return None
    if composed > margin * fused:
        return "fused"
    return "composed" if fused > margin * composed else "tie"


def medians(times):
    """[(forward_s, backward_s), ...] -> median forward, backward and total (of the sums)."""
    forward, backward = zip(*times)
    return {"forward_s": statistics.median(forward), "backward_s": statistics.median(backward),
            "total_s": statistics.median(f + b for f, b in times)}


def jsonable(value):
    """Arrays -> lists, tuples -> lists, NaN/Inf -> None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value
