"""minigrad.nn: modules and layers, PyTorch-shaped.

    module.py      Module, Parameter, Sequential (parameters, buffers, state_dict)
    batchnorm.py   batch norm, composed and fused side by side, the layer, population statistics
    layers.py      Linear, ReLU, Dropout
    functional.py  the functional forms (linear, relu, dropout, batch_norm, losses)
"""
from . import functional
from .batchnorm import BatchNorm1d, recompute_bn_stats
from .layers import Dropout, Linear, ReLU
from .module import Module, Parameter, Sequential

__all__ = ["BatchNorm1d", "Dropout", "Linear", "Module", "Parameter", "ReLU", "Sequential", "functional",
           "recompute_bn_stats"]
