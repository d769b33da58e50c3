"""Where a minigrad training step spends its time (the bench_step model, one configuration).

Two views: (1) op kernels against everything else, by timing every Function's forward and
backward body (a small wrapper per call, so totals are a few µs high); (2) cProfile, grouped by
file, whose absolute times are inflated by the profiler but whose shares show the overhead.

    python benchmarks/profile_step.py [--config small] [--steps 2000] [--composed]
"""
import collections
import cProfile
import pstats
import time

import harness


def add_arguments(parser):
    parser.add_argument("--config", default="small", choices=["small", "medium", "large"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--composed", action="store_true", help="composed batch norm instead of fused")


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, torch=False)
    import minigrad as mg
    import mlp_steps
    from minigrad.ops import elementwise, fused, linalg, reduce, shape

    impl = mlp_steps.MinigradStep(mlp_steps.make_problem(args.config), fused=not args.composed)
    for _ in range(100):
        impl.step()

    # (1) kernels against the rest, per phase of the step
    kernel = collections.Counter()
    ops = [v for m in (elementwise, fused, linalg, reduce, shape) for v in vars(m).values()
           if isinstance(v, type) and issubclass(v, mg.Function) and v is not mg.Function]
    originals = {(op, name): getattr(op, name) for op in ops for name in ("forward", "backward")}

    def timed(op, name, body):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return body(*args, **kwargs)
            finally:
                kernel[f"{op.__name__}.{name}"] += time.perf_counter() - start
        return staticmethod(run)

    for (op, name), body in originals.items():
        setattr(op, name, timed(op, name, body))
    phases = collections.Counter()
    try:
        for _ in range(args.steps):
            t0 = time.perf_counter()
            impl.optimizer.zero_grad()
            loss = mlp_steps.F.cross_entropy(impl.model(impl.x), impl.y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            impl.optimizer.step()
            t3 = time.perf_counter()
            phases["forward (zero_grad, model, loss)"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer step"] += t3 - t2
    finally:
        for (op, name), body in originals.items():
            setattr(op, name, staticmethod(body))
    us = 1e6 / args.steps
    total, kernels = sum(phases.values()), sum(kernel.values())
    print(f"{args.config}, {'composed' if args.composed else 'fused'} batch norm: "
          f"{total * us:.1f} µs per step (instrumented)")
    for name, seconds in phases.items():
        print(f"  {name:34s} {seconds * us:8.1f} µs")
    print(f"  op kernels (forward/backward bodies) {kernels * us:6.1f} µs; everything else {(total - kernels) * us:.1f} µs")
    for name, seconds in kernel.most_common():
        print(f"    {name:30s} {seconds * us:8.1f} µs")

    # (2) cProfile, grouped by file
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        impl.step()
    profile.disable()
    groups = collections.Counter()
    for (filename, _, function), (_, _, tottime, _, _) in pstats.Stats(profile).stats.items():
        if "/minigrad/" in filename:
            key = "minigrad/" + filename.split("/minigrad/", 1)[1]
            if "/ops/" in filename and function in ("forward", "backward"):
                key = "op kernels (forward/backward bodies)"
        elif filename == "~":
            key = "builtins (numpy and Python C calls)"
        else:
            key = filename.rsplit("/", 1)[-1]
        groups[key] += tottime
    total = sum(groups.values())
    print(f"\ncProfile, {total * us:.0f} µs per step under the profiler, share by file:")
    for key, seconds in groups.most_common(12):
        print(f"  {100 * seconds / total:5.1f} %  {key}")


if __name__ == "__main__":
    main()
