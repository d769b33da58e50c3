"""Batch norm in data-parallel training: per-process statistics (ghost batch norm), SyncBatchNorm,
or one process with the whole batch, measured on MNIST-1D.

    python examples/bn_distributed.py [--processes 2] [--batches 2,4,8,16,32] [--seeds 3]
        [--epochs 3] [--lr 1e-2] [--plot DIR] [--quiet] [--threads N]

Data-parallel training splits every batch over P processes. Plain batch norm then normalises each
process's share with that share's own statistics (PyTorch's DistributedDataParallel does so unless
the model is converted to SyncBatchNorm): P "ghost batches" of b samples instead of one batch of
P·b. This study trains train_cnn.py's CNN for each per-process batch b in three ways, from the
same weights, on the same global batches of P·b samples:

  plain BN   P processes, DDP, each normalising with its own b samples' statistics;
  SyncBN     P processes, DDP, SyncBatchNorm: the statistics of all P·b samples;
  one process  batch P·b: the reference (SyncBN computes exactly this, up to rounding).

It reports test accuracy (eval mode: rank 0's running statistics, as train_cnn.py validates) and
how far rank 0's running statistics sit from the population statistics, recomputed over the whole
training set as one batch (nn.recompute_bn_stats), for several seeds (mean and spread).

This script is the driver: it launches ``mpiexec -n P python examples/bn_distributed.py --worker
FILE ...``, in which every rank trains (the one-process references are shared out between the
ranks and run without collectives, to keep every core busy), and rank 0 writes the final weights
to FILE; the driver then scores them in this one process, prints the table and draws the figure
(data_parallel/report.py).
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import minigrad as mg
from data_parallel import report
from helpers import cli, models, plots
from helpers.bn_stats import stats_gap
from minigrad import distributed as dist
from minigrad import nn
from minigrad.data import DataLoader, DistributedSampler
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel

CONDITIONS = report.CONDITIONS
FIGURE = "bn_distributed.png"


# ------------------------------------------------------------------ training (every rank, under mpiexec)
def train(X, y, batch, config, seed, condition):
    """train_cnn.py's CNN trained ``config["epochs"]`` epochs (AdamW, cosine); returns the model.
    plain BN / SyncBN: this rank's share of every global batch, ``batch`` samples, through DDP;
    one process: batches of ``batch`` (the whole global batch), no other process involved."""
    mg.manual_seed(seed)
    model = models.mnist1d_cnn("fused")
    if condition == "SyncBN":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if condition == "one process":
        net, loader = model, DataLoader(X, y, batch, shuffle=True, seed=seed)
    else:        # the same global batches as one process with batch P·b (DistributedSampler's rule)
        net, loader = DistributedDataParallel(model), DataLoader(X, y, batch, sampler=DistributedSampler(y, seed=seed))
    optimizer = mg.optim.AdamW(model.parameters(), lr=config["lr"])
    for epoch in range(1, config["epochs"] + 1):
        for group in optimizer.param_groups:
            group["lr"] = models.learning_rate(config, epoch)
        with mg.train_mode():
            for xb, yb in loader:
                loss = F.cross_entropy(net(mg.tensor(xb)), yb)
                optimizer.zero_grad()
                loss.backward()                    # DDP: gradients averaged over the processes
                optimizer.step()
    return model


def worker(args):
    """Every rank: the data-parallel runs together, then its share of the one-process runs; rank 0
    gathers every final state (flattened: one array per run) and saves them to ``args.worker``."""
    P, r = dist.get_world_size(), dist.get_rank()
    X, y, *_ = models.load_data("mnist1d", "cnn", False)
    config = {"epochs": args.epochs, "lr": args.lr, "schedule": "cosine"}
    runs = [(b, seed) for b in args.batches for seed in range(args.seeds)]
    states, seconds = {}, {}
    for b, seed in runs:
        for condition in ("plain BN", "SyncBN"):
            start = time.perf_counter()
            states[condition, b, seed] = flatten(train(X, y, b, config, seed, condition))
            seconds[condition, b, seed] = time.perf_counter() - start
            if r == 0 and not args.quiet:
                print(f"  {condition:<8} per-process batch {b:>2}, seed {seed}: {seconds[condition, b, seed]:5.1f} s",
                      flush=True)
    mine = [i for i in range(len(runs)) if i % P == r]     # one-process runs, shared out
    local = np.stack([flatten(train(X, y, P * runs[i][0], config, runs[i][1], "one process")) for i in mine])
    gathered = dist.all_gather(local)                       # rank s's runs, in its order
    for s, block in enumerate(gathered):
        for i, state in zip(range(s, len(runs), P), block):
            states["one process", *runs[i]] = state
    if r == 0:
        mg.save({"processes": np.array(P), "keys": np.array([f"{c}|{b}|{s}" for c, b, s in states]),
                 "states": np.stack(list(states.values()))}, args.worker)


def flatten(model):
    """A model's state_dict as one float64 vector (buffers included), in state_dict order."""
    return np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in model.state_dict().values()])


