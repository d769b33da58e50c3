"""One training run's record: the per-epoch table, the metrics file, checkpoints for an exact resume
and the progress bar, all kept by ``Log``; and the run options, from the command line or, on
--resume, from a checkpoint checked as strictly as the command line.

Invariant: a resumed run starts only from a checkpoint whose every entry passed its check, and
nothing (metrics, checkpoint) is written before that; a run is a function of its options.
"""
import argparse
import json
import time

import numpy as np

import minigrad as mg

from . import cli, progress, ranks

METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_loss':>9} {'val_acc':>8} {'seconds':>8}"


class Log:
    """What a run writes after each epoch: a table row (unless --quiet), a JSON line in --metrics,
    a checkpoint in --save, the bar's step. Use as ``with Log(...) as log:``; ``log.history``
    holds every epoch's row, resumed ones included. Under mpiexec only rank 0 writes
    (``log.writes``): the others restore a checkpoint as it does, and record nothing."""

    def __init__(self, parser, args, config, epochs, script):
        self.parser, self.args, self.config, self.epochs, self.script = parser, args, config, epochs, script
        self.history, self.metrics, self.bar = [], None, None
        self.writes = ranks.writes()
        self.say = print if self.writes and not args.quiet else (lambda *a: None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.metrics:
            self.metrics.close()
        if self.bar is not None:
            self.bar.close()

    def begin(self, checkpoint, model, optimizer):
        """Restore ``checkpoint`` (None: a fresh run) into model and optimizer, then open the
        metrics file (with the restored rows: it describes the whole run), print the header and
        show the bar. Returns the number of epochs already done."""
        start = 0
        if checkpoint is not None:      # every rank: each loads the same model and optimizer state
            start, self.history = restore(self.parser, self.args.resume, checkpoint, model, optimizer)
            self.say(f"resumed from {self.args.resume} after epoch {start}")
            if start >= self.epochs:
                self.say(f"the checkpoint already has {start} epochs (of {self.epochs}); nothing to train")
        if self.args.metrics and self.writes:
            self.metrics = open(self.args.metrics, "w")
            for row in self.history:
                self.write(row)
        self.say(HEADER)
        for row in self.history:
            self.say(format_row(row) + "  (from the checkpoint)")
        self.bar = progress.run_bar(self.epochs, self.script, self.args.quiet, done=min(start, self.epochs))
        self.started = time.perf_counter()
        return start

    def batches(self, loader, epoch):
        """``loader``'s batches, with a batch bar if the epoch runs long (progress.py's rule)."""
        return progress.batches(loader, f"epoch {epoch}", self.args.quiet)

    def epoch_done(self, row, model, optimizer):
        """Record the epoch's ``row`` (METRIC_KEYS but "seconds", which is measured here, plus
        anything else for the metrics file): table, metrics, checkpoint, bar. Rank 0 only."""
        if not self.writes:
            raise RuntimeError("Log.epoch_done: only rank 0 records epochs (check log.writes)")
        row["seconds"] = time.perf_counter() - self.started     # training and validation
        self.history.append(row)
        self.say(format_row(row))
        self.write(row)
        if self.args.save:
            save_checkpoint(self.args.save, model, optimizer, row["epoch"], self.config, self.history)
        self.bar.set_postfix(val_acc=f"{row['val_acc']:.4f}", refresh=False)
        self.bar.update(1)
        self.started = time.perf_counter()                     # the next epoch starts now

    def write(self, row):
        if self.metrics:
            self.metrics.write(json.dumps(row) + "\n")
            self.metrics.flush()


def format_row(r):
    return (f"{r['epoch']:>5} {r['train_loss']:>10.4f} {r['train_acc']:>9.4f} {r['val_loss']:>9.4f} "
            f"{r['val_acc']:>8.4f} {r['seconds']:>8.2f}")


# ------------------------------------------------------------------ options and checkpoints
def resolve_config(parser, args, defaults, checks, script, check_config=lambda config: []):
    """(config, checkpoint): the run options (the keys of ``checks``) from the command line over
    ``defaults``, or on --resume from the checkpoint, whose values must pass the command line's
    own ``checks`` and agree with any option given again. ``check_config(config)`` lists what no
    single option's check sees (combinations, memory); either way a problem is one line."""
    given = {k: getattr(args, k) for k in checks if getattr(args, k, None) is not None}
    if args.resume is None:
        config = {**defaults, **given}
        problems = check_config(config)
        if problems:
            parser.error("; ".join(problems))
        return config, None
    saved, checkpoint = load_config(parser, args.resume, tuple(checks), script)
    config, problems = {}, []
    for key, value in saved.items():
        try:
            config[key] = checks[key](cli.show(value))      # the canonical value, as typed
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            problems.append(f"{key}: {err}")
    problems = problems or check_config(config)
    if problems:
        parser.error(f"--resume {args.resume}: the checkpoint's options are not valid: " + "; ".join(problems))
    clashes = [f"--{k.replace('_', '-')} {cli.show(config[k])} in the checkpoint, {cli.show(v)} on the command line"
               for k, v in given.items() if v != config[k]]
    if clashes:
        parser.error(f"--resume {args.resume}: the checkpoint was trained with different options: "
                     + "; ".join(clashes) + ". Drop them to use the checkpoint's.")
    return config, checkpoint


def load_config(parser, path, options, script):
    """(the run options saved in the checkpoint at ``path``, the checkpoint); a one-line error
    for a missing, corrupt or foreign file."""
    try:
        checkpoint = mg.load(path)
    except FileNotFoundError:
        parser.error(f"--resume: no checkpoint at {path!r}")
    except ValueError as err:                  # what mg.load documents for a damaged file
        parser.error(f"--resume: {err}")
    except OSError as err:                     # a folder, an unreadable file
        parser.error(f"--resume: cannot read {path!r}: {err.strerror or err}")
    saved = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    if not isinstance(saved, dict):
        what = "no 'config' entry" if saved is None else f"its 'config' is a {type(saved).__name__}, not a dict"
        parser.error(f"--resume: {path!r} was not written by {script} --save ({what})")
    missing = [k for k in options if k not in saved]
    if missing:
        parser.error(f"--resume: {path!r} was not written by {script} --save (no {missing[0]!r} entry "
                     f"in its config)")
    return {k: value(saved[k]) for k in options}, checkpoint


def value(array):
    """A saved option back as Python: a 0-d array -> its item, a 1-d array -> a tuple."""
    array = np.asarray(array)
    return array.item() if array.ndim == 0 else tuple(array.tolist())


def save_checkpoint(path, model, optimizer, epoch, config, history):
    """Everything a resume needs, written atomically by mg.save (a crash keeps the old file)."""
    mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "config": {k: np.asarray(v) for k, v in config.items()},
             "history": {k: np.array([r[k] for r in history]) for k in METRIC_KEYS}}, path)


