"""examples/batches/score.py: training-mode scoring leaves the model alone and uses the trained
running statistics for every batch; BatchRenorm unclipped scores as in eval mode (the paper's
identity), BatchNorm on tiny batches does not."""
import copy

import numpy as np

import minigrad as mg

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from batches import orders, score  # noqa: E402
from helpers import models  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402


def trained(norm, X, y, steps=6):
    """A CNN after a few training steps, so its running statistics are not the initial 0 and 1."""
    mg.manual_seed(0)
    model = models.mnist1d_cnn("fused", norm=norm)
    optimizer = mg.optim.AdamW(model.parameters(), lr=1e-2)
    if norm == "renorm":
        for layer in model.modules():
            if isinstance(layer, score.BATCH_NORMS):
                layer.r_max, layer.d_max = 1e6, 1e6        # unclipped: r and d as computed
    with mg.train_mode():
        for k in range(steps):
            loss = F.cross_entropy(model(mg.tensor(X[32 * k:32 * (k + 1)])), y[32 * k:32 * (k + 1)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def data(n=200):
    X, y = models.load_data("mnist1d", "cnn", False)[:2]
    return X[:n], y[:n]


def test_training_mode_scoring_leaves_the_model_alone_and_holds_its_statistics_still():
    X, y = data()
    model = trained("batch", X, y)
    before = copy.deepcopy(model.state_dict())
    parts = orders.split(np.arange(len(y)), 4)
    predicted = score.train_mode_predict(model, X, parts)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [m.momentum for m in model.modules() if isinstance(m, score.BATCH_NORMS)] == [0.1] * 3
    # each part on its own, in training mode, with the trained running statistics
    for part in (parts[0], parts[-1]):
        alone = copy.deepcopy(model)
        with mg.train_mode(), mg.no_grad():
            np.testing.assert_array_equal(predicted[part], alone(mg.tensor(X[part])).data.argmax(axis=1))


def test_batch_renorm_unclipped_scores_in_training_mode_as_in_eval_mode():
    X, y = data()
    model = trained("renorm", X, y)
    parts = orders.split(np.arange(len(y)), 2)              # batches of two: r and d far from 1 and 0
    numbers = score.score(model, X, y, parts)
    assert numbers["gap"] == 0 and numbers["train_mode"] == numbers["test"]
    np.testing.assert_array_equal(score.train_mode_predict(model, X, parts), score.predict(model, X))


def test_batch_norm_on_batches_of_two_scores_differently_in_the_two_modes():
    X, y = data()
    model = trained("batch", X, y)
    numbers = score.score(model, X, y, orders.split(np.arange(len(y)), 2))
    assert numbers["gap"] != 0
    assert numbers["gap"] == numbers["train_mode"] - numbers["test"]
    assert numbers["test"] == float(np.mean(score.predict(model, X) == y))
