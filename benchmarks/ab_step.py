"""A/B: the bench_step MLP step of two minigrad checkouts, timed side by side in one process.

For a change to the engine on a busy machine: both packages are loaded at once (under the names
``minigrad_a`` and ``minigrad_b``), both steps and the hand-written numpy step run interleaved in
short blocks (as harness.interleaved), and the table gives each side's median of per-round ratios
to numpy and the median of per-round ratios b / a, so a slow spell of the machine cancels out.
``--clock cpu`` times with this thread's CPU time instead of the wall clock: on a machine that
other jobs keep busy, the time the process waits for a core then counts for neither side.

    python benchmarks/ab_step.py --a /path/to/old/checkout [--b .] [--configs small medium]
                                 [--budget 30] [--clock wall|cpu] [--threads 1] [--json PATH]
"""
import importlib.util
import os
import sys
import time

import harness


def add_arguments(parser):
    parser.add_argument("--a", required=True, help="root of checkout A (the one holding minigrad/)")
    parser.add_argument("--b", default=".", help="root of checkout B (default: the current directory)")
    parser.add_argument("--configs", nargs="+", default=["small", "medium"],
                        choices=["small", "medium", "large"])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: time.perf_counter; cpu: time.thread_time (default wall)")


def load_package(root, alias):
    """``root``/minigrad imported as the package ``alias`` (its imports are relative, so it
    finds its own modules, never the other checkout's)."""
    folder = os.path.join(os.path.abspath(root), "minigrad")
    spec = importlib.util.spec_from_file_location(alias, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return package


def step_class(mlp_steps, package):
    """mlp_steps.MinigradStep, running on ``package``: a copy of the module whose globals
    ``mg`` and ``F`` are that package's."""
    spec = importlib.util.spec_from_file_location(f"mlp_steps_{package.__name__}", mlp_steps.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.mg, module.F = package, package.nn.functional
    return module.MinigradStep


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, budget=30.0, torch=False)
    import mlp_steps  # numpy loads here, after the thread variables are set

    harness.start("ab_step", args)
    packages = {side: load_package(getattr(args, side), f"minigrad_{side}") for side in ("a", "b")}
    for side, package in packages.items():
        print(f"# {side}: {os.path.dirname(package.__file__)}")
    results, rows = {"a": args.a, "b": args.b, "clock": args.clock, "configs": {}}, []
    for config in args.configs:
        problem = mlp_steps.make_problem(config)
        steps = {"numpy": mlp_steps.NumpyStep(problem)}
        for side, package in packages.items():
            steps[side] = step_class(mlp_steps, package)(problem, fused=True)
        mlp_steps.check_steps(steps)
        clock = time.thread_time if args.clock == "cpu" else time.perf_counter
        times = harness.interleaved({name: impl.step for name, impl in steps.items()}, args.budget, clock=clock)
        entry = {"rounds": len(times["numpy"]),
                 "median_ms": {name: 1e3 * harness.median(t) for name, t in times.items()},
                 "a / numpy": harness.median_ratio(times, "a", "numpy"),
                 "b / numpy": harness.median_ratio(times, "b", "numpy"),
                 "b / a": harness.median_ratio(times, "b", "a")}
        results["configs"][config] = entry
        ms = entry["median_ms"]
        rows.append([config, entry["rounds"], f"{ms['numpy']:.3f}", f"{ms['a']:.3f}", f"{ms['b']:.3f}",
                     f"{entry['a / numpy']:.3f}", f"{entry['b / numpy']:.3f}", f"{entry['b / a']:.3f}"])
        print(f"{config}: checked, {entry['rounds']} rounds", flush=True)
    print()
    print(harness.table(["config", "rounds", "numpy ms", "a ms", "b ms", "a/numpy", "b/numpy", "b/a"], rows))
    print(f"\nms: median {args.clock} time per step (fused batch norm); ratios: median of per-round ratios.")
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
