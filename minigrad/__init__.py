"""minigrad: reverse-mode automatic differentiation on numpy, small enough to read.

This module is the public face only: it imports and re-exports. Reading order:
tensor.py -> autograd/function.py -> autograd/engine.py -> ops/ -> nn/ -> examples/.
"""
from .autograd.engine import grad
from .autograd.function import AnomalyError, Context, Function
from .gradcheck import GradcheckError, VacuousGradcheckWarning, gradcheck, gradgradcheck
from .modes import (detect_anomaly, enable_grad, eval_mode, is_grad_enabled, is_training, manual_seed,
                    no_grad, set_grad_enabled, set_training, trace_backward, train_mode)
from .serialization import load, save
from .tensor import Tensor, tensor
from . import nn, optim  # noqa: E402  (after the core they build on)
from . import graph  # noqa: E402

__version__ = "0.1.0"
