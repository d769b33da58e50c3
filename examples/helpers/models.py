"""The data and models the examples share: the fixed digits split, MNIST-1D (and the digits) shaped
for each model, the MLP and the two CNNs with the normalisation of your choice (batch, renorm,
group, layer, none), the optimizers, the cosine and BatchRenorm schedules, and a PyTorch twin of
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
# The normalisation after each conv / hidden layer (--norm), and its form (--bn fused|composed).
NORMS = ("batch", "renorm", "group", "layer", "none")


def norm_layer(norm, shape, bn="fused", groups=None, momentum=0.1):
    """The ``norm`` layer for a layer output of shape (N, *shape): shape (C,) after a Linear,
    (C, L) after a Conv1d, (C, H, W) after a Conv2d; None for "none".

        batch    BatchNorm1d/2d(C): statistics per channel over the batch (and positions)
        renorm   BatchRenorm1d/2d(C): the same, corrected towards the running statistics
                 (its clip bounds follow ``renorm_bounds`` during training)
        group    GroupNorm(groups, C): per sample, over each group of C/groups channels
        layer    LayerNorm(shape): per sample over all its C·L values, γ and β per value (the
                 layer torch.nn.LayerNorm is; GroupNorm(1, C) has the same statistics with γ, β
                 per channel, Wu & He's "LN")

    ``bn`` ("fused" or "composed") picks each layer's form: one op or primitive ops; ``momentum``
    is batch norm's and batch renorm's, for their running statistics (PyTorch's 0.1 by default).
    """
    fused, channels, conv2d = bn == "fused", shape[0], len(shape) == 3
    if norm == "batch":
        return (nn.BatchNorm2d if conv2d else nn.BatchNorm1d)(channels, momentum=momentum, fused=fused)
    if norm == "renorm":
        return (nn.BatchRenorm2d if conv2d else nn.BatchRenorm1d)(channels, momentum=momentum, fused=fused)
    if norm == "group":
        return nn.GroupNorm(groups, channels, fused=fused)
    if norm == "layer":
        return nn.LayerNorm(shape, fused=fused)
    return None


def build_mlp(hidden, bn="fused", in_features=64, classes=10, momentum=0.1, norm="batch"):
    """(Linear -> norm -> ReLU) for each width in ``hidden``, then Linear.

    bn: "fused" or "composed" (the two forms of every normalisation), or "none" (no norm,
    whatever ``norm`` says). norm: "batch" or "renorm" (with ``momentum``), "layer" or "none";
    not "group": groups of a Linear's features have no channel structure to
    follow (and GroupNorm(1, h) is LayerNorm(h)).
    """
    if norm == "group":
        raise ValueError("build_mlp: GroupNorm groups a conv layer's channels; an MLP's hidden "
                         "features have no channels to group: use norm='layer' (LayerNorm(h) is "
                         "GroupNorm(1, h) with γ, β per feature)")
    norm = "none" if bn == "none" else norm
    layers, width = [], in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if norm != "none":
            layers.append(norm_layer(norm, (h,), bn, momentum=momentum))
        layers.append(nn.ReLU())
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def mlp_parameters(hidden, in_features=64, classes=10):
    """How many numbers build_mlp's weights hold (with batch norm's γ, β and statistics)."""
    widths = (in_features, *hidden, classes)
    return sum((a + 1) * b for a, b in zip(widths, widths[1:])) + 4 * sum(hidden)


def build_model(data, model, bn, norm="batch"):
    """The model train_cnn.py trains for (data, model, bn, norm): "logistic", "mlp" (the
    MNIST-1D paper's 100-100) or "cnn" (mnist1d_cnn or digits_cnn). bn "none": no norm."""
    features = 40 if data == "mnist1d" else 64
    if model == "logistic":
        return nn.Sequential(nn.Linear(features, 10))
    if model == "mlp":
        return build_mlp((100, 100), bn, in_features=features, norm=norm)
    return mnist1d_cnn(bn, norm=norm) if data == "mnist1d" else digits_cnn(bn, norm=norm)


def mnist1d_cnn(bn, channels=25, norm="batch", groups=5, momentum=0.1):
    """The paper's CNN (Greydanus & Kobak 2020): (N, 1, 40) -> 19 -> 10 -> 5 positions of 25
    channels -> (N, 10); each Conv1d followed by ``norm`` (norm_layer) and ReLU. GroupNorm:
    5 groups of 5 channels, the one grouping of 25 channels between LayerNorm's statistics
    (1 group) and instance norm's (25 groups of one channel: 5 values each in the last layer)."""
    norm = "none" if bn == "none" else norm
    layers, width, length = [], 1, 40
    for kernel in (5, 3, 3):
        layers.append(nn.Conv1d(width, channels, kernel, stride=2, padding=1))
        length = (length + 2 - kernel) // 2 + 1                    # 40 -> 19 -> 10 -> 5
        if norm != "none":
            layers.append(norm_layer(norm, (channels, length), bn, groups, momentum))
        layers.append(nn.ReLU())
        width = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * length, 10))


def digits_cnn(bn, widths=(16, 32), norm="batch", groups=4):
    """(N, 1, 8, 8) -> 16 x 4 x 4 -> 32 x 2 x 2 -> (N, 10): Conv2d -> norm (norm_layer) -> ReLU
    -> MaxPool2d, twice, then Linear. GroupNorm: 4 groups (of 4 and of 8 channels)."""
    norm = "none" if bn == "none" else norm
    layers, width, side = [], 1, 8
    for channels in widths:
        layers.append(nn.Conv2d(width, channels, 3, padding=1))    # keeps side x side
        if norm != "none":
            layers.append(norm_layer(norm, (channels, side, side), bn, groups))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        width, side = channels, side // 2                          # 8 -> 4 -> 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * side * side, 10))


def renorm_bounds(model, step, steps):
    """Set the clip bounds of every BatchRenorm layer in ``model`` for optimizer step ``step``
    (0, 1, ...) of a run of ``steps``, and return (r_max, d_max).

    The paper's schedule (nn.utils.batch_renorm_schedule: batch norm alone for 5k steps, then
    d_max reaches 5 at 25k and r_max 3 at 40k) is for ImageNet runs of well over 40k steps. We
    keep its proportions 5 : 25 : 40 and scale them so that r_max reaches 3 halfway: plain batch
    norm for the first 1/16 of the run while the running statistics settle, d_max 5 at 5/16,
    r_max 3 at 1/2, and the second half trains with the final bounds.
    """
    return nn.utils.batch_renorm_schedule(model, step, warmup=steps // 16, d_max_step=5 * steps // 16,
                                          r_max_step=steps // 2)


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
        elif name == "GroupNorm":
            layers.append(torch.nn.GroupNorm(m.num_groups, m.num_channels, eps=m.eps))
        elif name == "LayerNorm":
            layers.append(torch.nn.LayerNorm(m.normalized_shape, eps=m.eps))
        elif name == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(m.kernel_size))
        elif name.startswith("BatchRenorm"):
            raise ValueError(f"torch_twin: PyTorch has no {name} (batch renormalization is not in torch.nn)")
        else:
            layers.append(getattr(torch.nn, name)())
    twin = torch.nn.Sequential(*layers)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()}, strict=True)
    return twin
