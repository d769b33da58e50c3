"""One training step of an MLP, minigrad against hand-written numpy and PyTorch.

A step: zero grads, forward (Linear -> BatchNorm1d (training mode) -> ReLU blocks, a final
Linear), cross-entropy, backward, SGD with momentum 0.9; float32. Every implementation starts
from the same data and weights and is checked against the numpy step before timing. Timing:
warm-up, then the implementations interleaved round-robin in short blocks; the table reports
median times and medians of per-round ratios.

    python benchmarks/bench_step.py [--threads 1] [--configs small medium large]
                                    [--budget 20] [--json results.json]
"""
import harness


def add_arguments(parser):
    parser.add_argument("--configs", nargs="+", default=["small", "medium", "large"],
                        choices=["small", "medium", "large"])


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, budget=20.0)
    import mlp_steps  # numpy loads here, after the thread variables are set

    info = harness.start("bench_step", args)
    results = {"machine": info, "configs": {}}
    rows = []
    for config in args.configs:
        batch, widths = mlp_steps.CONFIGS[config]
        steps = mlp_steps.make_steps(mlp_steps.make_problem(config), include_torch=not args.no_torch)
        errors = mlp_steps.check_steps(steps)
        times = harness.interleaved({name: impl.step for name, impl in steps.items()}, args.budget)
        entry = {"batch": batch, "widths": widths, "rounds": len(times["numpy"]),
                 "max_relative_grad_error": errors,
                 "median_ms": {name: 1e3 * harness.median(t) for name, t in times.items()},
                 "ratios": {}}
        pairs = [("minigrad fused", "numpy"), ("minigrad composed", "numpy")]
        if "torch" in times:
            pairs += [("minigrad fused", "torch"), ("minigrad composed", "torch"), ("torch", "numpy")]
        for a, b in pairs:
            entry["ratios"][f"{a} / {b}"] = harness.median_ratio(times, a, b)
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
    print(harness.table(["config", "rounds", "numpy ms", "mg fused ms", "mg composed ms", "torch ms",
                        "fused/numpy", "composed/numpy", "fused/torch", "torch/numpy"], rows))
    print("\nms: median time per step; ratios: median of per-round ratios.")
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
