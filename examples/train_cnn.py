"""Train a CNN (or an MLP, or logistic regression) on MNIST-1D or the 8x8 digits, tracking
validation accuracy with batch norm's running statistics after every epoch.

    [mpiexec -n P] python examples/train_cnn.py [--data mnist1d|digits] [--model logistic|mlp|cnn]
        [--norm batch|renorm|group|layer|none] [--bn fused|composed] [--sync-bn]
        [--shuffle-positions] [--epochs N] [--batch-size B] [--lr LR] [--schedule cosine|constant]
        [--seed S] [--metrics PATH] [--save CKPT] [--resume CKPT] [--plot PNG] [--quiet]
        [--threads N]

MNIST-1D's CNN is the paper's (Greydanus & Kobak 2020): three Conv1d of 25 channels (kernel 5
stride 2 pad 1, then kernel 3 stride 2 pad 1 twice), each followed by a normalisation and ReLU,
then Linear(125, 10). The digits' CNN sees 1x8x8 images: Conv2d -> norm -> ReLU -> MaxPool2d,
twice, then Linear (models in helpers/models.py). --norm picks the normalisation: batch
(BatchNorm, the default), renorm (BatchRenorm, its clip bounds relaxed over the run), group
(GroupNorm, 5 groups of 5 channels; 4 groups on the digits), layer (LayerNorm over each sample's
(C, L) values) or none; --bn picks its form, fused (one op) or composed (primitive ops), and
--bn none, from before --norm, still means --norm none. --shuffle-positions applies
one fixed permutation to the input positions (the paper's test of a CNN's spatial prior). AdamW
(PyTorch's default weight decay 1e-2), its learning rate decayed along a cosine over the epochs by
default. The validation split is a seeded stratified part of the training set; the test set is
scored once, at the end.

Data-parallel under ``mpiexec -n P``: every process trains a replica of the model on its shard of
each batch (DistributedSampler), DistributedDataParallel averages the gradients, and --sync-bn
normalises with the statistics of the whole batch (SyncBatchNorm). --batch-size is the GLOBAL
batch, split into P per-process batches of B/P, and the learning rate means what it means in one
process: with --sync-bn the run is the one-process run up to rounding. Rank 0 alone validates
(through ``.module``: eval mode needs no other process), prints, and writes metrics, checkpoints
and the figure; --resume loads the checkpoint on every rank (the optimizer's state too).
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse

import numpy as np

import minigrad as mg
from helpers import cli, models, plots, ranks, runs
from minigrad import distributed as dist
from minigrad import nn
from minigrad.data import DataLoader, DistributedSampler
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel

DEFAULTS = {"data": "mnist1d", "model": "cnn", "norm": "batch", "bn": "fused", "sync_bn": False,
            "shuffle_positions": False, "epochs": 100, "batch_size": 100, "lr": 1e-2, "schedule": "cosine", "seed": 0}


def evaluate(model, X, y):
    """(loss, accuracy) in eval mode: batch norm normalises with its running statistics."""
    with mg.eval_mode(), mg.no_grad():
        logits = model(mg.tensor(X))                       # (N, ...) -> (N, 10)
        return float(F.cross_entropy(logits, y).data), float((logits.data.argmax(axis=1) == y).mean())


def main(argv=None):
    """Run from the command line; returns {"history", "config", "test_acc", "model"}."""
    parser = make_parser()
    args = cli.parse(parser, argv, files=("metrics", "save", "plot"))
    fold_bn_none(parser, args)
    # the options that define a run (CHECKS' keys): a resumed run takes them from the checkpoint
    config, checkpoint = runs.resolve_config(parser, args, DEFAULTS, CHECKS, "train_cnn.py", check_config)

    X_train, y_train, X_val, y_val, X_test, y_test = models.load_data(config["data"], config["model"],
                                                                      config["shuffle_positions"])
    mg.manual_seed(config["seed"])
    model = models.build_model(config["data"], config["model"], config["bn"], config["norm"])
    if config["sync_bn"]:                  # batch statistics over every process's share of the batch
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = mg.optim.AdamW(model.parameters(), lr=config["lr"])   # PyTorch's weight_decay 1e-2
    # One process: both are no-ops (the sampler serves the DataLoader's own shuffled order).
    # mpiexec -n P: each rank trains its replica on 1/P of every batch; DDP averages gradients.
    ddp = DistributedDataParallel(model)
    sampler = DistributedSampler(y_train, seed=config["seed"])          # this rank's shard
    loader = DataLoader(X_train, y_train, config["batch_size"] // dist.get_world_size(), sampler=sampler)
    if not args.quiet and ranks.writes():
        print(f"{config['data']}: {len(y_train)} train / {len(y_val)} validation / {len(y_test)} test; "
              f"{describe(config)}, AdamW lr={config['lr']:g} ({config['schedule']}), batch "
              f"{config['batch_size']}{split(config)}, {config['epochs']} epochs, seed {config['seed']}")

    with runs.Log(parser, args, config, config["epochs"], "train_cnn") as log:   # table, metrics, --save, bar
        start = log.begin(checkpoint, model, optimizer)     # epochs already done: 0 unless --resume
        loader.set_epoch(start)      # epoch k's batch order depends on (seed, k) only
        steps = config["epochs"] * len(loader)              # the run's optimizer steps
        for epoch in range(start + 1, config["epochs"] + 1):
            for group in optimizer.param_groups:
                group["lr"] = models.learning_rate(config, epoch)   # cosine: a function of the epoch
            loss_sum, correct, seen = 0.0, 0, 0
            with mg.train_mode():                           # batch norm: each batch's statistics
                for i, (xb, yb) in enumerate(log.batches(loader, epoch)):
                    if config["norm"] == "renorm":          # BatchRenorm: relax its clip bounds
                        models.renorm_bounds(model, (epoch - 1) * len(loader) + i, steps)
                    logits = ddp(mg.tensor(xb))             # forward: (B, 1, 40) or (B, 40) -> (B, 10)
                    loss = F.cross_entropy(logits, yb)      # mean over the batch
                    optimizer.zero_grad()
                    loss.backward()                         # gradients of every parameter (DDP: averaged)
                    optimizer.step()
                    loss_sum += float(loss.data) * len(yb)
                    correct += int((logits.data.argmax(axis=1) == yb).sum())
                    seen += len(yb)
            loss_sum, correct, seen = dist.all_reduce(np.array([loss_sum, correct, seen]))   # every rank's
            if log.writes:                                  # rank 0 validates, logs and saves
                val_loss, val_acc = evaluate(model, X_val, y_val)  # eval mode: running statistics
                row = {"epoch": epoch, "train_loss": float(loss_sum / seen), "train_acc": float(correct / seen),
                       "val_loss": val_loss, "val_acc": val_acc}
                if epoch == config["epochs"]:               # the test set, once, at the end
                    row["test_acc"] = evaluate(model, X_test, y_test)[1]
                log.epoch_done(row, model, optimizer)
    if not log.writes:
        return {"history": log.history, "config": config, "test_acc": None, "model": model}
    history, test_acc = log.history, evaluate(model, X_test, y_test)[1]
    print(f"{config['data']} {describe(config)} seed {config['seed']}: test accuracy {test_acc:.4f} after "
          f"{len(history)} epochs (validation {history[-1]['val_acc']:.4f}), "
          f"{sum(r['seconds'] for r in history):.1f} s of training")
    if args.plot:
        plot(history, config, test_acc, args, argv)
    return {"history": history, "config": config, "test_acc": test_acc, "model": model}


def describe(config):
    """"cnn, norm=batch (fused)" / "mlp, norm=none, shuffled positions" / "cnn, norm=batch (fused),
    SyncBatchNorm"."""
    norm = "none" if config["model"] == "logistic" else config["norm"]
    return (f"{config['model']}, norm={norm}" + (f" ({config['bn']})" if norm != "none" else "")
            + (", SyncBatchNorm" if config["sync_bn"] else "")
            + (", shuffled positions" if config["shuffle_positions"] else ""))


