"""Module, Parameter and Sequential: containers for parameters, buffers and sub-modules.

PyTorch-shaped: attributes that are Parameters, Modules or registered buffers are tracked
automatically, ``state_dict`` keys are dotted paths (``"0.weight"``, ``"1.running_mean"``).
Buffers are plain numpy arrays (running statistics) updated in place. ``train()``/``eval()``
set minigrad's *global* train/eval flag (see ``minigrad.modes``), not a per-module one.
"""
from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from .. import modes
from ..checks import float_dtype
from ..autograd.hooks import RemovableHandle
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _castable(value, target):
    """(value as an array, None) if copying it into ``target`` loses nothing torch would keep,
    else (array or None, why not). Integer and bool targets take only values they hold exactly
    (torch would truncate 3.7 to 3 and NaN to -2^63); float targets refuse finite values that
    overflow to inf; nothing real takes complex (torch drops the imaginary part with a warning)."""
    try:
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
    except ValueError as err:                          # a ragged list
        return None, f"not an array of numbers ({err})"
    if array.dtype.kind not in "biufc":
        return array, f"expected numbers ({target.dtype}), got {type(value).__name__} of dtype {array.dtype}"
    if array.dtype.kind == "c" and target.dtype.kind != "c":
        return array, f"complex ({array.dtype}) into {target.dtype} would drop the imaginary part"
    if array.shape != target.shape:
        return array, None                             # reported as a shape
    with np.errstate(invalid="ignore", over="ignore"):
        cast = array.astype(target.dtype)
        if target.dtype.kind in "biu" and not np.array_equal(cast, array):
            return array, f"{target.dtype} cannot hold these {array.dtype} values exactly (fractions, NaN or out of range)"
        if target.dtype.kind in "fc" and np.any(np.isfinite(array) & ~np.isfinite(cast)):
            return array, f"values overflow to inf in {target.dtype}"
    return array, None


class Parameter(Tensor):
    """A leaf Tensor a Module learns: ``requires_grad=True`` and listed by ``parameters()``."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: override ``forward``; call the module to run it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                replaced = hook(self, args)          # may return new positional arguments
                if replaced is not None:
                    args = replaced if isinstance(replaced, tuple) else (replaced,)
        return self.forward(*args, **kwargs)

    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, args)`` before every forward; a non-None return replaces the
        positional arguments. Returns a handle with ``.remove()`` (as in PyTorch)."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        if isinstance(value, (Parameter, Module)):
            for table in (self._parameters, self._buffers, self._modules, self.__dict__):
                table.pop(name, None)
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter '{name}' "
                                f"(a Parameter or None expected)")
            self._parameters[name] = None
        elif name in self._buffers:
            self._buffers[name] = value  # an ndarray, or None
        elif name in self._modules:  # model.head = None removes the sub-module and its parameters
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to sub-module '{name}' "
                                f"(a Module or None expected)")
            del self._modules[name]
            object.__setattr__(self, name, None)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only called when normal lookup fails: layer.weight, on every call
        tables = self.__dict__
        if "_parameters" in tables:   # absent only before Module.__init__ ran
            for found in (tables["_parameters"], tables["_buffers"], tables["_modules"]):
                if name in found:
                    return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def register_buffer(self, name, array):
        """Track ``array`` (an ndarray, or None) as state that is saved but not learned."""
        self._buffers[name] = array

    def register_parameter(self, name, param):
        """Track ``param`` (a Parameter, or None for an absent one such as bias=False)."""
        self._parameters[name] = param

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix=""):
        """This module and every sub-module, depth first, as (dotted name, module)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        """(dotted name, Parameter) for every parameter that is not None, each once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        """(dotted name, ndarray) for every buffer that is not None."""
        for prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{prefix}.{name}" if prefix else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Copies of every parameter's data and buffer, keyed by dotted path, in module order."""
        state = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[dot + name] = p.data.copy()
            for name, b in module._buffers.items():
                if b is not None:
                    state[dot + name] = b.copy()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (ndarrays, Tensors or numbers) into the existing arrays, cast to their dtype.

        Every entry is checked before any is written, so a refused load changes nothing: a wrong
        shape, or a value the target cannot hold as torch's ``copy_`` would (strings, objects,
        complex into real, a fraction or NaN into an integer buffer, overflow to inf), always
        raises ValueError naming each key; with ``strict`` so do missing and unexpected keys.
        Returns (missing_keys, unexpected_keys).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a dict (name -> array), got {type(state_dict).__name__}")
        targets, tensors = {}, {}   # key -> array to write; key -> its Parameter
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            targets.update({dot + n: p.data for n, p in module._parameters.items() if p is not None})
            tensors.update({dot + n: p for n, p in module._parameters.items() if p is not None})
            targets.update({dot + n: b for n, b in module._buffers.items() if b is not None})
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        values, wrong_shape, wrong_value = {}, [], []
        for key, value in state_dict.items():
            if key in targets:
                value, problem = _castable(value, targets[key])
                if problem is None and value.shape != targets[key].shape:
                    wrong_shape.append(f"{key}: expected shape {targets[key].shape}, got {value.shape}")
                elif problem is not None:
                    wrong_value.append(f"{key}: {problem}")
                values[key] = value
        problems = [f"wrongly shaped: {'; '.join(wrong_shape)}"] if wrong_shape else []
        if wrong_value:
            problems.append(f"wrong values: {'; '.join(wrong_value)}")
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + ". ".join(problems))
        for key, value in values.items():
            np.copyto(targets[key], value, casting="unsafe")   # checked above: nothing is lost
            if key in tensors:
                tensors[key]._bump_version()                   # in place, as torch's copy_
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ conveniences
    def zero_grad(self):
        """Forget every parameter's gradient (sets ``.grad`` to None, as PyTorch does by default)."""
        for p in self.parameters():
            p.grad = None

    def to(self, dtype):
        """Cast parameters (and their gradients) and floating-point buffers to the floating-point
        ``dtype``; returns self. As in PyTorch, other dtypes are a TypeError (an integer model
        would truncate every weight and could not be trained), and so is complex here:
        minigrad differentiates real tensors only."""
        dtype = float_dtype(dtype, "Module.to")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:      # an array, or a Tensor after backward(create_graph=True)
                p.grad = (p.grad.data if isinstance(p.grad, Tensor) else p.grad).astype(dtype)
        for module in self.modules():
            for name, b in module._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    module._buffers[name] = b.astype(dtype)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def train(self, mode=True):
        """Set the **global** training flag (every layer of every model); returns self."""
        modes.set_training(mode)
        return self

    def eval(self):
        """Set the **global** flag to evaluation (BN uses running statistics); returns self."""
        return self.train(False)

    @property
    def training(self):
        return modes.is_training()

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(4, 8), ReLU())(x)``. Indexable, iterable."""

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential expects Modules; argument {i} is {type(module).__name__}")
            self._modules[str(i)] = module

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        return items[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
