"""minigrad.nn: modules and layers, PyTorch-shaped.

    module.py      Module, Parameter, Sequential (parameters, buffers, state_dict)
    batchnorm.py   batch norm, composed and fused side by side, the layers; SyncBatchNorm (every rank's batch)
    batchrenorm.py BatchRenorm1d/2d (Ioffe 2017): batch norm that uses its running statistics in training
    normalization.py  GroupNorm, LayerNorm: per-sample statistics, composed and fused side by side
    layers.py      Linear, ReLU, Dropout
    conv.py        Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, Flatten
    utils.py       after training: fold batch norm, freeze or recompute its statistics; the renorm schedule
    parallel.py    DistributedDataParallel: gradients averaged over ranks
    functional.py  the functional forms (linear, relu, dropout, batch_norm, group_norm, layer_norm, losses)
"""
from . import functional, parallel, utils
from .batchnorm import BatchNorm1d, BatchNorm2d, SyncBatchNorm
from .batchrenorm import BatchRenorm1d, BatchRenorm2d
from .conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, Flatten, MaxPool1d, MaxPool2d
from .layers import Dropout, Linear, ReLU
from .module import Module, Parameter, Sequential
from .normalization import GroupNorm, LayerNorm
from .utils import recompute_bn_stats

__all__ = ["AvgPool1d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "BatchRenorm1d", "BatchRenorm2d", "Conv1d",
           "Conv2d", "Dropout", "Flatten", "GroupNorm", "LayerNorm", "Linear", "MaxPool1d", "MaxPool2d", "Module",
           "Parameter", "ReLU", "Sequential", "SyncBatchNorm", "functional", "parallel", "recompute_bn_stats",
           "utils"]
