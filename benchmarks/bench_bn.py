"""Batch norm forward + backward alone (training mode), float32, on (N, C) inputs; then every
normalisation (batch norm, BatchRenorm, GroupNorm, LayerNorm) fused against composed and torch.

First table. Implementations: minigrad fused (``batch_norm_fused`` then ``y.backward(dy)``),
minigrad composed (primitive ops), the fused kernel alone (BatchNormFused.forward/backward
called on arrays: the op without the Tensor/graph overhead), the hand-written numpy pair
(``baselines.batchnorm_forward/backward``, cs231n style) and PyTorch's native batch norm if
installed. No running statistics anywhere. All are checked against numpy before timing.
Second table (``--norm-shapes``, any rank): each normalisation's fused and composed form and
torch's native one (BatchRenorm: none; r_max 3, d_max 5), checked against each other first.
The issue's targets: fused ≤ 0.8x composed, and fused/torch for GroupNorm and LayerNorm no
worse than batch norm's fused/torch on the same shape.

    python benchmarks/bench_bn.py [--threads 1] [--shapes 64x128 256x1024 4096x512]
                                  [--norm-shapes 64x128 256x1024 100x32x19 64x16x8x8]
                                  [--budget 10] [--json results.json]
"""
import harness

DEFAULT_SHAPES = ["64x128", "256x1024", "4096x512"]
NORM_SHAPES = ["64x128", "256x1024", "100x32x19", "64x16x8x8"]
NORMS = ("batch", "renorm", "group", "layer")


def add_arguments(parser):
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="NxC, e.g. 64x128")
    parser.add_argument("--norm-shapes", nargs="*", default=NORM_SHAPES,
                        help="NxC, NxCxL or NxCxHxW for the second table (none: skip it)")


def make_implementations(shape, include_torch):
    """name -> (run: fwd + bwd, grads: () -> [dx, dγ, dβ] as arrays), same inputs for all."""
    import numpy as np

    import minigrad as mg
    from baselines import batchnorm_backward, batchnorm_forward
    from minigrad.nn import functional as F
    from minigrad.ops.fused import BatchNormFused
    torch = harness.load_torch()

    rng = np.random.default_rng(0)
    x = (3 + 2 * rng.standard_normal(shape)).astype(np.float32)
    gamma = (1 + 0.1 * rng.standard_normal(shape[1])).astype(np.float32)
    beta = (0.1 * rng.standard_normal(shape[1])).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    eps = 1e-5
    impls = {}

    def minigrad_impl(normalise):
        xt, wt, bt = (mg.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        grad_y = mg.tensor(dy)

        def run():
            xt.grad = wt.grad = bt.grad = None
            y = normalise(xt, wt, bt, eps)[0]
            y.backward(grad_y)
        return run, lambda: [xt.grad, wt.grad, bt.grad]

    impls["minigrad fused"] = minigrad_impl(F.batch_norm_fused)
    impls["minigrad composed"] = minigrad_impl(F.batch_norm_composed)

    kernel_out = {}

    def kernel():
        ctx = mg.Context(BatchNormFused, (True, True, True))
        BatchNormFused.forward(ctx, x, gamma, beta, eps)
        kernel_out["grads"] = BatchNormFused.backward(ctx, dy)
    impls["fused kernel only"] = (kernel, lambda: list(kernel_out["grads"]))

    numpy_out = {}

    def numpy_bn():
        out, _, _, cache = batchnorm_forward(x, gamma, beta, eps)
        numpy_out["grads"] = batchnorm_backward(dy, cache)
    impls["numpy"] = (numpy_bn, lambda: list(numpy_out["grads"]))

    if include_torch and torch is not None:
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        grad_y = torch.from_numpy(dy)

        def torch_bn():
            xt.grad = wt.grad = bt.grad = None
            y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True, eps=eps)
            y.backward(grad_y)
        impls["torch"] = (torch_bn, lambda: [t.grad.numpy() for t in (xt, wt, bt)])
    return impls


def check(impls, rtol=1e-4, reference="numpy"):
    """Every implementation's dx, dγ, dβ against ``reference``'s (relative to the largest entry)."""
    import numpy as np
    for run, _ in impls.values():
        run()
    reference = impls[reference][1]()
    worst = {}
    for name, (_, grads) in impls.items():
        errors = [float(np.abs(g - r).max() / np.abs(r).max()) for g, r in zip(grads(), reference)]
        worst[name] = max(errors)
        assert worst[name] <= rtol, f"{name}: gradients differ from the reference by {worst[name]:.2e}"
    return worst


