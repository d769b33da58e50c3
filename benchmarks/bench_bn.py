"""Batch norm forward + backward alone (training mode), float32, on (N, C) inputs.

Implementations: minigrad fused (``batch_norm_fused`` then ``y.backward(dy)``), minigrad
composed (primitive ops), the fused kernel alone (BatchNormFused.forward/backward called on
arrays: the op without the Tensor/graph overhead), the hand-written numpy pair
(``baselines.batchnorm_forward/backward``, cs231n style) and PyTorch's native batch norm if
installed. No running statistics anywhere. All are checked against numpy before timing.

    python benchmarks/bench_bn.py [--threads 1] [--shapes 64x128 256x1024 4096x512]
                                  [--budget 10] [--json results.json]
"""
import harness

DEFAULT_SHAPES = ["64x128", "256x1024", "4096x512"]


def add_arguments(parser):
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="NxC, e.g. 64x128")


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


def check(impls, rtol=1e-4):
    """Every implementation's dx, dγ, dβ against numpy's (relative to the largest entry)."""
    import numpy as np
    for run, _ in impls.values():
        run()
    reference = impls["numpy"][1]()
    worst = {}
    for name, (_, grads) in impls.items():
        errors = [float(np.abs(g - r).max() / np.abs(r).max()) for g, r in zip(grads(), reference)]
        worst[name] = max(errors)
        assert worst[name] <= rtol, f"{name}: gradients differ from numpy by {worst[name]:.2e}"
    return worst


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments, budget=10.0)
    info = harness.start("bench_bn", args)
    results = {"machine": info, "shapes": {}}
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
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
