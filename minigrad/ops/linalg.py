"""Matrix products: MatMul (batched, numpy semantics) and Affine (x @ W.T + b as one op).

Affine is MatMul + Transpose + Add fused into one node, the op behind ``nn.Linear``: the same
arithmetic, a third of the graph bookkeeping per layer, and no gradient for x computed when x
needs none (first layer). ``Tensor.__matmul__`` adds numpy's rules for 1-D operands on top.
"""
from ..autograd.function import Function


class MatMul(Function):
    """y = a @ b   (a: (..., n, k), b: (..., k, m));   da = dy @ bᵀ,  db = aᵀ @ dy

    Batch axes broadcast like numpy's matmul; the engine sums the gradient over any it added.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}: the last axis "
                             f"of the first must equal the second-to-last of the second")
        if a.dtype != b.dtype:       # as PyTorch: never a silent float64 product in a float32 model
            raise TypeError(f"matmul: both operands need the same dtype, got {a.dtype} and {b.dtype} "
                            f"(shapes {a.shape} and {b.shape}); convert one first, e.g. "
                            f"mg.tensor(array, dtype=np.{a.dtype})")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad_y):
        a, b = ctx.saved_tensors
        grad_a = grad_y @ b.swapaxes(-1, -2) if ctx.needs_input_grad[0] else None
        grad_b = a.swapaxes(-1, -2) @ grad_y if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Affine(Function):
    """y = x @ Wᵀ + b   (x: (N, in), W: (out, in), b: (out,) or None -> y: (N, out));
    dx = dy @ W,  dW = dyᵀ @ x,  db = Σ_N dy"""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_y @ weight if need_x else None
        grad_w = grad_y.T @ x if need_w else None
        grad_b = grad_y.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b
