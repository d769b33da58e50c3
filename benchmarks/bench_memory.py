"""Memory of a training step (tracemalloc, numpy's allocations included) and its growth.

For each configuration of bench_step and each implementation (minigrad fused, minigrad
composed, the hand-written numpy step), the implementation is built while tracemalloc runs, so
everything it owns is counted: parameters, momentum buffers, the batch, retained gradients.
After warm-up steps we report the peak during one step (absolute) and how far that peak rises
above the memory held at the start of the step (the step's working memory). Then ``--steps``
more steps run and the traced memory after them is compared with before: a training loop must
not grow. PyTorch is left out: its allocator is invisible to tracemalloc.

    python benchmarks/bench_memory.py [--configs small medium large]
                                      [--growth-configs small medium] [--steps 1000] [--json PATH]
"""
import sys

import harness

GROWTH_LIMIT = 64 * 1024  # bytes; a loop that keeps graphs alive grows by megabytes


def add_arguments(parser):
    parser.add_argument("--configs", nargs="+", default=["small", "medium", "large"],
                        choices=["small", "medium", "large"], help="configurations for the peak")
    parser.add_argument("--growth-configs", nargs="*", default=["small", "medium"],
                        choices=["small", "medium", "large"],
                        help="configurations for the growth check (default small medium)")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the growth check (default 1000)")


def measure(build, steps, warmup=3):
    """(peak bytes during one step, peak above the step's starting memory, growth over
    ``steps`` further steps or None). The implementation is built under tracemalloc."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        impl = build()
        for _ in range(warmup):
            impl.step()
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        impl.step()
        peak = tracemalloc.get_traced_memory()[1]
        growth = None
        if steps:
            start = tracemalloc.get_traced_memory()[0]
            for _ in range(steps):
                impl.step()
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - start
        return peak, peak - before, growth
    finally:
        tracemalloc.stop()


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, torch=False)
    import mlp_steps  # numpy loads here, after the thread variables are set

    info = harness.start("bench_memory", args)
    builders = {"minigrad fused": lambda p: mlp_steps.MinigradStep(p, fused=True),
                "minigrad composed": lambda p: mlp_steps.MinigradStep(p, fused=False),
                "numpy": mlp_steps.NumpyStep}
    mib = 1 / 2**20
    results = {"machine": info, "steps": args.steps, "configs": {}}
    rows, failures = [], []
    for config in dict.fromkeys(args.configs + args.growth_configs):
        problem = mlp_steps.make_problem(config)
        steps = args.steps if config in args.growth_configs else 0
        entry = {name: dict(zip(("peak", "step_working", "growth"), measure(lambda: build(problem), steps)))
                 for name, build in builders.items()}
        results["configs"][config] = entry
        for name, m in entry.items():
            growth = "-" if m["growth"] is None else f"{m['growth'] / 1024:+.1f} KiB"
            if m["growth"] is not None and m["growth"] > GROWTH_LIMIT:
                failures.append(f"{config} {name}: grew by {m['growth']} bytes over {args.steps} steps")
            rows.append([config, name, f"{m['peak'] * mib:.2f}", f"{m['peak'] / entry['numpy']['peak']:.2f}",
                         f"{m['step_working'] * mib:.2f}",
                         f"{m['step_working'] / entry['numpy']['step_working']:.2f}", growth])
        print(f"{config}: done", flush=True)
    print()
    print(harness.table(["config", "implementation", "peak MiB", "peak / numpy", "step working MiB",
                        "working / numpy", f"growth over {args.steps} steps"], rows, labels=2))
    print("\npeak: the most memory traced during one step, counting everything the implementation "
          "owns (weights, momentum, batch, gradients, activations); step working: that peak minus "
          "the memory held when the step began.")
    if failures:
        print("\nGROWTH:\n" + "\n".join(failures))
    harness.write_json(args, results)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
