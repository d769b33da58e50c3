"""minigrad.optim: optimizers with PyTorch's exact update rules, PyTorch-shaped.

Read the update rules first, each a ``step()`` of a dozen lines with its formula:
    sgd.py         SGD (momentum, dampening, Nesterov, weight decay)
    adam.py        Adam (L2 or decoupled weight decay) and AdamW
then what they share and what they check:
    optimizer.py   Optimizer: parameter groups, hyperparameters, per-parameter state, state_dict
    validate.py    what parameters and hyperparameters may be
    loading.py     what a state_dict to load may be (minigrad's own, or PyTorch's)
"""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD"]
