"""Train a CNN (or an MLP, or logistic regression) on MNIST-1D or the 8x8 digits, tracking
validation accuracy with batch norm's running statistics after every epoch.

    python examples/train_cnn.py [--data mnist1d|digits] [--model logistic|mlp|cnn]
        [--bn fused|composed|none] [--shuffle-positions] [--epochs N] [--batch-size B] [--lr LR]
        [--schedule cosine|constant] [--seed S] [--metrics PATH] [--save CKPT] [--resume CKPT]
        [--plot PNG] [--quiet]

MNIST-1D's CNN is the paper's (Greydanus & Kobak 2020): three Conv1d of 25 channels (kernel 5
stride 2 pad 1, then kernel 3 stride 2 pad 1 twice), each followed by BatchNorm1d (unless
--bn none) and ReLU, then Linear(125, 10). The digits' CNN sees 1x8x8 images: Conv2d -> BatchNorm2d
-> ReLU -> MaxPool2d, twice, then Linear. --shuffle-positions applies one fixed permutation to the
input positions (the paper's test of a CNN's spatial prior). AdamW (PyTorch's default weight
decay 1e-2), its learning rate decayed along a cosine over the epochs by default. The validation split is a seeded stratified part of
the training set; the test set is scored once, at the end.
"""
import argparse
import math
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before numpy loads: toy-sized matmuls run
# faster on one BLAS thread than on several that wait for each other

import numpy as np

import common
import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader, load_mnist1d, train_val_split

DEFAULTS = {"data": "mnist1d", "model": "cnn", "bn": "fused", "shuffle_positions": False,
            "epochs": 100, "batch_size": 100, "lr": 1e-2, "schedule": "cosine", "seed": 0}
VAL_FRACTION, SPLIT_SEED, PERMUTATION_SEED = 0.1, 0, 0   # fixed whatever --seed is


def load(data, model, shuffle_positions):
    """(X_train, y_train, X_val, y_val, X_test, y_test), shaped for ``model``: (N, features)
    for logistic/mlp, (N, 1, 40) or (N, 1, 8, 8) for the CNN."""
    if data == "mnist1d":
        X, y, X_test, y_test = load_mnist1d()                      # (4000, 40), (1000, 40)
    else:
        X, y, X_test, y_test = common.digits_split()               # 1438 / 359 (as train_mlp's)
    if shuffle_positions:                                          # the same permutation everywhere
        order = np.random.default_rng(PERMUTATION_SEED).permutation(X.shape[1])
        X, X_test = X[:, order], X_test[:, order]
    X_train, y_train, X_val, y_val = train_val_split(X, y, VAL_FRACTION, seed=SPLIT_SEED)
    image = (1, X.shape[1]) if data == "mnist1d" else (1, 8, 8)
    shape = (lambda a: a.reshape(len(a), *image)) if model == "cnn" else (lambda a: a)
    return shape(X_train), y_train, shape(X_val), y_val, shape(X_test), y_test


def build_model(data, model, bn):
    """The model for (data, model, bn); call ``mg.manual_seed`` first for its initial weights."""
    features = 40 if data == "mnist1d" else 64
    if model == "logistic":
        return nn.Sequential(nn.Linear(features, 10))
    if model == "mlp":                                             # the paper's: 100-100
        return common.build_mlp((100, 100), bn, in_features=features)
    if data == "mnist1d":
        return mnist1d_cnn(bn)
    return digits_cnn(bn)


def mnist1d_cnn(bn, channels=25):
    """(N, 1, 40) -> 19 -> 10 -> 5 positions of 25 channels -> (N, 10)."""
    layers, width = [], 1
    for kernel in (5, 3, 3):
        layers.append(nn.Conv1d(width, channels, kernel, stride=2, padding=1))
        if bn != "none":
            layers.append(nn.BatchNorm1d(channels, fused=bn == "fused"))
        layers.append(nn.ReLU())
        width = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 5, 10))


def digits_cnn(bn, widths=(16, 32)):
    """(N, 1, 8, 8) -> 16 x 4 x 4 -> 32 x 2 x 2 -> (N, 10)."""
    layers, width = [], 1
    for channels in widths:
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        if bn != "none":
            layers.append(nn.BatchNorm2d(channels, fused=bn == "fused"))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        width = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * 2 * 2, 10))


def learning_rate(config, epoch):
    """The learning rate of epoch 1, 2, ...: constant, or lr · (1 + cos(π (epoch - 1) / epochs)) / 2,
    from lr down towards 0 (a function of the epoch alone, so a resumed run follows it exactly)."""
    if config["schedule"] == "constant":
        return config["lr"]
    return config["lr"] * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config["epochs"]))


