"""Reading an optimizer state_dict back: minigrad's own (as mg.load returns it), or PyTorch's.

``read_state_dict(opt, state_dict)`` checks everything and returns the (param_groups, state)
that ``opt.load_state_dict`` then adopts, so a refused load changes nothing. Problems are a
ValueError naming the entry: another optimizer's state_dict, group or parameter counts, state
names, shapes, dtypes, hyperparameter ranges. PyTorch's hyperparameters that minigrad does not
have (``opt.torch_defaults``: foreach, fused, maximize, ...) are accepted at PyTorch's default
values and dropped; any other value of one of them is refused by name.
"""
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from ..checks import is_int
from ..tensor import Tensor
from .validate import describe


def read_state_dict(opt, state_dict):
    """(param_groups, state) for ``opt`` from ``state_dict``, checked in full."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_state_dict expects a dict, got {describe(state_dict)}")
    kind = type(opt).__name__
    if set(map(str, state_dict)) != {"state", "param_groups"} or len(state_dict) != 2:
        raise ValueError(f"an optimizer state_dict has the keys 'state' and 'param_groups'; got "
                         f"{sorted(map(str, state_dict))}")
    saved_groups = state_dict["param_groups"]
    if not isinstance(saved_groups, (list, tuple)):
        raise ValueError(f"state_dict 'param_groups' must be a list of dicts, got {describe(saved_groups)}")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(f"loaded state dict has a different number of parameter groups: "
                         f"{len(saved_groups)}, and {kind} has {len(opt.param_groups)}")
    groups, by_index = [], {}                      # by_index: saved index -> our parameter
    for i, (saved, group) in enumerate(zip(saved_groups, opt.param_groups)):
        where = f"state_dict param_groups[{i}]"
        saved = _mapping(saved, where)
        if "params" not in saved:
            raise ValueError(f"{where} has no 'params'")
        indices = _indices(saved["params"], f"{where}['params']")
        if len(indices) != len(group["params"]):
            raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size "
                             f"of optimizer's group: param_groups[{i}] has {len(indices)} parameters, "
                             f"{kind}'s group {i} has {len(group['params'])}")
        hyper = _hyperparameters(opt, saved, where)
        opt._check_group(hyper, where)
        for k, p in zip(indices, group["params"]):
            if by_index.setdefault(k, p) is not p:
                raise ValueError(f"{where}['params'] gives index {k} to two parameters")
        groups.append({"params": group["params"], **hyper})
    state = defaultdict(dict)
    for key, entry in _mapping(state_dict["state"], "'state'").items():
        k = _index(key, "state_dict 'state'")
        where = f"state_dict state[{k}]"
        if k not in by_index:
            raise ValueError(f"{where}: no such parameter (param_groups list {sorted(by_index)})")
        entry = _mapping(entry, where)
        if entry and set(entry) != set(opt.state_names):
            raise ValueError(f"{where} has the entries {sorted(map(str, entry))}, but {kind} keeps "
                             f"{sorted(opt.state_names)}: a state_dict of another optimizer?")
        p = by_index[k]
        state[p] = {name: _state_array(value, name, p, f"{where}[{name!r}]") for name, value in entry.items()}
    return groups, state


def _hyperparameters(opt, saved, where):
    """The saved group's hyperparameters without "params" and PyTorch's extras at their defaults."""
    kind, extras = type(opt).__name__, opt.torch_defaults
    hyper = {k: v for k, v in saved.items() if k != "params" and k not in extras}
    if set(hyper) != set(opt.defaults):
        raise ValueError(f"{where} has the hyperparameters {sorted(map(str, hyper))}, but {kind} has "
                         f"{sorted(opt.defaults)}: a state_dict of another optimizer?")
    changed = [f"{k}={saved[k]!r}" for k in extras if k in saved and saved[k] is not extras[k]]
    if changed:
        defaults = ", ".join(f"{k}={v!r}" for k, v in extras.items())
        raise ValueError(f"{where} has {', '.join(changed)}: minigrad's {kind} does not have this "
                         f"option; a PyTorch state_dict loads only with PyTorch's defaults ({defaults})")
    return hyper


def _mapping(value, where):
    if not isinstance(value, Mapping):
        raise ValueError(f"state_dict {where} must be a dict, got {describe(value)}")
    return value


def _index(key, where):
    if is_int(key) and key >= 0:
        return int(key)
    raise ValueError(f"{where}: {key!r} is not a parameter index (a non-negative integer)")


def _indices(params, where):
    if not isinstance(params, (list, tuple)):
        raise ValueError(f"{where} must be a list of parameter indices, got {params!r}")
    return [_index(k, where) for k in params]


def _state_array(value, name, p, where):
    """A copy of one state entry: "step" a count, any other a float buffer shaped like ``p``.
    Values may be arrays, numbers, Tensors, or PyTorch's CPU tensors (they convert to arrays)."""
    try:
        value = value.data if isinstance(value, Tensor) else np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as err:      # a ragged list, a tensor needing grad
        raise ValueError(f"{where} is not an array of numbers: {err}") from None
    if name == "step":
        if (value.shape != () or value.dtype.kind not in "iuf" or not np.isfinite(value) or value < 0
                or value != np.floor(value)):
            raise ValueError(f"{where} must be a non-negative integer count, got {value!r}")
        return np.array(int(value), dtype=np.int64)   # PyTorch keeps it as a float tensor
    if value.dtype.kind != "f":
        raise ValueError(f"{where} has dtype {value.dtype}; expected floating point (the parameter is {p.dtype})")
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {value.shape}, expected {p.shape} (the parameter's)")
    return np.array(value, dtype=p.dtype, copy=True)
