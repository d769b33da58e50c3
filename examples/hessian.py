"""Second derivatives through batch norm: a Hessian-vector product and a gradient penalty.

backward(create_graph=True) / mg.grad(..., create_graph=True) record the backward pass as a
graph, so a gradient can be differentiated again. This script does it for a small MLP with
batch norm, once with the composed BN (primitive ops) and once with the fused BN (whose
hand-written backward is itself run on Tensors), and prints both side by side, with a
finite-difference check of the Hessian-vector product.

    python examples/hessian.py [--batch 32] [--hidden 16] [--seed 0] [--threads N]
"""
import helpers  # noqa: F401  (first: one BLAS thread before numpy loads; helpers/threads.py)

import argparse

import numpy as np

import minigrad as mg
from helpers import cli
from minigrad import nn
from minigrad.nn import functional as F


def make_model(fused, hidden, seed):
    """Linear -> BatchNorm1d -> ReLU -> Linear, float64, same weights for a given seed."""
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, hidden, dtype=np.float64),
                         nn.BatchNorm1d(hidden, fused=fused, dtype=np.float64),
                         nn.ReLU(), nn.Linear(hidden, 3, dtype=np.float64))


def loss_of(model, x, y):
    return F.cross_entropy(model(x), y)


def hessian_vector_product(model, x, y, vector):
    """H v = d/dθ (∇θ L · v): two backward passes, the first one recorded (create_graph)."""
    params = list(model.parameters())
    grads = mg.grad(loss_of(model, x, y), params, create_graph=True)
    grad_dot_v = sum((g * v).sum() for g, v in zip(grads, vector))
    return [h.data for h in mg.grad(grad_dot_v, params)]


def finite_difference_hvp(model, x, y, vector, eps=1e-5):
    """(∇L(θ + εv) - ∇L(θ - εv)) / 2ε: the same product without second-order autograd."""
    params = list(model.parameters())
    originals = [p.data.copy() for p in params]

    def gradient_at(sign):
        for p, p0, v in zip(params, originals, vector):
            p.data = p0 + sign * eps * v
        return [g.data for g in mg.grad(loss_of(model, x, y), params)]

    plus, minus = gradient_at(+1), gradient_at(-1)
    for p, p0 in zip(params, originals):
        p.data = p0
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus)]


def gradient_penalty_grads(model, x, y, weight=0.1):
    """∇θ [L + weight · ‖∂L/∂x‖²]: the penalty's gradient needs ∂²L/∂x∂θ through BN."""
    x = mg.tensor(x.data, requires_grad=True)
    loss = loss_of(model, x, y)
    (grad_x,) = mg.grad(loss, [x], create_graph=True)
    total = loss + weight * (grad_x * grad_x).sum()
    params = list(model.parameters())
    return [g.data for g in mg.grad(total, params)], float(total.data)


def max_rel(a, b):
    a, b = np.concatenate([u.ravel() for u in a]), np.concatenate([u.ravel() for u in b])
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def run(batch=32, hidden=16, seed=0):
    """Returns a dict of the measured differences (used by the tests)."""
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal((batch, 8)))
    y = rng.integers(0, 3, batch)
    vector = [rng.standard_normal(p.shape) for p in make_model(True, hidden, seed).parameters()]
    results = {}
    for name, fused in (("composed", False), ("fused", True)):
        model = make_model(fused, hidden, seed)   # same weights for both
        with mg.train_mode():
            hvp = hessian_vector_product(model, x, y, vector)
            fd = finite_difference_hvp(model, x, y, vector)
            penalty_grads, penalty_loss = gradient_penalty_grads(model, x, y)
        results[name] = {"hvp": hvp, "hvp_vs_fd": max_rel(hvp, fd),
                         "penalty_grads": penalty_grads, "penalty_loss": penalty_loss}
    results["hvp_fused_vs_composed"] = max_rel(results["fused"]["hvp"], results["composed"]["hvp"])
    results["penalty_fused_vs_composed"] = max_rel(results["fused"]["penalty_grads"],
                                                   results["composed"]["penalty_grads"])
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=cli.number(int, 2), default=32,
                        help="batch size (training-mode batch norm needs 2 or more)")
    parser.add_argument("--hidden", type=cli.number(int, 1), default=16, help="hidden width")
    parser.add_argument("--seed", type=cli.number(int, 0), default=0, help="data, weights and direction v")
    cli.add_threads(parser)
    args = cli.parse(parser, argv)
    # float64 weights (8 -> hidden -> 3) and about 20 copies of them and of the (batch, hidden)
    # activations: parameters, gradients, the recorded backward, finite differences
    cli.check_memory(parser, f"--batch {args.batch} --hidden {args.hidden}",
                     8 * 20 * (12 * args.hidden + args.batch * args.hidden))
    r = run(args.batch, args.hidden, args.seed)
    print(f"MLP 8-{args.hidden}-3 with BatchNorm1d, batch {args.batch}, float64, training mode\n")
    print(f"{'':34}{'composed':>14}{'fused':>14}")
    print(f"{'H·v vs finite differences (rel)':34}{r['composed']['hvp_vs_fd']:>14.2e}{r['fused']['hvp_vs_fd']:>14.2e}")
    print(f"{'loss + 0.1·|dL/dx|^2':34}{r['composed']['penalty_loss']:>14.8f}{r['fused']['penalty_loss']:>14.8f}")
    print("\nfused vs composed, max relative difference:")
    print(f"  Hessian-vector product          {r['hvp_fused_vs_composed']:.2e}")
    print(f"  gradient of the penalised loss  {r['penalty_fused_vs_composed']:.2e}")
    return r


if __name__ == "__main__":
    cli.run(main)
