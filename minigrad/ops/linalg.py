"""Matrix products: MatMul (batched, numpy semantics) and Linear (x @ W.T + b as one op).

Linear is MatMul + Transpose + Add fused into one node: the same arithmetic, a third of the
graph bookkeeping per layer, and no gradient for x computed when x needs none (first layer).
"""
import numpy as np

from ..autograd.function import Function
from ..tensor import Tensor


class MatMul(Function):
    """y = a @ b   (a: (..., n, k), b: (..., k, m));   da = dy @ bᵀ,  db = aᵀ @ dy

    Batch axes broadcast like numpy's matmul; the engine sums the gradient over any it added.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}: the last axis "
                             f"of the first must equal the second-to-last of the second")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad_y):
        a, b = ctx.saved
        grad_a = grad_y @ b.swapaxes(-1, -2) if ctx.needs_input_grad[0] else None
        grad_b = a.swapaxes(-1, -2) @ grad_y if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Linear(Function):
    """y = x @ Wᵀ + b   (x: (N, in), W: (out, in), b: (out,) or None -> y: (N, out));
    dx = dy @ W,  dW = dyᵀ @ x,  db = Σ_N dy"""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                             f"{weight.shape}: expected (N, {weight.shape[1]})")
        ctx.save_for_backward(x, weight)
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_y @ weight if need_x else None
        grad_w = grad_y.T @ x if need_w else None
        grad_b = grad_y.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b


def matmul(a, b):
    """a @ b with numpy's rules for 1-D operands (promoted to a matrix, then squeezed)."""
    a = a if isinstance(a, Tensor) else np.asarray(a)
    b = b if isinstance(b, Tensor) else np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one axis; got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: cannot multiply shapes {a.shape} and {b.shape}: the last axis of "
                         f"the first must equal the {'second-to-last' if b.ndim > 1 else 'only'} axis of the second")
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    if a_vector:
        a = a.reshape(1, -1)       # (k,) -> (1, k)
    if b_vector:
        b = b.reshape(-1, 1)       # (k,) -> (k, 1)
    y = MatMul.apply(a, b)
    if a_vector and b_vector:
        return y.reshape(())
    if a_vector:
        return y.reshape(y.shape[:-2] + y.shape[-1:])
    if b_vector:
        return y.reshape(y.shape[:-1])
    return y
