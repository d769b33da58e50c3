"""Optimizers with PyTorch's exact update rules: SGD (momentum, Nesterov), Adam, AdamW.

PyTorch-shaped: ``opt.param_groups`` is a list of dicts, each holding "params" (a list of
Tensors) and every hyperparameter (``opt.defaults`` fills what a group leaves out);
``opt.state`` maps each parameter to its state arrays. Updates are in place on ``p.data``;
gradients are read, never changed. Every check (parameters, hyperparameters, a loaded
state_dict) runs before anything is changed, so a refused call leaves the optimizer as it was.

    SGD([{"params": weights}, {"params": bn_gammas_and_betas, "weight_decay": 0}],
        lr=0.1, momentum=0.9, weight_decay=1e-4)     # no decay on batch norm's γ, β
    opt.param_groups[1]["lr"] = 0.01                 # used from the next step on
    opt.lr = 0.05                                    # only with one group; else AttributeError
"""
import math
import numbers
import warnings
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from .tensor import Tensor


# ------------------------------------------------------------------ hyperparameter checks
def _real(value, label, where):
    if type(value) is float or type(value) is int:     # the usual case, without the slow ABC check
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{label} must be a real number, got {value!r} ({type(value).__name__}){where}")


def _nonnegative(label):
    def check(value, where):
        _real(value, label, where)
        if not (math.isfinite(value) and value >= 0):   # NaN fails both
            raise ValueError(f"Invalid {label}: {value!r}{where} (expected a finite number >= 0)")
    return check


def _finite(label):
    def check(value, where):
        _real(value, label, where)
        if not math.isfinite(value):
            raise ValueError(f"Invalid {label}: {value!r}{where} (expected a finite number)")
    return check


def _flag(label):
    def check(value, where):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{label} must be True or False, got {value!r} ({type(value).__name__}){where}")
    return check


def _betas(value, where):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {value!r}{where}")
    for i, beta in enumerate(value):
        _real(beta, f"beta parameter at index {i}", where)
        if not 0 <= beta < 1:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta!r}{where} (expected 0 <= beta < 1)")


CHECKS = {"lr": _nonnegative("learning rate"), "momentum": _nonnegative("momentum value"),
          "dampening": _finite("dampening value"), "weight_decay": _nonnegative("weight_decay value"),
          "nesterov": _flag("nesterov"), "betas": _betas, "eps": _nonnegative("epsilon value"),
          "decoupled_weight_decay": _flag("decoupled_weight_decay")}


# ------------------------------------------------------------------ parameter checks
def _describe(x):
    shape = f" of shape {x.shape}" if isinstance(x, (Tensor, np.ndarray)) else ""
    module = type(x).__module__
    plain = module == "builtins" or module.startswith("minigrad")     # float, Parameter; numpy.ndarray
    return f"{'' if plain else module + '.'}{type(x).__qualname__}{shape}"


def _param_list(params, where):
    """The Tensors of one group, as a list; TypeError/ValueError naming the item that is wrong."""
    if isinstance(params, Tensor):
        return [params]                         # {"params": w}, as PyTorch allows in a group
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"optimizer parameters need to be organized in ordered collections, but the "
                        f"ordering of tensors in sets will change between runs ({where}). Use a list.")
    if isinstance(params, (np.ndarray, str, bytes, Mapping)) or not hasattr(params, "__iter__"):
        raise TypeError(f"{where} should be an iterable of Tensors, but got {_describe(params)}")
    params = list(params)
    for i, p in enumerate(params):
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
            raise TypeError(f"{where}[{i}] is a (name, Tensor) pair; minigrad's optimizers take "
                            f"Tensors: pass model.parameters(), not model.named_parameters()")
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer can only optimize Tensors, but {where}[{i}] is {_describe(p)}")
        if p.dtype.kind not in "fc":
            raise TypeError(f"{where}[{i}] has dtype {p.dtype}: only floating-point tensors can "
                            f"require gradients, so it could never be trained")
        if not (p.is_leaf or p._retains_grad):
            raise ValueError(f"can't optimize a non-leaf Tensor ({where}[{i}] was made by "
                             f"{p.grad_fn.fn.__name__}); optimize the leaf it was computed from")
    return params


