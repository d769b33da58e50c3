"""What a data-parallel speedup can reach: a training step's fixed cost against its cost per sample.

One process, one BLAS thread: bench_distributed's plain-BN step (the MNIST-1D CNN + BatchNorm1d,
DistributedDataParallel at world size 1, AdamW, train mode) timed at several batch sizes,
interleaved. A step costs about t(B) = a + b·B; a and b are fitted on the batches up to half
the global batch. P processes splitting a global batch G each take t(G/P), so even with free
collectives the speedup is at most t(G) / t(G/P) (the "ceiling", measured); on the fit,
(a + b·G) / (a + b·G/2) >= S at P = 2 needs a <= b·G·(1 - S/2) / (S - 1) (printed per target S).
Minor page faults per step are counted too: glibc may hand a step's large temporaries back
to the system and fault them in again every step, which makes t(G) dearer than the fit.

    python benchmarks/bench_batch_cost.py [--batches 1 10 25 50 100] [--global-batch 100]
        [--speedups 1.8 1.7] [--budget 20] [--json PATH]
"""
import resource
import sys

import harness

sys.path.insert(0, harness.EXAMPLES)          # examples/helpers: the model and its data

def add_arguments(parser):
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 10, 25, 50, 100])
    parser.add_argument("--global-batch", type=int, default=100, help="the batch P processes split")
    parser.add_argument("--speedups", type=float, nargs="+", default=[1.8, 1.7],
                        help="targets at 2 processes: the fixed cost each would allow")


def stepper(batch):
    """A callable running one training step at ``batch`` (cycling through the training set)."""
    import minigrad as mg
    from bench_distributed import build
    from helpers import models
    from minigrad.nn import functional as F
    X, y, *_ = models.load_data("mnist1d", "cnn", False)
    ddp, optimizer, loader = build("plain BN", X, y, batch)
    batches = list(loader)
    position = [0]

    def step():
        xb, yb = batches[position[0] % len(batches)]
        position[0] += 1
        with mg.train_mode():
            loss = F.cross_entropy(ddp(mg.tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return step


def faults_per_step(step, steps=200):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def fit(points):
    """Least squares t = a + b·B over (B, t) points: (a, b)."""
    n = len(points)
    mean_b = sum(b for b, _ in points) / n
    mean_t = sum(t for _, t in points) / n
    slope = sum((b - mean_b) * (t - mean_t) for b, t in points) / sum((b - mean_b) ** 2 for b, _ in points)
    return mean_t - slope * mean_b, slope


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, budget=20.0, torch=False)
    info = harness.start("bench_batch_cost", args)
    g = args.global_batch
    batches = sorted(set(args.batches) | {g, g // 2})
    steps = {b: stepper(b) for b in batches}
    faults = {b: faults_per_step(steps[b]) for b in batches}            # also the warm-up
    times = harness.interleaved({b: steps[b] for b in batches}, args.budget)
    ms = {b: 1e3 * harness.median(times[b]) for b in batches}
    a, slope = fit([(b, ms[b]) for b in batches if b <= g // 2])
    print(harness.table(["batch", "ms per step", "fit a + b·B", "page faults per step"],
                        [[b, f"{ms[b]:.3f}", f"{a + slope * b:.3f}", f"{faults[b]:.0f}"] for b in batches]))
    ceiling = harness.median_ratio(times, g, g // 2)
    print(f"\nfixed cost a = {a:.3f} ms a step, b = {1e3 * slope:.2f} µs a sample (fit on batches <= {g // 2})")
    print(f"ceiling at 2 processes, global batch {g}: t({g}) / t({g // 2}) = {ceiling:.2f}x measured "
          f"(free collectives); from the fit alone {(a + slope * g) / (a + slope * g / 2):.2f}x")
    allowed = {s: slope * g * (1 - s / 2) / (s - 1) for s in args.speedups}
    for s, most in allowed.items():
        print(f"a {s}x speedup at 2 processes needs a <= {most:.3f} ms ({most / a:.0%} of today's fixed cost)")
    harness.write_json(args, {"machine": info, "ms_per_step": ms, "faults_per_step": faults,
                              "fixed_ms": a, "per_sample_ms": slope, "ceiling": ceiling,
                              "fixed_ms_allowed": allowed})


if __name__ == "__main__":
    main()
