"""Test accuracy of a trained model in eval mode, and in training mode on test batches composed as
the training batches were; their difference is the gap that BatchRenorm sets out to close.

Invariant: nothing here changes the model it scores (training mode runs on a copy whose running
statistics are held still).
"""
import copy

import numpy as np

import minigrad as mg
from minigrad import nn


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchRenorm1d, nn.BatchRenorm2d)


def predict(model, X):
    """Eval mode: batch norm and batch renorm normalise with the running statistics."""
    with mg.eval_mode(), mg.no_grad():
        return model(mg.tensor(X)).data.argmax(axis=1)     # (N, ...) -> (N,)


def train_mode_predict(model, X, parts):
    """Training mode, each part of the test set (index arrays) normalised as a training batch:
    batch statistics (BatchNorm), batch statistics corrected by r and d from the running
    statistics at the final clip bounds (BatchRenorm), per-sample statistics (GroupNorm,
    LayerNorm). On a copy whose momentum is 0, so every part sees the trained running
    statistics, unchanged by the parts before it."""
    copied = copy.deepcopy(model)
    for layer in copied.modules():
        if isinstance(layer, BATCH_NORMS):
            layer.momentum = 0.0                           # running = 1·running + 0·batch
    predicted = np.empty(len(X), np.int64)
    with mg.train_mode(), mg.no_grad():
        for part in parts:
            predicted[part] = copied(mg.tensor(X[part])).data.argmax(axis=1)
    return predicted


def score(model, X, y, parts):
    """{"test": eval-mode accuracy on (X, y); "train_mode": training-mode accuracy with the test
    set cut into the normalisation batches ``parts`` (index arrays covering every sample once,
    made as the training batches were); "gap": train_mode - test}. For GroupNorm, LayerNorm and
    no normalisation the gap is zero by construction (the mode changes nothing in them): it is
    measured anyway, as a check."""
    test = float(np.mean(predict(model, X) == y))
    train_mode = float(np.mean(train_mode_predict(model, X, parts) == y))
    return {"test": test, "train_mode": train_mode, "gap": train_mode - test}
