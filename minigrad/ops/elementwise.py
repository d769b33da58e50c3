"""Elementwise ops: arithmetic, exp/log/sqrt, the rectifier (ReLU). Each backward is the textbook formula.

Binary ops broadcast like numpy; their backward returns gradients of the *output's* shape
and the engine sums them down to each input's shape (``engine.unbroadcast``), so no op here
un-broadcasts. Backward formulas use only operators, so they also run on Tensors
(``create_graph=True``).
"""
import numpy as np

from ..autograd.function import Function


class Add(Function):
    """y = a + b;   da = dy,  db = dy"""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y, grad_y


class Sub(Function):
    """y = a - b;   da = dy,  db = -dy"""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y, (-grad_y if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;   da = dy * b,  db = dy * a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_y):
        a, b = ctx.saved_tensors
        grad_a = grad_y * b if ctx.needs_input_grad[0] else None
        grad_b = grad_y * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b;   da = dy / b,  db = -dy * a / b²"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad_y):
        a, b = ctx.saved_tensors
        grad_a = grad_y / b if ctx.needs_input_grad[0] else None
        grad_b = -grad_y * a / (b * b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    """y = -x;   dx = -dy"""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_y):
        return -grad_y


class Pow(Function):
    """y = x ** p  (p a constant number);   dx = dy * p * x ** (p - 1)"""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x ** p

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        if ctx.p == 0:
            return grad_y * 0  # x ** 0 is constant; p · x ** -1 would give 0 · inf = NaN at x = 0
        return grad_y * ctx.p * x ** (ctx.p - 1)


class Exp(Function):
    """y = exp(x);   dx = dy * y"""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        return grad_y * y


class Log(Function):
    """y = log(x);   dx = dy / x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        return grad_y / x


class Sqrt(Function):
    """y = sqrt(x);   dx = dy / (2 y)"""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        return grad_y / (y * 2)


class Rectify(Function):
    """y = max(x, 0);   dx = dy * [y > 0]   (the derivative at 0 is taken as 0, as in PyTorch)

    The rectified linear unit behind ``Tensor.relu`` and ``nn.ReLU`` (named apart from the layer).
    """

    @staticmethod
    def forward(ctx, x):
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        return grad_y * (y > 0)