def unflatten(vector):
    """A plain-BN CNN holding ``vector`` (SyncBatchNorm's state_dict is BatchNorm1d's)."""
    model = models.mnist1d_cnn("fused")
    state, offset = {}, 0
    for key, value in model.state_dict().items():
        state[key] = vector[offset:offset + value.size].reshape(value.shape).astype(value.dtype)
        offset += value.size
    model.load_state_dict(state)
    return model


# ------------------------------------------------------------------ the driver (one process)
def launch(args, out):
    """Run the training under ``mpiexec -n P``; its output is shown as it comes."""
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    command = [mpiexec, "-n", str(args.processes), sys.executable, os.path.abspath(__file__), "--worker", out,
               "--batches", ",".join(map(str, args.batches)), "--seeds", str(args.seeds),
               "--epochs", str(args.epochs), "--lr", str(args.lr), "--threads", str(args.threads or 1)]
    env = dict(os.environ)
    if args.processes > (os.cpu_count() or 1):     # oversubscribed: MPICH's waiting ranks yield
        env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] = "1"
    if args.quiet:
        command.append("--quiet")
    done = subprocess.run(command, env=env)
    if done.returncode != 0:
        sys.exit(f"bn_distributed.py: the training under mpiexec failed (exit {done.returncode})")


def score(saved, X_train, X_test, y_test):
    """{(condition, b, seed): (test accuracy, (mean gap, variance gap))}: rank 0's model in eval
    mode, and its running statistics against population statistics over the training set."""
    results = {}
    for key, vector in zip(saved["keys"], saved["states"]):
        condition, b, seed = str(key).split("|")
        model = unflatten(vector)
        population = copy.deepcopy(model)
        nn.recompute_bn_stats(population, [X_train])          # the whole training set, one batch
        with mg.eval_mode(), mg.no_grad():
            accuracy = float((model(mg.tensor(X_test)).data.argmax(axis=1) == y_test).mean())
        results[condition, int(b), int(seed)] = (accuracy, stats_gap(model, population))
    return results


def summarise(results, batches, seeds):
    """{(condition, b): {"acc": (mean, sd, values), "mean gap": ..., "var gap": ...}} over seeds."""
    table = {}
    for condition in CONDITIONS:
        for b in batches:
            runs = [results[condition, b, s] for s in range(seeds)]
            columns = {"acc": [a for a, _ in runs], "mean gap": [g[0] for _, g in runs],
                       "var gap": [g[1] for _, g in runs]}
            table[condition, b] = {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, v)
                                   for k, v in columns.items()}
    return table


# ------------------------------------------------------------------ command line
def main(argv=None):
    """Run the study (the driver); returns {"table", "results", "conclusions", "apart"}. With --worker:
    the training, under mpiexec."""
    parser = make_parser()
    args = cli.parse(parser, argv, folders=("plot",))
    if args.worker:
        return worker(args)
    if dist.get_world_size() > 1:
        parser.error("run the study without mpiexec: it launches its own (mpiexec -n --processes)")
    X_train, y_train, _, _, X_test, y_test = models.load_data("mnist1d", "cnn", False)
    print(f"MNIST-1D: {len(y_train)} training / {len(y_test)} test signals; per-process batches "
          f"{cli.show(tuple(args.batches))} on {args.processes} processes, {args.seeds} seeds, {args.epochs} "
          f"epochs, AdamW lr {args.lr:g} (cosine)", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "states.npz")
        launch(args, out)
        saved = mg.load(out)
    results = score(saved, X_train, X_test, y_test)
    table = summarise(results, args.batches, args.seeds)
    report.print_table(table, args)
    apart = report.distance_to_one_process(saved)
    lines = report.conclusions(table, args) + [
        f"Final weights and statistics against one process's, worst run (max |difference| / max |value|): "
        f"SyncBN {apart['SyncBN']:.1e}, plain BN {apart['plain BN']:.1e}."]
    print("\n" + "\n".join(lines))
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    if args.plot:
        report.plot(table, args, os.path.join(args.plot, FIGURE), argv)
    return {"table": table, "results": results, "conclusions": lines, "apart": apart}


# plain BN needs two values per channel on every process
PER_PROCESS_BATCHES = cli.integers(2, "batch sizes of 2 or more", "2,4,8")


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--processes", type=cli.number(int, 2), default=2, help="processes (mpiexec -n)")
    p.add_argument("--batches", type=PER_PROCESS_BATCHES, default=(2, 4, 8, 16, 32), help="per-process batch sizes")
    p.add_argument("--seeds", type=cli.number(int, 1), default=3, help="seeds 0 .. N-1 for every condition")
    p.add_argument("--epochs", type=cli.number(int, 1), default=3, help="training epochs of every run")
    p.add_argument("--lr", type=cli.number(float, above=0), default=1e-2, help="AdamW's learning rate")
    p.add_argument("--plot", metavar="DIR", help=f"write {FIGURE} into DIR (needs matplotlib: {plots.PLOT_HINT})")
    p.add_argument("--quiet", action="store_true", help="no line per training run")
    p.add_argument("--worker", metavar="FILE", help=argparse.SUPPRESS)   # the driver's mpiexec job
    cli.add_threads(p)
    return p


if __name__ == "__main__":
    cli.run(main)