def restore(parser, path, checkpoint, model, optimizer):
    """Check the checkpoint's epoch and history, then load model and optimizer state; returns
    (epochs done, their history rows). A hand-edited entry is a one-line error."""
    start = checked_epoch(parser, path, checkpoint.get("epoch"))
    saved = checkpoint.get("history")
    if not isinstance(saved, dict):
        parser.error(f"--resume {path}: its 'history' is missing or not a dict")
    columns = {}
    for key in METRIC_KEYS:
        column = np.asarray(saved.get(key, np.empty(0)))
        if column.ndim != 1 or len(column) < start or column.dtype.kind not in "iuf" \
                or not np.all(np.isfinite(column[:start])):
            parser.error(f"--resume {path}: its history has no {start} finite values of {key!r}")
        columns[key] = column[:start]
    if not np.array_equal(columns["epoch"], np.arange(1, start + 1)):
        parser.error(f"--resume {path}: its history's epochs are not 1 to {start}")
    history = [{k: int(columns[k][i]) if k == "epoch" else float(columns[k][i]) for k in METRIC_KEYS}
               for i in range(start)]
    try:
        model.load_state_dict(checkpoint.get("model"))
        optimizer.load_state_dict(checkpoint.get("optimizer"))
    except (TypeError, ValueError) as err:     # what load_state_dict documents
        parser.error(f"--resume {path}: cannot restore it: {err}")
    return start, history


def checked_epoch(parser, path, epoch):
    """The checkpoint's epoch as an int >= 1 (a --save after epoch k stores k), else one line."""
    epoch = np.asarray(epoch) if epoch is not None else None
    if epoch is None or epoch.ndim != 0 or epoch.dtype.kind not in "iu" or int(epoch) < 1:
        parser.error(f"--resume {path}: its 'epoch' must be an integer >= 1, got "
                     f"{'nothing' if epoch is None else repr(epoch.tolist())}")
    return int(epoch)
