"""Elementwise ops: arithmetic, exp/log/sqrt, the rectifier (ReLU). Each backward is the textbook formula.

Binary ops broadcast like numpy; their backward returns gradients of the *output's* shape
and the engine sums them down to each input's shape (``engine.unbroadcast``), so no op here
un-broadcasts. Backward formulas use only operators, so they also run on Tensors
(``create_graph=True``).
"""
import math

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
    """y = a ** b;   da = dy · b · a^(b-1)  (0 where b = 0),   db = dy · y · log a  (0 where a = 0)

    a or b may be a constant (a number or an array). The masks are PyTorch's: 0 ** 0 = 1 has
    da = 0 and db = 0, and d(x²)/dx at 0 is 0, where exp(b log a) would give NaN; a negative a
    with an integral b is fine ((-2) ** 2 = 4), and only db is NaN there (log of a negative).
    The masks enter as exponents and arguments (a^(b-1+[b=0]), log(a+[a=0])), never as a
    product with inf, so second derivatives stay finite too.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = grad_y * b * a ** (b - 1 + (b == 0))      # at b = 0: b · a¹ = 0
        if ctx.needs_input_grad[1]:
            grad_b = grad_y * y * log(a + (a == 0))            # at a = 0: y · log 1 = 0
        return grad_a, grad_b


def log(x):
    """log on an array (NaN for negatives, silently), a number or a Tensor (the Log op)."""
    if isinstance(x, np.ndarray):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(x)
    if isinstance(x, (int, float, np.generic)):
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
    return Log.apply(x)


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
