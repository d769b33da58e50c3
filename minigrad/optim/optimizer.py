"""Optimizer, the base class of SGD and Adam: parameter groups, hyperparameters, state, state_dict.

PyTorch-shaped: ``opt.param_groups`` is a list of dicts, each holding "params" (a list of
Tensors) and every hyperparameter (``opt.defaults`` fills what a group leaves out); ``opt.state``
maps each parameter to its state arrays. Invariant: every check runs before anything changes,
so a refused call (the constructor, add_param_group, ``opt.lr = x``, load_state_dict, step)
leaves the optimizer and the parameters as they were.

    SGD([{"params": weights}, {"params": bn_gammas_and_betas, "weight_decay": 0}],
        lr=0.1, momentum=0.9, weight_decay=1e-4)     # no decay on batch norm's γ, β
    opt.param_groups[1]["lr"] = 0.01                 # used from the next step on
    opt.lr = 0.05                                    # only with one group; else AttributeError
"""
import operator
import os
import sys
import warnings
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from ..tensor import Tensor
from .loading import read_state_dict
from .validate import CHECKS, as_groups, check_gradient, describe, param_list

HERE = os.path.dirname(os.path.abspath(__file__))


class Optimizer:
    """Holds the parameter groups, the per-parameter state and the defaults. A subclass sets
    ``step()``, ``state_names`` (the entries of a parameter's state) and ``torch_defaults``
    (PyTorch's hyperparameters it lacks, at PyTorch's defaults: load_state_dict drops them)."""

    state_names = ()
    torch_defaults = {}

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_group(self.defaults, type(self).__name__)
        self.state = defaultdict(dict)          # parameter -> {name: ndarray}
        self.param_groups = []
        self._checked = {}                      # group index -> (what was checked, its parameters)
        groups, label = as_groups(params)
        for group in groups:
            self._add_group(group, label)

    def add_param_group(self, param_group):
        """Add ``{"params": Tensors, hyperparameter: value, ...}``; absent hyperparameters take
        ``defaults``. Checked in full (as the constructor does) before it is added."""
        self._add_group(param_group, None)

    def _add_group(self, param_group, label):
        index = len(self.param_groups)
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, but got {describe(param_group)}")
        if "params" not in param_group:
            raise TypeError(f"a parameter group is a dict {{'params': [...], 'lr': ..., ...}}, but param "
                            f"group {index} has no 'params' (keys {sorted(map(str, param_group))})")
        params = param_list(param_group["params"], label or f"param group {index} 'params'")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._check_group(group, f"param group {index}")
        if len({id(p) for p in params}) != len(params):      # PyTorch 2.13's warning, word for word
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, "
                          "this will cause an error; see github.com/pytorch/pytorch/issues/40967 for "
                          "more information (minigrad steps each parameter once)", UserWarning,
                          stacklevel=_user_stacklevel())
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append({"params": params, **group})

    def _check_group(self, group, where):
        """The one place hyperparameters are checked (construction, add_param_group, opt.lr = x,
        load_state_dict, step after a change): the names are exactly ``defaults``', each in range."""
        names = group.keys() - {"params"}
        if names != self.defaults.keys():
            raise ValueError(f"{type(self).__name__} has the hyperparameters {list(self.defaults)}; got "
                             f"unknown {sorted(map(str, names - self.defaults.keys()))}, missing "
                             f"{sorted(self.defaults.keys() - names)} in {where}")
        for name in self.defaults:
            CHECKS[name](group[name], where)

    def __getattr__(self, name):     # opt.lr: the hyperparameter of the only group
        if name in self.__dict__.get("defaults", {}):
            return self._only_group(name)[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):   # opt.lr = 0.01 must change what step() uses
        if name in self.__dict__.get("defaults", {}):
            group = self._only_group(name)
            self._check_group({**group, name: value}, f"{type(self).__name__}.{name}")
            group[name] = value
        else:
            object.__setattr__(self, name, value)

    def _only_group(self, name):
        if len(self.param_groups) != 1:
            raise AttributeError(f"optimizer.{name} is ambiguous: there are {len(self.param_groups)} "
                                 f"parameter groups; read or set opt.param_groups[i][{name!r}] instead")
        return self.param_groups[0]

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    # ------------------------------------------------------------------ what step() is given
    def _gradients(self):
        """[(group, [(p, gradient array), ...])]: each group's parameters that have a gradient,
        each once (a repeated one is tied weights: one update), all checked before step moves
        any. A group is checked again only when it changed since (its values are not the very
        objects last checked, or its "params" not the same tensors: cheap to compare); every
        gradient's shape and dtype, and every parameter's dtype, are checked every step."""
        work = []
        for i, group in enumerate(self.param_groups):
            seen = self._checked.get(i)          # (group's values, ids of its params, params once)
            if (seen is None or len(group) != len(seen[0]) or not all(map(operator.is_, group.values(), seen[0]))
                    or list(map(id, group["params"])) != seen[1]):
                seen = self._checked[i] = self._check_changed_group(group, i)
            pairs = []
            for p in seen[2]:
                grad = p.grad
                if grad is None:
                    continue
                if type(grad) is not np.ndarray:       # a Tensor after backward(create_graph=True)
                    grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
                data = p.data
                if grad.shape != data.shape or data.dtype.kind != "f" or grad.dtype.kind not in "biuf":
                    check_gradient(p, grad, f"param group {i}")   # raises, naming what is wrong
                pairs.append((p, grad))
            work.append((group, pairs))
        return work

    def _check_changed_group(self, group, i):
        """Check group ``i`` in full (it is new, or changed by hand since the last step). Returns
        (its values as _kept, the ids of its parameters, its parameters each once)."""
        where = f"param group {i}"
        self._check_group(group, where)
        params = param_list(group["params"], f"{where} 'params'")
        values = tuple(_kept(name, value) for name, value in group.items())
        return values, list(map(id, params)), list({id(p): p for p in params}.values())

    # ------------------------------------------------------------------ state_dict
    def state_dict(self):
        """PyTorch's layout, as copies: ``{"state": {index: {name: ndarray}}, "param_groups":
        [{hyperparameter: value, ..., "params": [index, ...]}, ...]}``. Parameters are numbered
        0, 1, ... through the groups in order (one repeated within a group takes its last
        position, as in PyTorch); a parameter without state has no entry in "state"."""
        index, groups, state, start = {}, [], {}, 0
        for group in self.param_groups:   # PyTorch's numbering, also for a repeated parameter
            index.update({id(p): i for i, p in enumerate(group["params"], start) if id(p) not in index})
            start += len(group["params"])
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {k: np.array(v, copy=True) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict()`` returned (also through mg.save / mg.load), or PyTorch's
        own optimizer state_dict. As in PyTorch, parameters are matched by position, group by
        group, and the saved hyperparameters replace the current ones. Everything is checked
        first (loading.py); a refused call changes nothing."""
        groups, state = read_state_dict(self, state_dict)
        self.param_groups, self.state, self._checked = groups, state, {}


def _kept(name, value):
    """``value`` as later steps compare it by identity: itself (kept alive, so no other object
    can take its id), but a list of hyperparameters (betas) as a tuple copy and "params" that is
    not a list as None: never the same object, so such a group is checked at every step."""
    if name == "params":
        return value if type(value) is list else None
    return tuple(value) if isinstance(value, list) else value


def _user_stacklevel():
    """warnings.warn's stacklevel for the caller's caller's first frame outside minigrad/optim:
    a warning names the user's line, however many __init__s (AdamW, Adam, Optimizer) lie between."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == HERE:
        level, frame = level + 1, frame.f_back
    return level