def split(config):
    """" (50 on each of 2 processes)" under mpiexec, "" in one process."""
    size = dist.get_world_size()
    return f" ({config['batch_size'] // size} on each of {size} processes)" if size > 1 else ""


def plot(history, config, test_acc, args, argv):
    """Training curves, titled with the model, its normalisation and the final test accuracy."""
    model = {"cnn": "CNN", "mlp": "MLP", "logistic": "Logistic regression"}[config["model"]]
    layer = {"batch": "BatchNorm", "renorm": "BatchRenorm", "group": "GroupNorm",
             "layer": "LayerNorm"}.get(config["norm"])
    if config["norm"] in ("batch", "renorm"):
        layer += "2d" if config["data"] == "digits" and config["model"] == "cnn" else "1d"
    layer = "SyncBatchNorm" if config["sync_bn"] else layer
    norm = "no normalisation" if layer is None or config["model"] == "logistic" else f"{layer} ({config['bn']})"
    data = {"mnist1d": "MNIST-1D", "digits": "the 8x8 digits"}[config["data"]]
    plots.plot_history(history, args.plot,
                       title=f"{model} with {norm} on {data}"
                             f"{' (positions shuffled)' if config['shuffle_positions'] else ''}: "
                             f"test accuracy {test_acc:.4f} after {len(history)} epochs",
                       caption=f"Validation: a fixed stratified {models.CNN_VAL_FRACTION:.0%} of the training set; "
                               f"AdamW lr {config['lr']:g} ({config['schedule']}), batch {config['batch_size']}{split(config)}, "
                               f"seed {config['seed']}, {args.threads or 1} BLAS thread(s); the test set is scored "
                               f"once, at the end.\n{cli.command('train_cnn.py', argv)}", test_acc=test_acc)


