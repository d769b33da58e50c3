"""Train an MLP with batch norm on the bundled 8x8 digits, tracking validation accuracy per epoch.

    python examples/train_mlp.py [--epochs N] [--batch-size B] [--lr LR] [--seed S]
        [--bn fused|composed|none] [--hidden 128,64] [--optimizer sgd|adam] [--metrics PATH]
        [--save CKPT] [--resume CKPT] [--plot PNG] [--quiet] [--threads N]

Model: (Linear -> BatchNorm1d -> ReLU) per hidden width, then Linear; softmax cross-entropy.
After every epoch the validation set is scored in eval mode, i.e. with batch norm's running
statistics, so the number does not depend on how the validation set is batched (see
examples/bn_inference.py and docs/batchnorm.md for why, and for the alternatives).
Invariant: a run is a function of its options (one BLAS thread unless --threads); ``--resume``
continues a ``--save``d run and produces exactly the numbers of the uninterrupted run.
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse

import minigrad as mg
from helpers import cli, models, plots, runs
from minigrad.data import DataLoader
from minigrad.nn import functional as F

# Defaults: reach >= 0.97 validation accuracy in about a second (measured over seeds 0-4 and
# more; see docs/batchnorm.md). Adam's default lr needs no tuning; SGD uses momentum 0.9.
EPOCHS = 20
DEFAULTS = {"batch_size": 64, "seed": 0, "bn": "fused", "hidden": (128, 64), "optimizer": "adam"}
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}


def main(argv=None):
    """Run from the command-line arguments; returns {"history", "config", "model", "optimizer"}."""
    parser = make_parser()
    args = cli.parse(parser, argv, files=("metrics", "save", "plot"))
    # the options that define a run (CHECKS' keys): a resumed run takes them from the checkpoint
    config, checkpoint = runs.resolve_config(parser, args, DEFAULTS, CHECKS, "train_mlp.py", check_config)
    config.setdefault("lr", DEFAULT_LR[config["optimizer"]])

    X_train, y_train, X_val, y_val = models.digits_split()        # (1438, 64), (359, 64)
    mg.manual_seed(config["seed"])
    model = models.build_mlp(config["hidden"], config["bn"])
    optimizer = models.build_optimizer(config["optimizer"], model.parameters(), config["lr"])
    loader = DataLoader(X_train, y_train, config["batch_size"], shuffle=True, seed=config["seed"])
    if not args.quiet:
        print(f"digits: {len(y_train)} train / {len(y_val)} validation images; model "
              f"{'-'.join(map(str, (64, *config['hidden'], 10)))}, bn={config['bn']}, {config['optimizer']} "
              f"lr={config['lr']:g}, batch {config['batch_size']}, seed {config['seed']}")

    with runs.Log(parser, args, config, args.epochs, "train_mlp") as log:   # table, metrics, --save, bar
        start = log.begin(checkpoint, model, optimizer)     # epochs already done: 0 unless --resume
        loader.set_epoch(start)      # epoch k's batch order depends on (seed, k) only
        for epoch in range(start + 1, args.epochs + 1):
            loss_sum, correct = 0.0, 0
            with mg.train_mode():                           # batch norm: each batch's statistics
                for xb, yb in log.batches(loader, epoch):
                    logits = model(mg.tensor(xb))           # forward: (B, 64) -> (B, 10)
                    loss = F.cross_entropy(logits, yb)      # mean over the batch
                    optimizer.zero_grad()
                    loss.backward()                         # gradients of every parameter
                    optimizer.step()
                    loss_sum += float(loss.data) * len(yb)
                    correct += int((logits.data.argmax(axis=1) == yb).sum())
            with mg.eval_mode(), mg.no_grad():              # batch norm: running statistics
                logits = model(mg.tensor(X_val))            # the whole validation set at once
                val_loss = float(F.cross_entropy(logits, y_val).data)
                val_acc = float((logits.data.argmax(axis=1) == y_val).mean())
            log.epoch_done({"epoch": epoch, "train_loss": loss_sum / len(y_train), "train_acc": correct / len(y_train),
                            "val_loss": val_loss, "val_acc": val_acc}, model, optimizer)
    history = log.history
    if history:
        last = history[-1]
        print(f"epoch {last['epoch']}: validation accuracy {last['val_acc']:.4f} "
              f"(loss {last['val_loss']:.4f}), {sum(r['seconds'] for r in history):.1f} s of training")
    if args.plot and history:
        plot(history, config, args, argv)
    return {"history": history, "config": config, "model": model, "optimizer": optimizer}


def plot(history, config, args, argv):
    """Training curves, titled with the model and its last validation accuracy."""
    norm = "no batch norm" if config["bn"] == "none" else f"BatchNorm1d ({config['bn']})"
    widths = "-".join(map(str, (64, *config["hidden"], 10)))
    plots.plot_history(history, args.plot,
                       title=f"MLP {widths} with {norm} on the 8x8 digits: validation accuracy "
                             f"{history[-1]['val_acc']:.4f} after epoch {history[-1]['epoch']}",
                       caption=f"Digits (bundled): 1438 training / 359 validation images; {config['optimizer']} lr "
                               f"{config['lr']:g}, batch {config['batch_size']}, seed {config['seed']}, "
                               f"{args.threads or 1} BLAS thread(s).\n{cli.command('train_mlp.py', argv)}")


# ------------------------------------------------------------------ command line
# Each run option's one check: the command line's argparse type, and a resumed checkpoint's too.
# Its keys are the options that define a run.
CHECKS = {"batch_size": cli.number(int, 1), "lr": cli.number(float, above=0),
          "seed": cli.number(int, 0), "bn": cli.choice("fused", "composed", "none"),
          "hidden": cli.parse_widths, "optimizer": cli.choice("sgd", "adam")}


def check_config(config):
    """What no single option's check sees: a combination, and whether the model fits in memory."""
    problems = []
    if config["batch_size"] == 1 and config["bn"] != "none":
        problems.append("--batch-size 1 cannot train batch norm (a batch of one sample has no "
                        "variance); use 2 or more, or --bn none")
    # float32 weights, their gradients and Adam's two moments: 16 bytes per number, a lower bound
    memory = cli.memory_problem(f"--hidden {cli.show(config['hidden'])}: the model (its weights, "
                                f"gradients and optimizer state)", 16 * models.mlp_parameters(config["hidden"]))
    return problems + ([memory] if memory else [])


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Run options default to None: "not given", so --resume can take them from the checkpoint.
    p.add_argument("--epochs", type=cli.number(int, 1), default=EPOCHS,
                   help=f"total epochs, counting resumed ones (default {EPOCHS})")
    p.add_argument("--batch-size", type=CHECKS["batch_size"], help=f"default {DEFAULTS['batch_size']}")
    p.add_argument("--lr", type=CHECKS["lr"], help="learning rate (default 1e-3 for adam, 0.05 for sgd)")
    p.add_argument("--seed", type=CHECKS["seed"], help="initial weights and shuffling (default 0)")
    p.add_argument("--bn", type=CHECKS["bn"], metavar="{fused,composed,none}", help="batch norm (default fused)")
    p.add_argument("--hidden", type=CHECKS["hidden"], help="hidden widths (default 128,64)")
    p.add_argument("--optimizer", type=CHECKS["optimizer"], metavar="{sgd,adam}",
                   help="default adam; sgd has momentum 0.9")
    cli.add_run_arguments(p, metrics_help="write one JSON object per epoch (JSON lines)")
    return p


if __name__ == "__main__":
    cli.run(main)
