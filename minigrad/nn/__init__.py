"""minigrad.nn: modules and layers, PyTorch-shaped.

    module.py      Module, Parameter, Sequential (parameters, buffers, state_dict)
    batchnorm.py   batch norm, composed and fused side by side, the layer, population statistics
    layers.py      Linear, ReLU, Dropout
    utils.py       after training: fold batch norm into the layer before it, freeze its statistics
    functional.py  the functional forms (linear, relu, dropout, batch_norm, losses)
"""
from . import functional, utils
from .batchnorm import BatchNorm1d, BatchNorm2d, recompute_bn_stats
from .layers import Dropout, Linear, ReLU
from .module import Module, Parameter, Sequential

__all__ = ["BatchNorm1d", "BatchNorm2d", "Dropout", "Linear", "Module", "Parameter", "ReLU", "Sequential", "functional",
           "recompute_bn_stats", "utils"]