def make_norm_implementations(kind, shape, include_torch):
    """{"fused", "composed"[, "torch"]} -> (run: fwd + bwd, grads: () -> [dx, dγ, dβ]) for one
    normalisation; GroupNorm with 32 groups when C allows it, LayerNorm over all but N."""
    import numpy as np

    import minigrad as mg
    from minigrad.nn import batchrenorm, normalization
    from minigrad.nn import functional as F
    torch = harness.load_torch() if include_torch else None

    rng = np.random.default_rng(0)
    channels = shape[1]
    params = tuple(shape[1:]) if kind == "layer" else (channels,)
    x = (3 + 2 * rng.standard_normal(shape)).astype(np.float32)
    gamma = (1 + 0.1 * rng.standard_normal(params)).astype(np.float32)
    beta = (0.1 * rng.standard_normal(params)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    mean, var = rng.standard_normal(channels).astype(np.float32), rng.uniform(1, 9, channels).astype(np.float32)
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0 and (g < channels or g == 1))
    ours = {"batch": (F.batch_norm_fused, F.batch_norm_composed, lambda f: lambda x, w, b: f(x, w, b)[0]),
            "renorm": (batchrenorm.batch_renorm_fused, batchrenorm.batch_renorm_composed,
                       lambda f: lambda x, w, b: f(x, w, b, mean, var, 3.0, 5.0)[0]),
            "group": (normalization.group_norm_fused, normalization.group_norm_composed,
                      lambda f: lambda x, w, b: f(x, groups, w, b)),
            "layer": (normalization.layer_norm_fused, normalization.layer_norm_composed,
                      lambda f: lambda x, w, b: f(x, params, w, b))}[kind]
    impls = {}

    def minigrad_impl(fn):
        xt, wt, bt = (mg.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        grad_y = mg.tensor(dy)

        def run():
            xt.grad = wt.grad = bt.grad = None
            fn(xt, wt, bt).backward(grad_y)
        return run, lambda: [xt.grad, wt.grad, bt.grad]

    impls["fused"], impls["composed"] = (minigrad_impl(ours[2](f)) for f in ours[:2])
    if torch is not None and kind != "renorm":
        native = {"batch": lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True),
                  "group": lambda x, w, b: torch.nn.functional.group_norm(x, groups, w, b),
                  "layer": lambda x, w, b: torch.nn.functional.layer_norm(x, params, w, b)}[kind]
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        grad_y = torch.from_numpy(dy)

        def torch_run():
            xt.grad = wt.grad = bt.grad = None
            native(xt, wt, bt).backward(grad_y)
        impls["torch"] = (torch_run, lambda: [t.grad.numpy() for t in (xt, wt, bt)])
    return impls


def norm_table(args, results):
    """The second table: fused against composed and torch for every normalisation."""
    rows = []
    for text in args.norm_shapes:
        shape = tuple(int(n) for n in text.lower().split("x"))
        for kind in NORMS:
            impls = make_norm_implementations(kind, shape, include_torch=not args.no_torch)
            errors = check(impls, reference="fused")
            times = harness.interleaved({name: run for name, (run, _) in impls.items()}, args.budget / len(NORMS),
                                       block_seconds=0.01)
            have_torch = "torch" in times
            pairs = [("fused", "composed")] + ([("fused", "torch")] if have_torch else [])
            entry = {"rounds": len(times["fused"]), "max_relative_grad_error": errors,
                     "median_us": {name: 1e6 * harness.median(t) for name, t in times.items()},
                     "ratios": {f"{a} / {b}": harness.median_ratio(times, a, b) for a, b in pairs}}
            results["norms"].setdefault(text, {})[kind] = entry
            us, ratio = entry["median_us"], entry["ratios"]
            rows.append([text, kind, f"{us['fused']:.1f}", f"{us['composed']:.1f}",
                         f"{us['torch']:.1f}" if have_torch else "-", f"{ratio['fused / composed']:.3f}",
                         f"{ratio['fused / torch']:.3f}" if have_torch else "-"])
            print(f"{text} {kind}: checked (max relative gradient error {max(errors.values()):.1e}), "
                  f"{entry['rounds']} rounds", flush=True)
    print()
    print(harness.table(["shape", "normalisation", "fused µs", "composed µs", "torch µs", "fused/composed",
                         "fused/torch"], rows, labels=2))
    print("\nbatch: training-mode batch norm; renorm: BatchRenorm (r_max 3, d_max 5; PyTorch has none); "
          "group: GroupNorm, 32 groups when C allows; layer: LayerNorm over all axes but N.")


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, budget=10.0)
    info = harness.start("bench_bn", args)
    results = {"machine": info, "shapes": {}, "norms": {}}
    rows = []
    for text in args.shapes:
        shape = tuple(int(n) for n in text.lower().split("x"))
        impls = make_implementations(shape, include_torch=not args.no_torch)
        errors = check(impls)
        times = harness.interleaved({name: run for name, (run, _) in impls.items()}, args.budget,
                                   block_seconds=0.01)
        have_torch = "torch" in times
        pairs = [("minigrad fused", "numpy"), ("fused kernel only", "numpy"),
                 ("minigrad composed", "minigrad fused")]
        if have_torch:
            pairs += [("minigrad fused", "torch"), ("numpy", "torch")]
        entry = {"rounds": len(times["numpy"]), "max_relative_grad_error": errors,
                 "median_us": {name: 1e6 * harness.median(t) for name, t in times.items()},
                 "ratios": {f"{a} / {b}": harness.median_ratio(times, a, b) for a, b in pairs}}
        results["shapes"][text] = entry
        us, ratio = entry["median_us"], entry["ratios"]
        rows.append([f"({shape[0]}, {shape[1]})", f"{us['numpy']:.1f}", f"{us['minigrad fused']:.1f}",
                     f"{us['fused kernel only']:.1f}", f"{us['minigrad composed']:.1f}",
                     f"{us['torch']:.1f}" if have_torch else "-",
                     f"{ratio['minigrad fused / numpy']:.3f}", f"{ratio['fused kernel only / numpy']:.3f}",
                     f"{ratio['minigrad composed / minigrad fused']:.2f}",
                     f"{ratio['minigrad fused / torch']:.3f}" if have_torch else "-",
                     f"{ratio['numpy / torch']:.3f}" if have_torch else "-"])
        print(f"{text}: checked (max relative gradient error {max(errors.values()):.1e}), "
              f"{entry['rounds']} rounds", flush=True)
    print()
    print(harness.table(["shape", "numpy µs", "mg fused µs", "kernel µs", "mg composed µs", "torch µs",
                        "fused/numpy", "kernel/numpy", "composed/fused", "fused/torch", "numpy/torch"],
                       rows))
    print("\nµs: median time of forward + backward; ratios: median of per-round ratios. "
          "'kernel' is BatchNormFused.forward/backward on arrays, without Tensor or graph overhead.")
    if args.norm_shapes:
        print()
        norm_table(args, results)
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