# ------------------------------------------------------------------ command line
# Each run option's one check (argparse type, and a resumed checkpoint's); the keys define a run.
CHECKS = {"data": cli.choice("mnist1d", "digits"), "model": cli.choice("logistic", "mlp", "cnn"),
          "norm": cli.choice(*models.NORMS), "bn": cli.choice("fused", "composed"), "sync_bn": cli.boolean,
          "shuffle_positions": cli.boolean,
          "epochs": cli.number(int, 1), "batch_size": cli.number(int, 2),
          "lr": cli.number(float, above=0), "schedule": cli.choice("cosine", "constant"),
          "seed": cli.number(int, 0)}


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Run options default to None: "not given", so --resume can take them from the checkpoint.
    p.add_argument("--data", type=CHECKS["data"], metavar="{mnist1d,digits}", help="default mnist1d")
    p.add_argument("--model", type=CHECKS["model"], metavar="{logistic,mlp,cnn}", help="default cnn")
    p.add_argument("--norm", type=CHECKS["norm"], metavar="{" + ",".join(models.NORMS) + "}",
                   help="the normalisation after each conv / hidden layer (default batch; group: "
                        "CNN only)")
    p.add_argument("--bn", type=cli.choice("fused", "composed", "none"), metavar="{fused,composed}",
                   help="the normalisation's form: fused, one op with a hand-written backward "
                        "(default), or composed of primitive ops; --bn none is --norm none")
    p.add_argument("--sync-bn", action="store_const", const=True,
                   help="under mpiexec: batch norm over the whole batch, every process's (SyncBatchNorm)")
    p.add_argument("--shuffle-positions", action="store_const", const=True,
                   help="one fixed permutation of the input positions (the paper's spatial-prior test)")
    p.add_argument("--epochs", type=CHECKS["epochs"],
                   help=f"total epochs, counting resumed ones (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=CHECKS["batch_size"],
                   help=f"the global batch, split over mpiexec's processes (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=CHECKS["lr"], help=f"AdamW's learning rate (default {DEFAULTS['lr']:g})")
    p.add_argument("--schedule", type=CHECKS["schedule"], metavar="{cosine,constant}",
                   help="the learning rate over the epochs (default cosine, from --lr towards 0)")
    p.add_argument("--seed", type=CHECKS["seed"], help="initial weights and shuffling (default 0)")
    cli.add_run_arguments(p, metrics_help="one JSON object per epoch; the last has test_acc")
    return p


def fold_bn_none(parser, args):
    """--bn none (from before --norm) is --norm none; beside another --norm it is a contradiction."""
    if args.bn == "none":
        if args.norm not in (None, "none"):
            parser.error(f"--bn none means no normalisation but --norm {args.norm} asks for one: drop "
                         f"--bn none (--bn chooses the form, fused or composed)")
        args.bn, args.norm = None, "none"


def check_config(config):
    """What no single option's check sees: --sync-bn needs batch norm, GroupNorm needs channels,
    the batch must split."""
    problems = ranks.batch_problems(config)
    if config["sync_bn"] and (config["norm"] != "batch" or config["model"] == "logistic"):
        problems.append("--sync-bn needs batch norm (SyncBatchNorm replaces BatchNorm layers only): --norm "
                        "batch and a model with hidden layers, not "
                        + (f"--norm {config['norm']}" if config["norm"] != "batch" else "--model logistic"))
    if config["norm"] == "group" and config["model"] == "mlp":
        problems.append("--norm group needs a CNN (it groups a conv layer's channels); for the MLP use --norm "
                        "layer (GroupNorm(1, h) is LayerNorm(h))")
    return problems


if __name__ == "__main__":
    cli.run(main)
