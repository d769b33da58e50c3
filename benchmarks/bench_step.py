"""One training step of an MLP, minigrad against hand-written numpy and PyTorch.

A step: zero grads, forward (Linear -> BatchNorm1d (training mode) -> ReLU blocks, a final
Linear), cross-entropy, backward, SGD with momentum 0.9; float32. Every implementation starts
from the same data and weights and is checked against the numpy step before timing. Timing:
warm-up, then the implementations interleaved round-robin in short blocks; the table reports
median times and medians of per-round ratios.

    python benchmarks/bench_step.py [--threads 1] [--configs small medium large]
                                    [--budget 20] [--json results.json]
"""
import argparse
import json

from _threads import limit_threads


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    parser.add_argument("--configs", nargs="+", default=["small", "medium", "large"],
                        choices=["small", "medium", "large"])
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of timed rounds per configuration (default 20)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    limit_threads(args.threads)
    import common  # numpy loads here, after the thread variables are set

    info = common.start("bench_step", args.threads)
    results = {"machine": info, "configs": {}}
    rows = []
    for config in args.configs:
        batch, widths = common.CONFIGS[config]
        steps = common.make_steps(common.make_problem(config), include_torch=not args.no_torch)
        errors = common.check_steps(steps)
        times = common.interleaved({name: impl.step for name, impl in steps.items()}, args.budget)
        entry = {"batch": batch, "widths": widths, "rounds": len(times["numpy"]),
                 "max_relative_grad_error": errors,
                 "median_ms": {name: 1e3 * common.median(t) for name, t in times.items()},
                 "ratios": {}}
        pairs = [("minigrad fused", "numpy"), ("minigrad composed", "numpy")]
        if "torch" in times:
            pairs += [("minigrad fused", "torch"), ("minigrad composed", "torch"), ("torch", "numpy")]
        for a, b in pairs:
            entry["ratios"][f"{a} / {b}"] = common.median_ratio(times, a, b)
        results["configs"][config] = entry
        ms, ratio = entry["median_ms"], entry["ratios"]
        rows.append([f"{config} (batch {batch}, {'-'.join(map(str, widths))})", entry["rounds"],
                     f"{ms['numpy']:.3f}", f"{ms['minigrad fused']:.3f}", f"{ms['minigrad composed']:.3f}",
                     f"{ms['torch']:.3f}" if "torch" in ms else "-",
                     f"{ratio['minigrad fused / numpy']:.3f}", f"{ratio['minigrad composed / numpy']:.3f}",
                     f"{ratio['minigrad fused / torch']:.3f}" if "torch" in ms else "-",
                     f"{ratio['torch / numpy']:.3f}" if "torch" in ms else "-"])
        print(f"{config}: checked (max relative gradient error "
              f"{max(errors.values()):.1e}), {entry['rounds']} rounds", flush=True)
    print()
    print(common.table(["config", "rounds", "numpy ms", "mg fused ms", "mg composed ms", "torch ms",
                        "fused/numpy", "composed/numpy", "fused/torch", "torch/numpy"], rows))
    print("\nms: median time per step; ratios: median of per-round ratios.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
