"""SGD: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's update rule exactly (torch/optim/sgd.py). The base class (optimizer.py) holds the
parameter groups and hands ``step`` only checked gradients, so ``step`` is the formula alone:
every update is in place on ``p.data``, and gradients are read, never changed.
"""
import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """Per step, for each parameter p with gradient g:
        g = g + weight_decay · p
        b = g (first step),   b = momentum · b + (1 - dampening) · g (later steps)
        d = g + momentum · b (Nesterov),   d = b (momentum),   d = g (no momentum)
        p = p - lr · d
    State per parameter (with momentum): {"momentum_buffer": b, an array like p}."""

    state_names = ("momentum_buffer",)
    torch_defaults = {"maximize": False, "foreach": None, "differentiable": False, "fused": None}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

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
                p._bump_version()       # in place, as in torch: backward through an older graph
                #                         that saved p now raises

    def _check_group(self, group, where):
        super()._check_group(group, where)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening; got momentum="
                             f"{group['momentum']!r}, dampening={group['dampening']!r} in {where}")