def main(argv=None):
    """Run from the command line; returns {"history", "config", "test_acc", "model"}."""
    parser = make_parser()
    args = parser.parse_args(argv)
    common.check_output_paths(parser, args)
    # the options that define a run (CHECKS' keys): a resumed run takes them from the checkpoint
    config, checkpoint = common.resolve_config(parser, args, DEFAULTS, CHECKS, "train_cnn.py")

    X_train, y_train, X_val, y_val, X_test, y_test = load(config["data"], config["model"],
                                                          config["shuffle_positions"])
    mg.manual_seed(config["seed"])
    model = build_model(config["data"], config["model"], config["bn"])
    optimizer = mg.optim.AdamW(model.parameters(), lr=config["lr"])   # PyTorch's weight_decay 1e-2
    loader = DataLoader(X_train, y_train, config["batch_size"], shuffle=True, seed=config["seed"])
    start, history = 0, []
    if checkpoint is not None:
        start, history = common.restore(parser, args.resume, checkpoint, model, optimizer)
        loader.set_epoch(start)          # epoch k's order depends on (seed, k) only

    say = (lambda *a: None) if args.quiet else print
    say(f"{config['data']}: {len(y_train)} train / {len(y_val)} validation / {len(y_test)} test; "
        f"{config['model']}, bn={config['bn']}{', shuffled positions' if config['shuffle_positions'] else ''}, "
        f"AdamW lr={config['lr']:g} ({config['schedule']}), batch {config['batch_size']}, "
        f"{config['epochs']} epochs, seed {config['seed']}")
    say(common.HEADER)
    for row in history:
        say(common.format_row(row) + "  (from the checkpoint)")
    metrics = common.Metrics(args.metrics, history)
    try:
        for epoch in range(start + 1, config["epochs"] + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, epoch)
            # train, then validate in eval mode: batch norm's running statistics
            row = common.run_epoch(model, optimizer, loader, X_val, y_val, epoch, config["epochs"], args.quiet)
            history.append(row)
            say(common.format_row(row))
            if epoch == config["epochs"]:     # the test set, once, at the end
                row["test_acc"] = common.evaluate(model, X_test, y_test)[1]
            metrics.write(row)
            if args.save:
                common.save_checkpoint(args.save, model, optimizer, epoch, config, history)
    finally:
        metrics.close()
    test_acc = common.evaluate(model, X_test, y_test)[1]
    print(f"{config['data']} {config['model']} bn={config['bn']}"
          f"{' shuffled' if config['shuffle_positions'] else ''} seed {config['seed']}: test accuracy "
          f"{test_acc:.4f} after {len(history)} epochs (validation {history[-1]['val_acc']:.4f}), "
          f"{sum(r['seconds'] for r in history):.1f} s of training")
    if args.plot:
        common.plot_history(history, args.plot, title=f"{config['model']} on {config['data']}",
                            caption=f"python examples/train_cnn.py --data {config['data']} --model "
                                    f"{config['model']} --bn {config['bn']}, seed {config['seed']}")
    return {"history": history, "config": config, "test_acc": test_acc, "model": model}


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


# ------------------------------------------------------------------ command line
# Each run option's one check (argparse type, and a resumed checkpoint's); the keys define a run.
CHECKS = {"data": common.choice("mnist1d", "digits"), "model": common.choice("logistic", "mlp", "cnn"),
          "bn": common.choice("fused", "composed", "none"), "shuffle_positions": common.choice("True", "False"),
          "epochs": common.number(int, 1), "batch_size": common.number(int, 2),
          "lr": common.number(float, above=0), "schedule": common.choice("cosine", "constant"),
          "seed": common.number(int, 0)}


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Run options default to None: "not given", so --resume can take them from the checkpoint.
    p.add_argument("--data", type=CHECKS["data"], metavar="{mnist1d,digits}", help="default mnist1d")
    p.add_argument("--model", type=CHECKS["model"], metavar="{logistic,mlp,cnn}", help="default cnn")
    p.add_argument("--bn", type=CHECKS["bn"], metavar="{fused,composed,none}",
                   help="batch norm after each conv / hidden layer (default fused)")
    p.add_argument("--shuffle-positions", action="store_const", const=True,
                   help="one fixed permutation of the input positions (the paper's spatial-prior test)")
    p.add_argument("--epochs", type=CHECKS["epochs"],
                   help=f"total epochs, counting resumed ones (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=CHECKS["batch_size"], help=f"default {DEFAULTS['batch_size']}")
    p.add_argument("--lr", type=CHECKS["lr"], help=f"AdamW's learning rate (default {DEFAULTS['lr']:g})")
    p.add_argument("--schedule", type=CHECKS["schedule"], metavar="{cosine,constant}",
                   help="the learning rate over the epochs (default cosine, from --lr towards 0)")
    p.add_argument("--seed", type=CHECKS["seed"], help="initial weights and shuffling (default 0)")
    common.add_run_arguments(p, metrics_help="one JSON object per epoch; the last has test_acc")
    return p


if __name__ == "__main__":
    main()
