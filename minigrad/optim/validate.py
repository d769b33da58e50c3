"""What an optimizer's arguments may be: its parameters, and each hyperparameter's range.

``as_groups`` and ``param_list`` check what the constructor and ``add_param_group`` are given
(the Tensors of each group: leaves, real floating point, in an ordered collection); ``CHECKS``
maps every hyperparameter to its one check. A wrong type is a TypeError ("where: name must be
..."), a value out of range a ValueError in PyTorch's words ("Invalid learning rate: -1.0 ...").
"""
import math
from collections.abc import Mapping

import numpy as np

from ..checks import check_real
from ..tensor import Tensor


# ------------------------------------------------------------------ hyperparameters
def _nonnegative(label):
    def check(value, where):
        check_real(value, label, where)
        if not (math.isfinite(value) and value >= 0):   # NaN fails both
            raise ValueError(f"Invalid {label}: {value!r} in {where} (expected a finite number >= 0)")
    return check


def _finite(label):
    def check(value, where):
        check_real(value, label, where)
        if not math.isfinite(value):
            raise ValueError(f"Invalid {label}: {value!r} in {where} (expected a finite number)")
    return check


def _flag(label):
    def check(value, where):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: {label} must be True or False, got {value!r} ({type(value).__name__})")
    return check


def _betas(value, where):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{where}: betas must be a pair (beta1, beta2), got {value!r}")
    for i, beta in enumerate(value):
        check_real(beta, f"beta parameter at index {i}", where)
        if not 0 <= beta < 1:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta!r} in {where} (expected 0 <= beta < 1)")


CHECKS = {"lr": _nonnegative("learning rate"), "momentum": _nonnegative("momentum value"),
          "dampening": _finite("dampening value"), "weight_decay": _nonnegative("weight_decay value"),
          "nesterov": _flag("nesterov"), "betas": _betas, "eps": _nonnegative("epsilon value"),
          "decoupled_weight_decay": _flag("decoupled_weight_decay")}


# ------------------------------------------------------------------ parameters
def describe(x):
    """How a message names a value's type: "float", "Parameter of shape (3, 2)", "numpy.ndarray ..."."""
    shape = f" of shape {x.shape}" if isinstance(x, (Tensor, np.ndarray)) else ""
    module = type(x).__module__
    plain = module == "builtins" or module.startswith("minigrad")     # float, Parameter; numpy.ndarray
    return f"{'' if plain else module + '.'}{type(x).__qualname__}{shape}"


def as_groups(params):
    """The constructor's ``params`` as (groups, how errors name the items): Tensors make one group."""
    if isinstance(params, (Tensor, np.ndarray, Mapping, str, bytes)) or not hasattr(params, "__iter__"):
        hint = (" (wrap one tensor in a list: [w])" if isinstance(params, Tensor) else
                " (a dict is not a parameter group; pass model.parameters(), or a list of groups "
                "[{'params': ...}, ...])" if isinstance(params, Mapping) else "")
        raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                        f"dicts, but got {describe(params)}{hint}")
    if isinstance(params, (set, frozenset)):
        param_list(params, "params")            # raises: a set has no stable order
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


def param_list(params, where):
    """The Tensors of one group, as a list; TypeError/ValueError naming the item that is wrong."""
    if isinstance(params, Tensor):
        return [params]                         # {"params": w}, as PyTorch allows in a group
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"optimizer parameters need to be organized in ordered collections, but the "
                        f"ordering of tensors in sets will change between runs ({where}). Use a list.")
    if isinstance(params, (np.ndarray, str, bytes, Mapping)) or not hasattr(params, "__iter__"):
        raise TypeError(f"{where} should be an iterable of Tensors, but got {describe(params)}")
    params = list(params)
    for i, p in enumerate(params):
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
            raise TypeError(f"{where}[{i}] is a (name, Tensor) pair; minigrad's optimizers take "
                            f"Tensors: pass model.parameters(), not model.named_parameters()")
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer can only optimize Tensors, but {where}[{i}] is {describe(p)}")
        if p.dtype.kind != "f":
            raise TypeError(f"{where}[{i}] has dtype {p.dtype}: " + (
                "minigrad differentiates real tensors only, so its optimizers take real floating-point "
                "parameters" if p.dtype.kind == "c" else
                "only floating-point tensors can require gradients, so it could never be trained"))
        if not (p.is_leaf or p._retains_grad):
            raise ValueError(f"can't optimize a non-leaf Tensor ({where}[{i}] was made by "
                             f"{p.grad_fn.fn.__name__}); optimize the leaf it was computed from")
    return params


def check_gradient(p, grad, where):
    """Raise because ``p`` cannot be stepped with ``grad`` (an array): the one message for each case."""
    if p.data.dtype.kind != "f":     # .data replaced after construction, e.g. by a complex array
        raise TypeError(f"{where}: a parameter of shape {p.shape} now has dtype {p.dtype}; optimizers "
                        f"step real floating-point parameters only (minigrad differentiates real "
                        f"tensors only)")
    if grad.dtype.kind not in "biuf":
        raise TypeError(f"{where}: a parameter of dtype {p.dtype} has a gradient of dtype {grad.dtype}; "
                        f"expected real numbers")
    if grad.shape != p.data.shape:
        raise ValueError(f"{where}: a parameter of shape {p.shape} has a gradient of shape {grad.shape}")