def _as_groups(params):
    """The constructor's ``params`` as (groups, how errors name the items): Tensors make one group."""
    if isinstance(params, (Tensor, np.ndarray, Mapping, str, bytes)) or not hasattr(params, "__iter__"):
        hint = (" (wrap one tensor in a list: [w])" if isinstance(params, Tensor) else
                " (a dict is not a parameter group; pass model.parameters(), or a list of groups "
                "[{'params': ...}, ...])" if isinstance(params, Mapping) else "")
        raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                        f"dicts, but got {_describe(params)}{hint}")
    if isinstance(params, (set, frozenset)):
        _param_list(params, "params")           # raises: a set has no stable order
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list")
    kinds = [isinstance(item, Mapping) for item in items]
    if all(kinds):
        return items, None
    if any(kinds):
        raise TypeError(f"params mixes Tensors and parameter-group dicts (item {kinds.index(not kinds[0])} "
                        f"differs from item 0): give either Tensors or a list of groups")
    return [{"params": items}], "params"              # errors name params[i]


# ------------------------------------------------------------------ what mg.load gives back
def _plain(value):
    """0-d arrays -> Python numbers/bools, 1-d arrays -> tuples (what mg.save made of them)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value.item() if isinstance(value, np.generic) else value


def _index(key, where):
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)                         # mg.load's keys are strings
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) and key >= 0:
        return int(key)
    raise ValueError(f"{where}: {key!r} is not a parameter index (a non-negative integer)")


def _indices(params, where):
    if isinstance(params, np.ndarray) and params.ndim == 1 and (params.size == 0 or params.dtype.kind in "iu"):
        params = params.tolist()                # mg.load: [0, 1] -> int array, [] -> empty array
    if not isinstance(params, (list, tuple)):
        raise ValueError(f"{where} must be a list of parameter indices, got {params!r}")
    return [_index(k, where) for k in params]


def _as_list(groups):
    """"param_groups" as a list; mg.load gives a list of dicts back as {"0": ..., "1": ...}."""
    if isinstance(groups, Mapping):
        if sorted(groups, key=str) != sorted(map(str, range(len(groups)))):
            raise ValueError(f"state_dict 'param_groups' has keys {sorted(map(str, groups))}; expected a "
                             f"list of groups (or, from mg.load, the keys '0', '1', ...)")
        return [groups[k] for k in sorted(groups, key=int)]
    if not isinstance(groups, (list, tuple)):
        raise ValueError(f"state_dict 'param_groups' must be a list of dicts, got {_describe(groups)}")
    return list(groups)


def _count(value, where):
    if (value.shape != () or value.dtype.kind not in "iuf" or not np.isfinite(value) or value < 0
            or value != np.floor(value)):
        raise ValueError(f"{where} must be a non-negative integer count, got {value!r}")
    return np.array(int(value), dtype=np.int64)


class Optimizer:
    """Holds the parameter groups, the per-parameter state and the defaults.

    Subclasses set ``state_names`` (the entries of a parameter's state) and ``step()``.
    """

    state_names = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_group(self.defaults, "")
        self.state = defaultdict(dict)          # parameter -> {name: ndarray}
        self.param_groups = []
        groups, label = _as_groups(params)
        for group in groups:
            self._add_group(group, label)

    def add_param_group(self, param_group):
        """Add ``{"params": Tensors, hyperparameter: value, ...}``; absent hyperparameters take
        ``defaults``. Checked in full (as the constructor does) before it is added."""
        self._add_group(param_group, None)

    def _add_group(self, param_group, label):
        where = f" in param group {len(self.param_groups)}"
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, but got {_describe(param_group)}")
        if "params" not in param_group:
            raise TypeError(f"a parameter group is a dict {{'params': [...], 'lr': ..., ...}}, but param "
                            f"group {len(self.param_groups)} has no 'params' (keys {sorted(map(str, param_group))})")
        params = _param_list(param_group["params"], label or f"param group {len(self.param_groups)} 'params'")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._check_group(group, where)
        if len({id(p) for p in params}) != len(params):      # PyTorch 2.13's warning, word for word
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, "
                          "this will cause an error; see github.com/pytorch/pytorch/issues/40967 for "
                          "more information (minigrad steps each parameter once)", UserWarning, stacklevel=3)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append({"params": params, **group})

    def _check_group(self, group, where):
        """The one place hyperparameters are checked (construction, add_param_group, opt.lr = x,
        load_state_dict, every step): the names are exactly ``defaults``', each value in range."""
        names = group.keys() - {"params"}
        if names != self.defaults.keys():
            raise ValueError(f"{type(self).__name__} has the hyperparameters {list(self.defaults)}; got "
                             f"unknown {sorted(names - self.defaults.keys())}, missing "
                             f"{sorted(self.defaults.keys() - names)}{where}")
        for name in self.defaults:
            CHECKS[name](group[name], where)

    def __getattr__(self, name):     # opt.lr: the hyperparameter of the only group
        if name in self.__dict__.get("defaults", {}):
            return self._only_group(name)[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):   # opt.lr = 0.01 must change what step() uses
        if name in self.__dict__.get("defaults", {}):
            group = self._only_group(name)
            self._check_group({**group, name: value}, f" (setting {type(self).__name__}.{name})")
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

    def _gradients(self):
        """[(group, [(p, grad array), ...])] for the parameters that have a gradient. Every group
        and gradient is checked first, so a bad one raises before any parameter moves."""
        work = []
        checked = self.__dict__.setdefault("_checked", {})   # group index -> the values last checked
        for i, group in enumerate(self.param_groups):
            values = (len(group), *map(group.get, self.defaults))
            if checked.get(i) != values:          # changed by hand since (NaN never compares equal)
                self._check_group(group, f" in param group {i}")
                checked[i] = values
            params = group["params"]
            if len(set(map(id, params))) != len(params):   # a repeated parameter (tied weights):
                params = list({id(p): p for p in params}.values())   # stepped once
            pairs = [(p, p.grad) for p in params if p.grad is not None]
            for k, (p, grad) in enumerate(pairs):
                if type(grad) is not np.ndarray:       # a Tensor after backward(create_graph=True)
                    grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
                    pairs[k] = (p, grad)
                if grad.shape != p.data.shape:
                    raise ValueError(f"param group {i}: a parameter of shape {p.shape} has a gradient of "
                                     f"shape {grad.shape}")
            work.append((group, pairs))
        return work

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
        """Restore what ``state_dict()`` returned, also as ``mg.load`` gives it back (0-d arrays,
        string keys, "param_groups" as {"0": ..., "1": ...}, no "state" when it was empty).

        As in PyTorch, parameters are matched by position, group by group, and the state_dict's
        hyperparameters replace the current ones. Everything is checked first (ValueError naming
        the entry: another optimizer's state_dict, group or parameter counts, state names, shapes,
        dtypes, hyperparameter ranges); a refused call changes nothing. The layout of earlier
        minigrad versions, {"state", "hyperparameters"} for one group, is converted.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a dict, got {_describe(state_dict)}")
        kind = type(self).__name__
        if "hyperparameters" in state_dict and "param_groups" not in state_dict:   # the old layout
            old = dict(_as_mapping(state_dict["hyperparameters"], "'hyperparameters'"))
            if "decoupled_weight_decay" in self.defaults:    # the old layout did not say: ours
                old.setdefault("decoupled_weight_decay", self.defaults["decoupled_weight_decay"])
            total = sum(len(g["params"]) for g in self.param_groups)
            state_dict = {"state": state_dict.get("state", {}),
                          "param_groups": [dict(old, params=list(range(total)))]}
        unexpected = sorted(set(map(str, state_dict)) - {"state", "param_groups"})
        if unexpected or "param_groups" not in state_dict:
            raise ValueError(f"an optimizer state_dict has the keys 'state' and 'param_groups'; got "
                             f"{sorted(map(str, state_dict))}")
        saved_groups = _as_list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups: "
                             f"{len(saved_groups)}, and {kind} has {len(self.param_groups)}")
        groups, by_index = [], {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            saved = _as_mapping(saved, f"param_groups[{i}]")
            where = f" in state_dict param_groups[{i}]"
            if "params" not in saved:
                raise ValueError(f"state_dict param_groups[{i}] has no 'params'")
            indices = _indices(saved["params"], f"state_dict param_groups[{i}]['params']")
            if len(indices) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size "
                                 f"of optimizer's group: param_groups[{i}] has {len(indices)} parameters, "
                                 f"{kind}'s group {i} has {len(group['params'])}")
            hyper = {k: _plain(v) for k, v in saved.items() if k != "params"}
            if set(hyper) != set(self.defaults):
                raise ValueError(f"state_dict param_groups[{i}] has the hyperparameters {sorted(hyper)}, "
                                 f"but {kind} has {sorted(self.defaults)}: a state_dict of another optimizer?")
            self._check_group(hyper, where)
            for k, p in zip(indices, group["params"]):
                if by_index.setdefault(k, p) is not p:
                    raise ValueError(f"state_dict param_groups[{i}]['params'] gives index {k} to two parameters")
            groups.append({"params": group["params"], **hyper})
        state, seen = defaultdict(dict), set()
        for key, entry in _as_mapping(state_dict.get("state", {}), "'state'").items():
            k = _index(key, "state_dict 'state'")
            where = f"state_dict state[{k}]"
            if k in seen or k not in by_index:
                raise ValueError(f"{where}: " + ("given twice" if k in seen else
                                 f"no such parameter (param_groups list {sorted(by_index)})"))
            seen.add(k)
            entry = _as_mapping(entry, where)
            if entry and set(entry) != set(self.state_names):
                raise ValueError(f"{where} has the entries {sorted(entry)}, but {kind} keeps "
                                 f"{sorted(self.state_names)}: a state_dict of another optimizer?")
            state[by_index[k]] = {name: _state_array(value, name, by_index[k], f"{where}[{name!r}]")
                                  for name, value in entry.items()}
        self.param_groups, self.state = groups, state


def _as_mapping(value, where):
    if not isinstance(value, Mapping):
        raise ValueError(f"state_dict {where} must be a dict, got {_describe(value)}")
    return value


def _state_array(value, name, p, where):
    """A copy of one state entry: "step" a count, any other a float buffer shaped like ``p``."""
    value = value.data if isinstance(value, Tensor) else np.asarray(value)
    if name == "step":
        return _count(value, where)
    if value.dtype.kind not in ("fc" if p.dtype.kind == "c" else "f"):
        raise ValueError(f"{where} has dtype {value.dtype}; expected floating point (the parameter is {p.dtype})")
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {value.shape}, expected {p.shape} (the parameter's)")
    return np.array(value, dtype=p.dtype, copy=True)


class SGD(Optimizer):
    """p -= lr · d, where g = grad + weight_decay · p and, with momentum μ,
    b = μ · b + (1 - dampening) · g (b = g on the first step), d = g + μ · b (Nesterov) or b.
    State per parameter (with momentum): {"momentum_buffer": ndarray like p}."""

    state_names = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group, where):
        super()._check_group(group, where)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening; got momentum="
                             f"{group['momentum']!r}, dampening={group['dampening']!r}{where}")

    def step(self):
        for group, pairs in self._gradients():
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            decay, nesterov = group["weight_decay"], group["nesterov"]
            for p, g in pairs:
                if decay:
                    g = g + decay * p.data
                if momentum:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:      # a copy: the buffer must never alias p.grad
                        buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g if dampening else g
                    g = g + momentum * buf if nesterov else buf
                p.data -= lr * g
                p._version[0] += 1      # an in-place update, as torch's: backward through an
                #                         older graph that saved p now raises


class Adam(Optimizer):
    """m = β1 m + (1-β1) g,  v = β2 v + (1-β2) g²,  p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
    weight_decay adds weight_decay · p to g (L2); with decoupled_weight_decay (AdamW) p is
    multiplied by 1 - lr · weight_decay instead. State per parameter: {"step": 0-d int64,
    "exp_avg": m, "exp_avg_sq": v}."""

    state_names = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        betas = tuple(betas) if isinstance(betas, (list, tuple)) else betas
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def step(self):
        for group, pairs in self._gradients():
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, g in pairs:
                if decay and group["decoupled_weight_decay"]:
                    p.data *= 1 - lr * decay
                elif decay:
                    g = g + decay * p.data
                state = self.state[p]
                if not state:
                    state.update(step=np.array(0, dtype=np.int64), exp_avg=np.zeros_like(p.data),
                                 exp_avg_sq=np.zeros_like(p.data))
                state["step"] += 1
                t = int(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * (g * g)
                denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t)
                denom += eps
                p.data -= (lr / (1 - beta1 ** t)) * m / denom
                p._version[0] += 1      # an in-place update (see SGD.step)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr · weight_decay before the Adam step
    (``Adam(..., decoupled_weight_decay=True)``, as in PyTorch 2.13)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
