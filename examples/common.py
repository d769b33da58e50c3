"""What the examples share: the fixed digits split, the MLP, one training epoch, evaluation,
progress bars, metrics files, checkpoints for exact resume, argument checks, plots, and the
batch-norm helpers of the studies (bn_layers, stats_gap).

Each example keeps its lesson (the training loop, the study) in its own file and takes the
plumbing from here. Invariant: a run is a function of its options; every random choice comes
from an explicit seed.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import minigrad as mg
from minigrad import nn
from minigrad.data import load_digits, train_val_split
from minigrad.nn import functional as F

# The validation split is fixed (a seeded stratified 20% of 1797 images: 359), whatever --seed
# is, so every run is scored on the same images and runs are comparable. --seed sets the
# initial weights and the shuffling.
VAL_FRACTION, SPLIT_SEED = 0.2, 0
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
PLOT_HINT = 'pip install -e ".[plot]"'   # the optional extra, from a checkout (not PyPI's "minigrad")


def digits_split():
    """The bundled digits, split once for every example: (X_train, y_train, X_val, y_val),
    float32 (1438, 64) / int64 (1438,) and (359, 64) / (359,)."""
    X, y = load_digits()
    return train_val_split(X, y, VAL_FRACTION, seed=SPLIT_SEED)


def build_mlp(hidden, bn="fused", in_features=64, classes=10, momentum=0.1):
    """(Linear -> BatchNorm1d -> ReLU) for each width in ``hidden``, then Linear.

    bn: "fused" or "composed" (the two batch norms of nn/batchnorm.py), or "none" (no BN).
    Weights come from minigrad's global generator: call ``mg.manual_seed`` first.
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


def build_optimizer(name, params, lr):
    """"adam" (PyTorch's defaults) or "sgd" (momentum 0.9)."""
    if name == "sgd":
        return mg.optim.SGD(params, lr=lr, momentum=0.9)
    return mg.optim.Adam(params, lr=lr)


# ------------------------------------------------------------------ training and scoring
def train_epoch(model, optimizer, loader, bar=None):
    """One pass over ``loader`` in training mode; returns (mean loss, accuracy) over its samples.

    Both come from the training-mode forward passes (batch statistics, weights moving during
    the epoch): the usual cheap "training" figures, not a second pass.
    """
    loss_sum, correct, seen = 0.0, 0, 0
    with mg.train_mode():
        for xb, yb in loader:
            logits = model(mg.tensor(xb))                  # (B, ...) -> (B, classes)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.data) * len(yb)
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            seen += len(yb)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
    return loss_sum / seen, correct / seen


def run_epoch(model, optimizer, loader, X_val, y_val, epoch, epochs, quiet):
    """One epoch of training (a progress bar on a terminal), then the validation set scored in
    eval mode, i.e. with batch norm's running statistics: the epoch's history row."""
    start = time.perf_counter()
    with progress(len(loader), f"epoch {epoch}/{epochs}", quiet) as bar:
        train_loss, train_acc = train_epoch(model, optimizer, loader, bar)
    val_loss, val_acc = evaluate(model, X_val, y_val)
    return {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
            "val_loss": val_loss, "val_acc": val_acc, "seconds": time.perf_counter() - start}


def evaluate(model, X, y):
    """(loss, accuracy) on (X, y) in eval mode: batch norm normalises with its running statistics,
    so one forward pass over the whole set gives the same predictions as any batching of it."""
    with mg.eval_mode(), mg.no_grad():
        logits = model(mg.tensor(X))                       # (N, ...) -> (N, classes)
        loss = F.cross_entropy(logits, y)
    return float(loss.data), float((logits.data.argmax(axis=1) == y).mean())


def progress(total, desc, quiet):
    """A tqdm bar on a terminal (stderr), nothing when quiet or not a terminal."""
    return tqdm(total=total, desc=desc, leave=False, disable=quiet or not sys.stderr.isatty(),
                file=sys.stderr)


