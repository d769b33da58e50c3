"""Optimizers with PyTorch's exact update rules: SGD (momentum, Nesterov), Adam, AdamW.

Updates are in place on the parameter arrays (``p.data``); gradients are read, never changed.
``state_dict()`` is a nested dict of arrays and numbers (savable with ``mg.save``), so that
training resumes exactly.
"""
import math

import numpy as np


class Optimizer:
    """Holds the parameters, their per-parameter state and the hyperparameters."""

    def __init__(self, params, hyperparameters):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.hyperparameters = dict(hyperparameters)
        self.state = {}  # parameter index -> {name: ndarray}

    def __getattr__(self, name):  # optimizer.lr etc. read the hyperparameters
        hyper = self.__dict__.get("hyperparameters", {})
        if name in hyper:
            return hyper[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):  # optimizer.lr = 0.01 must change what step() uses,
        hyper = self.__dict__.get("hyperparameters", {})  # not shadow it with an attribute
        if name in hyper:
            hyper[name] = value
        else:
            object.__setattr__(self, name, value)

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def state_dict(self):
        """{"state": {"0": {...arrays}}, "hyperparameters": {...}}; copies, keys are strings."""
        return {"state": {str(i): {k: np.array(v, copy=True) for k, v in s.items()}
                          for i, s in self.state.items()},
                "hyperparameters": dict(self.hyperparameters)}

    def load_state_dict(self, state_dict):
        """Restore state and hyperparameters (accepts what ``mg.load`` returns: 0-d arrays)."""
        state = state_dict.get("state", {})
        new = {}
        for key, entries in state.items():
            i = int(key)
            if not 0 <= i < len(self.params):
                raise ValueError(f"optimizer state for parameter {i}, but there are {len(self.params)}")
            new[i] = {}
            for name, value in entries.items():
                value = np.asarray(value)
                if name != "step" and value.shape != self.params[i].shape:
                    raise ValueError(f"optimizer state '{name}' of parameter {i} has shape {value.shape}, "
                                     f"expected {self.params[i].shape}")
                new[i][name] = value.astype(self.params[i].dtype) if name != "step" else value.copy()
        for name, value in state_dict.get("hyperparameters", {}).items():
            if name not in self.hyperparameters:
                raise ValueError(f"unknown optimizer hyperparameter '{name}' for {type(self).__name__}")
            value = np.asarray(value)
            self.hyperparameters[name] = value.item() if value.ndim == 0 else tuple(value.tolist())
        self.state = new


class SGD(Optimizer):
    """p -= lr · d, where g = grad + weight_decay · p and, with momentum μ,
    b = μ · b + (1 - dampening) · g (b = g on the first step), d = g + μ · b (Nesterov) or b."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD needs lr, momentum, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self):
        h = self.hyperparameters
        lr, momentum, dampening, decay = h["lr"], h["momentum"], h["dampening"], h["weight_decay"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if decay:
                g = g + decay * p.data
            if momentum:
                state = self.state.get(i)
                if state is None:
                    buf = self.state[i] = {"momentum_buffer": np.array(g, dtype=p.dtype, copy=True)}
                    buf = buf["momentum_buffer"]
                else:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += (1 - dampening) * g if dampening else g
                g = g + momentum * buf if h["nesterov"] else buf
            p.data -= lr * g


class Adam(Optimizer):
    """m = β1 m + (1-β1) g,  v = β2 v + (1-β2) g²,  p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
    weight_decay adds weight_decay · p to g (L2); AdamW decays p directly instead."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam hyperparameters: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self):
        h = self.hyperparameters
        lr, (beta1, beta2), eps, decay = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if decay and self.decoupled:
                p.data *= 1 - lr * decay
            elif decay:
                g = g + decay * p.data
            state = self.state.get(i)
            if state is None:
                state = self.state[i] = {"step": np.array(0, dtype=np.int64),
                                         "exp_avg": np.zeros_like(p.data),
                                         "exp_avg_sq": np.zeros_like(p.data)}
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


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr · weight_decay before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
