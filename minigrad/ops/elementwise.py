"""Elementwise ops: arithmetic, exp/log/sqrt, the rectifier (ReLU), and dtype promotion.

Binary ops broadcast like numpy, and their result dtype follows PyTorch's rules, not numpy's
(``result_type``: a float32 model stays float32 beside int64 labels, float64 0-d constants and
Python numbers). Their backward returns gradients of the *output's* shape and dtype; the engine
sums them down to each input's shape and casts them to its dtype, so no op here does. Backward
formulas use only operators, so they also run on Tensors (``create_graph=True``).
"""
import math

import numpy as np

from ..autograd.function import Function

# ------------------------------------------------------------------ dtype promotion
# PyTorch's rules (torch.result_type). Categories: bool < integer < floating < complex. Operands
# come in three ranks: arrays with at least one axis ("dimensioned"), 0-d arrays, and Python (or
# numpy) scalars. The result is in the highest category present; within it, the highest rank
# present in that category decides, promoting the dtypes of that rank; a Python scalar counts as
# int64, float32 (the default float) or complex64. int / int is true division: float32.
CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
DEFAULT_FLOAT = np.dtype(np.float32)
SCALAR_DTYPE = {"b": np.dtype(np.bool_), "i": np.dtype(np.int64), "u": np.dtype(np.int64),
                "f": DEFAULT_FLOAT, "c": np.dtype(np.complex64)}
PYTHON_KIND = {bool: "b", int: "i", float: "f", complex: "c"}


def result_type(a, b):
    """The dtype of ``a ⊕ b`` for arrays, Python numbers and numpy scalars, by PyTorch's rules.

    float32 array ⊕ int64 array -> float32; float32 array ⊕ float64 0-d -> float32;
    int64 array ⊕ 2.5 -> float32; float32 array ⊕ float64 array -> float64 (same rank: promoted).
    """
    ranks = [None, None, None]                   # promoted dtype of: dimensioned, 0-d, scalars
    for x in (a, b):
        if isinstance(x, np.ndarray):
            rank, dtype = (0 if x.ndim else 1), x.dtype
        else:
            kind = x.dtype.kind if isinstance(x, np.generic) else PYTHON_KIND.get(type(x))
            if kind not in SCALAR_DTYPE:
                raise TypeError(f"expected a Tensor, an array or a number as an operand, got "
                                f"{type(x).__name__} {x!r:.60}")
            rank, dtype = 2, SCALAR_DTYPE[kind]
        ranks[rank] = dtype if ranks[rank] is None else promote(ranks[rank], dtype)
    return combine(ranks[0], combine(ranks[1], ranks[2]))


def promote(d1, d2):
    """Two dtypes of one rank: numpy's promotion within a category (int8 ⊕ uint8 -> int16, float32
    ⊕ float64 -> float64, float64 ⊕ complex64 -> complex128), else the higher category's dtype
    (int64 ⊕ float16 -> float16, where numpy says float64)."""
    c1, c2 = CATEGORY[d1.kind], CATEGORY[d2.kind]
    if c1 == c2 or (c1 >= 2 and c2 >= 2):
        return np.promote_types(d1, d2)
    return d1 if c1 > c2 else d2


def combine(higher, lower):
    """The dtype of a higher rank against a lower one (PyTorch's combine_categories): the higher
    rank wins unless the lower one is in a higher category."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    ch, cl = CATEGORY[higher.kind], CATEGORY[lower.kind]
    if ch == 3:
        return higher
    if cl == 3:                                  # float32 array ⊕ 1j -> complex64
        return np.promote_types(higher, np.complex64) if ch == 2 else lower
    if ch == 2 or (cl < 2 and ch > 0):           # a float, or an integer beside a non-float
        return higher
    return promote(higher, lower)                # bool beside anything, integer beside a float


def binary(ufunc, a, b, true_division=False):
    """``ufunc(a, b)`` computed in ``result_type(a, b)`` (float32 for an integer true division)."""
    if type(a) is np.ndarray:                    # the hot paths, where numpy agrees with PyTorch:
        if type(b) is np.ndarray:                # one dtype, or a float array and a Python number
            if a.dtype is b.dtype and not (true_division and a.dtype.kind in "biu"):
                return ufunc(a, b)
        elif (type(b) is float or type(b) is int) and a.dtype.kind == "f":
            return ufunc(a, b)
    elif type(b) is np.ndarray and (type(a) is float or type(a) is int) and b.dtype.kind == "f":
        return ufunc(a, b)
    dtype = result_type(a, b)
    if true_division and dtype.kind in "biu":
        dtype = DEFAULT_FLOAT
    # "unsafe" only lets an integer change sign: an int8 0-d beside a uint8 array wraps, as in torch
    return ufunc(a, b, dtype=dtype, casting="unsafe")


def is_bool(x):
    """A boolean operand: a bool array, a Python bool or a numpy one."""
    return x.dtype.kind == "b" if isinstance(x, (np.ndarray, np.generic)) else type(x) is bool


def floating(x):
    """``x`` for a floating-point array; an integer or boolean one as float32 (torch.exp(int) is)."""
    return x if x.dtype.kind in "fc" else x.astype(DEFAULT_FLOAT)


# ------------------------------------------------------------------ the ops
class Add(Function):
    """y = a + b;   da = dy,  db = dy"""

    @staticmethod
    def forward(ctx, a, b):
        return binary(np.add, a, b)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y, grad_y


class Sub(Function):
    """y = a - b;   da = dy,  db = -dy"""

    @staticmethod
    def forward(ctx, a, b):
        if is_bool(a) or is_bool(b):
            raise TypeError("Sub: subtraction with a bool operand is not supported (as in PyTorch); "
                            "to invert a mask compare it (mask == False), else convert it to a number "
                            "dtype first")
        return binary(np.subtract, a, b)

    @staticmethod
    def backward(ctx, grad_y):
        return grad_y, (-grad_y if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;   da = dy * b,  db = dy * a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return binary(np.multiply, a, b)

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
        return binary(np.true_divide, a, b, true_division=True)

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
        y = binary(np.power, a, b)
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
        y = np.exp(floating(x))
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
        return np.log(floating(x))

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        return grad_y / x


class Sqrt(Function):
    """y = sqrt(x);   dx = dy / (2 y)"""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(floating(x))
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
