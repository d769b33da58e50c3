"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

PyTorch's update rule exactly (torch/optim/adam.py, the single-tensor path, amsgrad=False).
The base class (optimizer.py) hands ``step`` only checked gradients of real floating-point
parameters; every update is in place on ``p.data``, and gradients are read, never changed.
"""
import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """Per step t = 1, 2, ..., for each parameter p with gradient g:
        p = p · (1 - lr · weight_decay)   with decoupled_weight_decay (AdamW),
        g = g + weight_decay · p          without (L2)
        m = β1 · m + (1 - β1) · g,        v = β2 · v + (1 - β2) · g²
        p = p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
    State per parameter: {"step": t (a 0-d int64), "exp_avg": m, "exp_avg_sq": v}."""

    state_names = ("step", "exp_avg", "exp_avg_sq")
    torch_defaults = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                      "differentiable": False, "fused": None}

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
                p._bump_version()       # in place (see SGD.step)


class AdamW(Adam):
    """Adam with decoupled weight decay: p = p · (1 - lr · weight_decay) before the Adam step
    (``Adam(..., decoupled_weight_decay=True)``, as in PyTorch 2.13), default weight_decay 0.01."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
