"""The data and models the examples share: the fixed digits split, MNIST-1D (and the digits) shaped
for each model, the MLP, the two CNNs, the optimizers, the cosine schedule, and a PyTorch twin of
a model for the tests and benchmarks.

Invariant: every split and permutation is fixed whatever --seed is, so runs are scored on the same
samples; a model's initial weights come from minigrad's global generator (``mg.manual_seed`` first).
"""
import math

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.data import load_digits, load_mnist1d, train_val_split

# The digits' validation split: a seeded stratified 20% of 1797 images (359), whatever --seed is.
VAL_FRACTION, SPLIT_SEED = 0.2, 0
# MNIST-1D: 10% of the 4000 training signals validate; one fixed permutation of the 40 positions.
CNN_VAL_FRACTION, PERMUTATION_SEED = 0.1, 0


def digits_split():
    """The bundled digits, split once for every example: (X_train, y_train, X_val, y_val),
    float32 (1438, 64) / int64 (1438,) and (359, 64) / (359,)."""
    X, y = load_digits()
    return train_val_split(X, y, VAL_FRACTION, seed=SPLIT_SEED)


def load_data(data, model, shuffle_positions):
    """(X_train, y_train, X_val, y_val, X_test, y_test) of "mnist1d" or "digits", shaped for
    ``model``: (N, features) for logistic/mlp, (N, 1, 40) or (N, 1, 8, 8) for the CNN."""
    if data == "mnist1d":
        X, y, X_test, y_test = load_mnist1d()                      # (4000, 40), (1000, 40)
    else:
        X, y, X_test, y_test = digits_split()                      # 1438 / 359 (train_mlp's)
    if shuffle_positions:                                          # the same permutation everywhere
        order = np.random.default_rng(PERMUTATION_SEED).permutation(X.shape[1])
        X, X_test = X[:, order], X_test[:, order]
    X_train, y_train, X_val, y_val = train_val_split(X, y, CNN_VAL_FRACTION, seed=SPLIT_SEED)
    image = (1, X.shape[1]) if data == "mnist1d" else (1, 8, 8)
    shape = (lambda a: a.reshape(len(a), *image)) if model == "cnn" else (lambda a: a)
    return shape(X_train), y_train, shape(X_val), y_val, shape(X_test), y_test


# ------------------------------------------------------------------ models
def build_mlp(hidden, bn="fused", in_features=64, classes=10, momentum=0.1):
    """(Linear -> BatchNorm1d -> ReLU) for each width in ``hidden``, then Linear.

    bn: "fused" or "composed" (the two batch norms of nn/batchnorm.py), or "none" (no BN).
    """
    layers, width = [], in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if bn != "none":
            layers.append(nn.BatchNorm1d(h, momentum=momentum, fused=(bn == "fused")))
        layers.append(nn.ReLU())
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def mlp_parameters(hidden, in_features=64, classes=10):
    """How many numbers build_mlp's weights hold (with batch norm's γ, β and statistics)."""
    widths = (in_features, *hidden, classes)
    return sum((a + 1) * b for a, b in zip(widths, widths[1:])) + 4 * sum(hidden)


def build_model(data, model, bn):
    """The model train_cnn.py trains for (data, model, bn): "logistic", "mlp" (the MNIST-1D
    paper's 100-100) or "cnn" (mnist1d_cnn or digits_cnn)."""
    features = 40 if data == "mnist1d" else 64
    if model == "logistic":
        return nn.Sequential(nn.Linear(features, 10))
    if model == "mlp":
        return build_mlp((100, 100), bn, in_features=features)
    return mnist1d_cnn(bn) if data == "mnist1d" else digits_cnn(bn)


def mnist1d_cnn(bn, channels=25):
    """The paper's CNN (Greydanus & Kobak 2020): (N, 1, 40) -> 19 -> 10 -> 5 positions of 25
    channels -> (N, 10); each Conv1d followed by BatchNorm1d (unless bn is "none") and ReLU."""
    layers, width = [], 1
    for kernel in (5, 3, 3):
        layers.append(nn.Conv1d(width, channels, kernel, stride=2, padding=1))
        if bn != "none":
            layers.append(nn.BatchNorm1d(channels, fused=bn == "fused"))
        layers.append(nn.ReLU())
        width = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 5, 10))


def digits_cnn(bn, widths=(16, 32)):
    """(N, 1, 8, 8) -> 16 x 4 x 4 -> 32 x 2 x 2 -> (N, 10): Conv2d -> BatchNorm2d -> ReLU ->
    MaxPool2d, twice, then Linear."""
    layers, width = [], 1
    for channels in widths:
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        if bn != "none":
            layers.append(nn.BatchNorm2d(channels, fused=bn == "fused"))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        width = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * 2 * 2, 10))


# ------------------------------------------------------------------ optimizers and schedule
def build_optimizer(name, params, lr):
    """"adam" (PyTorch's defaults) or "sgd" (momentum 0.9)."""
    if name == "sgd":
        return mg.optim.SGD(params, lr=lr, momentum=0.9)
    return mg.optim.Adam(params, lr=lr)


def learning_rate(config, epoch):
    """The learning rate of epoch 1, 2, ...: constant, or lr · (1 + cos(π (epoch - 1) / epochs)) / 2,
    from lr down towards 0 (a function of the epoch alone, so a resumed run follows it exactly)."""
    if config["schedule"] == "constant":
        return config["lr"]
    return config["lr"] * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config["epochs"]))


# ------------------------------------------------------------------ PyTorch, for comparisons
def torch_twin(net, torch):
    """The same Sequential built with ``torch`` (passed in: torch is never a dependency), with
    minigrad's weights loaded strictly into it: PyTorch's keys and shapes."""
    layers = []
    for m in net:
        name = type(m).__name__
        if name in ("Conv1d", "Conv2d"):
            layers.append(getattr(torch.nn, name)(m.in_channels, m.out_channels, m.kernel_size,
                                                  stride=m.stride, padding=m.padding))
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            layers.append(getattr(torch.nn, name)(m.num_features, momentum=m.momentum))
        elif name == "Linear":
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif name == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(m.kernel_size))
        else:
            layers.append(getattr(torch.nn, name)())
    twin = torch.nn.Sequential(*layers)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()}, strict=True)
    return twin
