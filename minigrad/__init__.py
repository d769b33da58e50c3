"""minigrad: reverse-mode automatic differentiation on numpy, small enough to read.

This module is the public face only: it imports and re-exports. Reading order:
tensor.py -> autograd/function.py -> autograd/engine.py -> ops/ -> nn/ -> examples/.
"""
from .autograd import graph
from .autograd.anomaly import AnomalyError
from .autograd.engine import grad
from .autograd.function import Context, Function
from .autograd.gradcheck import GradcheckError, VacuousGradcheckWarning, gradcheck, gradgradcheck
from .modes import (detect_anomaly, enable_grad, eval_mode, is_grad_enabled, is_training, manual_seed,
                    no_grad, set_grad_enabled, set_training, trace_backward, train_mode)
from .serialization import load, save
from .tensor import Tensor, tensor
from . import data, distributed, nn, optim  # after the core they build on

__all__ = ["AnomalyError", "Context", "Function", "GradcheckError", "Tensor", "VacuousGradcheckWarning",
           "data", "detect_anomaly", "distributed", "enable_grad", "eval_mode", "grad", "gradcheck",
           "gradgradcheck", "graph", "is_grad_enabled", "is_training", "load", "manual_seed", "nn", "no_grad", "optim",
           "save", "set_grad_enabled", "set_training", "tensor", "trace_backward", "train_mode"]

__version__ = "0.1.0"