# ------------------------------------------------------------------ arguments
def number(kind=int, minimum=None, maximum=None, above=None):
    """An argparse ``type``: a number of ``kind`` in range, else a one-line error naming the
    range and what came (argparse adds the option's name). ``above``: strictly greater."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        ok = value is not None and math.isfinite(value)
        ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
        ok = ok and (above is None or value > above)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {describe(kind, minimum, maximum, above)}, "
                                             f"got {text!r}")
        return value
    parse.__name__ = describe(kind, minimum, maximum, above)   # argparse names the type by it
    return parse


def choice(*names):
    """An argparse ``type``: one of ``names``, else a one-line error listing them."""
    def parse(text):
        if text not in names:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(names)})")
        return text
    parse.__name__ = "choice"
    return parse


def describe(kind, minimum, maximum, above):
    """"an integer >= 1", "a number > 0", "a number in [0, 1]"."""
    what = "an integer" if kind is int else "a number"
    if minimum is not None and maximum is not None:
        return f"{what} in [{minimum}, {maximum}]"
    bounds = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
              f"<= {maximum}" if maximum is not None else ""]
    return " ".join([what] + [b for b in bounds if b])


def parse_widths(text):
    """"128,64" -> (128, 64): comma-separated positive layer widths."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive widths such as "
                                         f"128,64, got {text!r}")
    return widths


def add_run_arguments(parser, metrics_help):
    """The flags every training example has: --metrics --save --resume --plot --quiet."""
    parser.add_argument("--metrics", metavar="PATH", help=metrics_help)
    parser.add_argument("--save", metavar="CKPT", help="write a checkpoint after every epoch")
    parser.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT")
    parser.add_argument("--plot", metavar="PNG", help=f"plot the curves (needs matplotlib: {PLOT_HINT})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch table")


def check_output_paths(parser, args, options=("metrics", "save", "plot", "json")):
    """Each given --option PATH must name a file in an existing folder, not a folder itself;
    --plot also needs matplotlib. Checked before any work, with a one-line error."""
    for option in options:
        path = getattr(args, option, None)
        if path is None:
            continue
        if os.path.isdir(path):
            parser.error(f"--{option}: {path!r} is a directory; give a file name")
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"--{option}: the folder of {path!r} does not exist")
    if getattr(args, "plot", None) is not None and not have_matplotlib():
        parser.error(f"--plot needs matplotlib ({PLOT_HINT})")


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ metrics and checkpoints
class Metrics:
    """One JSON object per epoch in a file (JSON lines), flushed as it goes; a no-op without path."""

    def __init__(self, path, history=()):
        self.file = open(path, "w") if path else None
        for row in history:        # the file describes the whole run, resumed or not
            self.write(row)

    def write(self, row):
        if self.file:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def save_checkpoint(path, model, optimizer, epoch, config, history):
    """Everything a resume needs, written atomically by mg.save (a crash keeps the old file)."""
    mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "config": {k: np.asarray(v) for k, v in config.items()},
             "history": {k: np.array([r[k] for r in history]) for k in METRIC_KEYS}}, path)


def resolve_config(parser, args, defaults, checks, script):
    """(config, checkpoint): the run options (the keys of ``checks``) from the command line over
    ``defaults``, or on --resume from the checkpoint, whose values must pass the command line's
    own ``checks`` (a hand-edited file may not) and agree with any option given again."""
    given = {k: getattr(args, k) for k in checks if getattr(args, k) is not None}
    if args.resume is None:
        return {**defaults, **given}, None
    config, checkpoint = load_config(parser, args.resume, tuple(checks), script)
    problems = []
    for key, value in config.items():
        try:
            checks[key](show(value))
        except argparse.ArgumentTypeError as err:
            problems.append(f"{key}: {err}")
    if problems:
        parser.error(f"--resume {args.resume}: the checkpoint's options are not valid: " + "; ".join(problems))
    clashes = [f"--{k.replace('_', '-')} {show(config[k])} in the checkpoint, {show(v)} on the command line"
               for k, v in given.items() if v != config[k]]
    if clashes:
        parser.error(f"--resume {args.resume}: the checkpoint was trained with different options: "
                     + "; ".join(clashes) + ". Drop them to use the checkpoint's.")
    return config, checkpoint


