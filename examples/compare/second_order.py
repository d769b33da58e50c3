"""Second derivatives: why the fused batch norm rebuilds x - μ and inv_std for create_graph.

A fused op saves intermediates (x - μ, inv_std) for speed. Under ``create_graph`` the engine runs
its backward on Tensors; a saved array that is not an input becomes a *constant* there. The
naive variant below does exactly that (it keeps the default ``rebuild_saved``), as a popular
teaching framework's fused batch norm does: its first derivatives are right, its second are
not, because inv_std and x - μ depend on x. ``BatchNormFused.rebuild_saved`` rebuilds both from
x with primitive ops. This module measures the difference as a number: a Hessian-vector product
against finite differences of gradients, for fused, composed and the naive variant.
"""
import numpy as np

import minigrad as mg
from minigrad.autograd.function import Function
from minigrad.nn import batchnorm as bn
from minigrad.ops.fused import BatchNormFused
from minigrad.tensor import Tensor

from .numbers import relative_error


class NaiveBatchNormFused(BatchNormFused):
    """BatchNormFused with its saved x - μ and inv_std left constant under create_graph
    (``Function.rebuild_saved``, the default): right first derivatives, wrong second ones."""

    rebuild_saved = staticmethod(Function.rebuild_saved)
    saves_constants = True    # the false claim a framework without minigrad's check makes silently


def naive(x, weight, bias, eps=1e-5):
    return NaiveBatchNormFused.apply(x, weight, bias, eps)


SECOND_ORDER_IMPLS = {"fused": bn.batch_norm_fused, "composed": bn.batch_norm_composed, "naive fused": naive}


def loss(impl, x, weight, bias, u, eps):
    """A scalar whose gradient depends on x nonlinearly: ½ Σ (u · bn(x))²."""
    y = SECOND_ORDER_IMPLS[impl](x, weight, bias, eps)[0]
    z = y * u
    return (z * z).sum() * 0.5


def hvp(impl, arrays, u, v, eps):
    """H·v for the inputs (x, γ, β) by double backward: d/dθ <∇θ L, v>."""
    tensors = [None if a is None else Tensor(a, requires_grad=True) for a in arrays]
    live = [t for t in tensors if t is not None]
    grads = mg.grad(loss(impl, *tensors, u, eps), live, create_graph=True)
    dot = sum((g * w).sum() for g, w in zip(grads, [w for w in v if w is not None]))
    second = mg.grad(dot, live, allow_unused=True)
    return [np.zeros(t.shape) if h is None else h.data for h, t in zip(second, live)]


def fd_hvp(impl, arrays, u, v, eps, h=1e-6):
    """(∇L(θ + h v) - ∇L(θ - h v)) / 2h: the same product from first derivatives only."""
    def gradient(sign):
        moved = [None if a is None else Tensor(a + sign * h * w, requires_grad=True) for a, w in zip(arrays, v)]
        live = [t for t in moved if t is not None]
        return [g.data for g in mg.grad(loss(impl, *moved, u, eps), live)]
    return [(p - m) / (2 * h) for p, m in zip(gradient(+1), gradient(-1))]   # (x, γ, β) present


def second_order(shape, affine, seed, eps, make_inputs):
    """{impl: max relative error of H·v against finite differences} in float64, plus the first
    derivatives' error of the naive variant against the fused one (it should be ~0)."""
    x, w, b, u = make_inputs(shape, np.float64, affine, seed)
    rng = np.random.default_rng(seed + 100)
    arrays = [x, w, b]
    v = [None if a is None else rng.standard_normal(a.shape) for a in arrays]
    result = {}
    for impl in SECOND_ORDER_IMPLS:
        got, ref = hvp(impl, arrays, u, v, eps), fd_hvp(impl, arrays, u, v, eps)
        result[impl] = max(relative_error(g, r) for g, r in zip(got, ref))
    first = {impl: [t.grad for t in _backward(impl, arrays, u, eps)] for impl in ("fused", "naive fused")}
    result["naive_first_order_vs_fused"] = max(relative_error(a, b) for a, b in
                                                zip(first["naive fused"], first["fused"]))
    return result


def _backward(impl, arrays, u, eps):
    tensors = [None if a is None else Tensor(a, requires_grad=True) for a in arrays]
    loss(impl, *tensors, u, eps).backward()
    return [t for t in tensors if t is not None]
