"""minigrad.nn: modules (module.py), layers (layers.py) and their functional forms (functional.py)."""
from . import functional
from .layers import BatchNorm1d, Dropout, Linear, ReLU, recompute_bn_stats
from .module import Module, Parameter, Sequential

__all__ = ["BatchNorm1d", "Dropout", "Linear", "Module", "Parameter", "ReLU", "Sequential", "functional",
           "recompute_bn_stats"]
