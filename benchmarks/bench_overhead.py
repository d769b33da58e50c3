"""Per-op overhead: ``a + b`` on (64, 64) float32, minigrad against plain numpy (and PyTorch).

The array is small enough that numpy's own work is about a microsecond, so the difference is
what minigrad adds per op: unwrapping Tensors, the op call, wrapping the result and, with
``requires_grad``, recording the graph node. A last row times forward *and* backward of one
Add node, the per-node cost of the backward pass.

    python benchmarks/bench_overhead.py [--threads 1] [--ops 10000] [--rounds 15] [--json PATH]
"""
import harness


def add_arguments(parser):
    parser.add_argument("--ops", type=int, default=10_000, help="additions per timing (default 10000)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")


def make_loops(ops, include_torch):
    """name -> a function running ``ops`` additions; each returns nothing."""
    import numpy as np

    import minigrad as mg
    torch = harness.load_torch()

    rng = np.random.default_rng(0)
    a_np, b_np = (rng.standard_normal((64, 64)).astype(np.float32) for _ in range(2))
    loops = {}

    def numpy_loop():
        a, b = a_np, b_np
        for _ in range(ops):
            a + b
    loops["numpy"] = numpy_loop

    def minigrad_loop(requires_grad):
        a, b = mg.tensor(a_np, requires_grad=requires_grad), mg.tensor(b_np, requires_grad=requires_grad)

        def loop():
            for _ in range(ops):
                a + b
        return loop
    loops["minigrad, no grad"] = minigrad_loop(False)
    loops["minigrad, requires_grad"] = minigrad_loop(True)

    a_mg, b_mg = mg.tensor(a_np, requires_grad=True), mg.tensor(b_np, requires_grad=True)
    grad = mg.tensor(np.ones((64, 64), dtype=np.float32))

    def backward_loop():
        a, b, g = a_mg, b_mg, grad
        for _ in range(ops):
            a.grad = b.grad = None
            (a + b).backward(g)
    loops["minigrad, add + backward"] = backward_loop

    if include_torch and torch is not None:
        def torch_loop(requires_grad):
            a, b = (torch.tensor(x, requires_grad=requires_grad) for x in (a_np, b_np))

            def loop():
                for _ in range(ops):
                    a + b
            return loop
        loops["torch, no grad"] = torch_loop(False)
        loops["torch, requires_grad"] = torch_loop(True)
        a_t, b_t = (torch.tensor(x, requires_grad=True) for x in (a_np, b_np))
        grad_t = torch.ones(64, 64)

        def torch_backward_loop():
            for _ in range(ops):
                a_t.grad = b_t.grad = None
                (a_t + b_t).backward(grad_t)
        loops["torch, add + backward"] = torch_backward_loop
    return loops


def main(argv=None):
    args = harness.parse(__doc__, argv, add_arguments)
    import time

    info = harness.start("bench_overhead", args)
    loops = make_loops(args.ops, include_torch=not args.no_torch)
    names = list(loops)
    for loop in loops.values():  # warm-up
        loop()
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            loops[name]()
            times[name].append((time.perf_counter() - start) / args.ops)
    results = {"machine": info, "ops": args.ops, "rounds": args.rounds, "per_op_us": {}, "ratio_to_numpy": {}}
    rows = []
    numpy_us = 1e6 * harness.median(times["numpy"])
    for name in names:
        us = 1e6 * harness.median(times[name])
        ratio = harness.median_ratio(times, name, "numpy")
        results["per_op_us"][name], results["ratio_to_numpy"][name] = us, ratio
        rows.append([name, f"{us:.2f}", f"{us - numpy_us:+.2f}", f"{ratio:.2f}"])
    print(harness.table(["a + b, (64, 64) float32", "µs/op", "minus numpy µs", "ratio to numpy"], rows))
    print(f"\nmedians over {args.rounds} interleaved rounds of {args.ops} ops each.")
    harness.write_json(args, results)
    return results


if __name__ == "__main__":
    main()
