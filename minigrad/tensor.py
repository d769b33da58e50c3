"""Tensor: a numpy array plus what autograd needs (grad, requires_grad, the node that made it).

Every operator and method below calls one op explicitly (``Add.apply(self, other)``), so
grep finds each definition. Tensor itself computes nothing: ops live in ``minigrad/ops``, the
graph node in ``autograd/function.py``, the backward pass in ``autograd/engine.py``.
"""
import math
import numbers

import numpy as np

from . import modes


def _wrap(data, requires_grad):
    """Fast constructor for op results: ``data`` is already a well-formed ndarray."""
    t = Tensor.__new__(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = requires_grad
    t._ctx = None
    t._hooks = None
    t._retains_grad = False
    return t


def _as_array(data, dtype):
    """Python floats/ints (and lists of them) -> float32; numpy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.array(data)
    array = np.array(data)
    if array.dtype.kind in "iuf":  # Python numbers: float32 by default, as in PyTorch
        array = array.astype(np.float32)
    return array


class RemovableHandle:
    """Returned by ``register_hook``; ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks):
        self.hooks, self.id = hooks, next(modes.handle_ids)

    def remove(self):
        self.hooks.pop(self.id, None)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes: ``data`` (np.ndarray, may be reassigned), ``grad`` (np.ndarray or None; a Tensor
    after ``backward(create_graph=True)``), ``requires_grad``; ``_ctx`` is the graph node that
    produced it (None for leaves).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._ctx = None
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The graph node (Context) that produced this tensor; ``grad_fn.fn`` is the op class."""
        return self._ctx

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.fn.__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self):
        return bool(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    __hash__ = object.__hash__  # == is elementwise, identity is the hash

    # ----------------------------------------------------------------- autograd
    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients; got dtype {self.dtype}")
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; use detach()")
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Fill ``.grad`` of every leaf this tensor depends on (d self / d leaf, times ``grad``).

        ``grad`` defaults to 1 and may be omitted only for one-element tensors. The graph's saved
        arrays are freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        """
        from .autograd.engine import run_backward
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad)")
        run_backward([self], [_root_grad(self, grad, create_graph)],
                     retain_graph=create_graph if retain_graph is None else retain_graph,
                     create_graph=create_graph)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.is_leaf:
            self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return
        replaces the gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def detach(self):
        """A new leaf sharing this tensor's memory, cut off from the graph.

        Its ``.data`` is a new view object: the engine recognises saved inputs by array identity
        (``Context.differentiable``), so ``x * x.detach()`` must not look like ``x * x``."""
        return _wrap(self.data.view(), False)

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return elementwise.Add.apply(self, other)

    def __radd__(self, other):
        return elementwise.Add.apply(other, self)

    def __sub__(self, other):
        return elementwise.Sub.apply(self, other)

    def __rsub__(self, other):
        return elementwise.Sub.apply(other, self)

    def __mul__(self, other):
        return elementwise.Mul.apply(self, other)

    def __rmul__(self, other):
        return elementwise.Mul.apply(other, self)

    def __truediv__(self, other):
        return elementwise.Div.apply(self, other)

    def __rtruediv__(self, other):
        return elementwise.Div.apply(other, self)

    def __neg__(self):
        return elementwise.Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number):
            return elementwise.Pow.apply(self, p=exponent)
        return (self.log() * exponent).exp()  # x ** t = exp(t log x), for x > 0

    def __rpow__(self, base):
        # b ** t = exp(t log b), for b > 0; a Python number's log stays a Python float, so the
        # result keeps this tensor's dtype (np.log(2.0) is a float64 scalar: float32 -> float64)
        log_base = math.log(base) if isinstance(base, (int, float)) else np.log(base)
        return (self * log_base).exp()

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # comparisons give plain boolean tensors: no gradient flows through them
    def __eq__(self, other):
        return _wrap(np.asarray(self.data == _data(other)), False)

    def __ne__(self, other):
        return _wrap(np.asarray(self.data != _data(other)), False)

    def __lt__(self, other):
        return _wrap(np.asarray(self.data < _data(other)), False)

    def __le__(self, other):
        return _wrap(np.asarray(self.data <= _data(other)), False)

    def __gt__(self, other):
        return _wrap(np.asarray(self.data > _data(other)), False)

    def __ge__(self, other):
        return _wrap(np.asarray(self.data >= _data(other)), False)

    # ----------------------------------------------------------------- math
    def exp(self):
        return elementwise.Exp.apply(self)

    def log(self):
        return elementwise.Log.apply(self)

    def sqrt(self):
        return elementwise.Sqrt.apply(self)

    def relu(self):
        return elementwise.Rectify.apply(self)

    def sum(self, axis=None, keepdims=False):
        return reduce.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return reduce.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return reduce.Max.apply(self, axis=axis, keepdims=keepdims)

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return shape_ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return shape_ops.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return shape_ops.Transpose.apply(self, axes=None)

    def swapaxes(self, axis1, axis2):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return shape_ops.Transpose.apply(self, axes=tuple(axes))

    def broadcast_to(self, shape):
        return shape_ops.BroadcastTo.apply(self, shape=tuple(shape))

    def __getitem__(self, index):
        return shape_ops.GetItem.apply(self, index=_index_data(index))


def matmul(a, b):
    """a @ b with numpy's rules for 1-D operands (promoted to a matrix, then squeezed).

    (n, k) @ (k, m) -> (n, m); (k,) @ (k, m) -> (m,); (n, k) @ (k,) -> (n,); batch axes broadcast.
    """
    a = a if isinstance(a, Tensor) else np.asarray(a)
    b = b if isinstance(b, Tensor) else np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one axis; got shapes {a.shape} and {b.shape}")
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    if a_vector:
        a = a.reshape(1, -1)       # (k,) -> (1, k)
    if b_vector:
        b = b.reshape(-1, 1)       # (k,) -> (k, 1)
    y = linalg.MatMul.apply(a, b)
    if a_vector and b_vector:
        return y.reshape(())
    if a_vector:
        return y.reshape(y.shape[:-2] + y.shape[-1:])
    if b_vector:
        return y.reshape(y.shape[:-1])
    return y


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _index_data(index):
    """Tensors used as indices become their arrays (one level of tuple)."""
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def _root_grad(root, grad, create_graph):
    """The gradient that seeds backward: ones for a one-element root, else ``grad`` checked."""
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for one-element tensors; this "
                               f"tensor has shape {root.shape}: pass backward(grad) of that shape")
        grad = np.ones_like(root.data)
    elif isinstance(grad, Tensor):
        grad = grad if create_graph else grad.data
    else:
        grad = np.array(grad, dtype=root.dtype)  # a copy: .grad must not alias the caller's array
    if tuple(grad.shape) != root.shape:
        raise ValueError(f"backward: grad has shape {tuple(grad.shape)} but the tensor has shape {root.shape}")
    if create_graph and not isinstance(grad, Tensor):
        grad = _wrap(grad, False)
    return grad


def tensor(data, requires_grad=False, dtype=None):
    """Make a leaf Tensor. Python numbers become float32; numpy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# The ops import Function, which imports Tensor from this module: import them after the class.
from .ops import elementwise, linalg, reduce  # noqa: E402
from .ops import shape as shape_ops  # noqa: E402