def show(value):
    """An option's value as typed on the command line: (128, 64) -> "128,64"."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def load_config(parser, path, options, script):
    """(the run options saved in the checkpoint at ``path``, the checkpoint); a one-line error
    for a missing, corrupt or foreign file."""
    try:
        checkpoint = mg.load(path)
        saved = checkpoint["config"]
        config = {k: saved[k].item() if saved[k].ndim == 0 else tuple(saved[k].tolist()) for k in options}
    except FileNotFoundError:
        parser.error(f"--resume: no checkpoint at {path!r}")
    except ValueError as err:
        parser.error(f"--resume: {err}")
    except (KeyError, AttributeError) as err:
        parser.error(f"--resume: {path!r} was not written by {script} --save (no {err} entry)")
    return config, checkpoint


def restore(parser, path, checkpoint, model, optimizer):
    """Load model and optimizer state; returns (epochs done, their history rows)."""
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start = int(checkpoint["epoch"])
        saved = checkpoint["history"]
        history = [{k: int(saved[k][i]) if k == "epoch" else float(saved[k][i]) for k in METRIC_KEYS}
                   for i in range(start)]
    except (KeyError, IndexError, ValueError, TypeError) as err:
        parser.error(f"--resume {path}: cannot restore it: {err!r}")
    return start, history


def format_row(r):
    return (f"{r['epoch']:>5} {r['train_loss']:>10.4f} {r['train_acc']:>9.4f} {r['val_loss']:>9.4f} "
            f"{r['val_acc']:>8.4f} {r['seconds']:>8.2f}")


HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_loss':>9} {'val_acc':>8} {'seconds':>8}"


# ------------------------------------------------------------------ plots
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (callers checked it is installed)."""
    import matplotlib
    matplotlib.use("Agg")              # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def check_plot_folder(parser, folder):
    """--plot DIR: an existing folder, and matplotlib installed; a one-line error otherwise."""
    if folder is None:
        return
    if not os.path.isdir(folder):
        parser.error(f"--plot: {folder!r} is not an existing folder")
    if not have_matplotlib():
        parser.error(f"--plot needs matplotlib ({PLOT_HINT})")


def save_figure(fig, path, caption):
    """Write ``fig`` with ``caption`` (the setup: data, seed, command) under it, and close it."""
    import textwrap
    fig.text(0.01, 0.01, textwrap.fill(caption, int(fig.get_figwidth() * 19)), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    print(f"wrote {path}")


def plot_history(history, path, title="", caption=""):
    """Loss and accuracy per epoch, training (batch statistics) and validation (running
    statistics), to a PNG."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("acc", ax_acc)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train (batch statistics)")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "o-", label="validation (running statistics)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("cross-entropy (nats)" if key == "loss" else "accuracy (fraction correct)")
        ax.legend()
    if title:
        fig.suptitle(title)
    if caption:
        fig.text(0.5, 0.01, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.05 if caption else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


# ------------------------------------------------------------------ batch-norm statistics
# bn_inference.py and bn_after_training.py compare the running statistics of two copies of a model.
def bn_layers(model):
    """The model's BatchNorm1d layers, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def stats_gap_per_layer(model, reference):
    """Per BN layer, over its channels: (max |mean difference| in the reference's standard
    deviations, max |variance ratio - 1|) between the two models' running statistics."""
    return [(float(np.max(np.abs(a.running_mean - b.running_mean) / np.sqrt(b.running_var))),
             float(np.max(np.abs(a.running_var / b.running_var - 1))))
            for a, b in zip(bn_layers(model), bn_layers(reference))]


def stats_gap(model, reference):
    """The same over all BN channels of the model: the worst layer's (mean gap, variance gap),
    each maximised on its own; (0.0, 0.0) for a model without batch norm."""
    per_layer = stats_gap_per_layer(model, reference)
    return max([0.0] + [d_mean for d_mean, _ in per_layer]), max([0.0] + [d_var for _, d_var in per_layer])
