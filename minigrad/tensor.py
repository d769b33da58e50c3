"""Tensor: a numpy array plus what autograd needs (grad, requires_grad, the node that made it).

Every operator and method below calls one op explicitly (``Add.apply(self, other)``), so
grep finds each definition. Tensor itself computes nothing: ops live in ``minigrad/ops``, the
graph node in ``autograd/function.py``, the backward pass in ``autograd/engine.py``.
In-place updates (``+= -= *= /=``, ``t[i] = v``) change ``.data`` and bump the tensor's version
(``_bump_version``); ``Function.apply`` notes the versions of an op's inputs when it saves
something, and backward refuses a saved tensor that changed since (``function.check_saved``).
"""
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
    t._post_accumulate_hooks = None
    t._retains_grad = False
    t._version = [0]   # a cell, so that views of one array (detach) can share one counter
    t._no_grad_view = False
    return t


def _as_array(data, dtype, what="tensor"):
    """A new array of ``data``: Python floats/ints (and lists of them) -> float32; numpy arrays
    keep their dtype. Anything that is not numbers (strings, None, objects) is refused with a
    TypeError naming ``what`` (the constructor, or the op given a list as an operand)."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        array = np.array(data, dtype=dtype)
    elif isinstance(data, (np.ndarray, np.generic)):
        array = np.array(data)
    else:
        array = np.array(data)
        if array.dtype.kind in "iuf":  # Python numbers: float32 by default, as in PyTorch
            array = array.astype(np.float32)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{what}: expected numbers (a number, nested lists of numbers or a numeric "
                        f"array), got {type(data).__name__} {data!r:.60} (dtype {array.dtype})")
    return array


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes: ``data`` (np.ndarray, may be reassigned), ``grad`` (np.ndarray or None; a Tensor
    after ``backward(create_graph=True)``), ``requires_grad``; ``_ctx`` is the graph node that
    produced it (None for leaves).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "_post_accumulate_hooks",
                 "_retains_grad", "_version", "_no_grad_view", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._ctx = None
        self._hooks = None
        self._post_accumulate_hooks = None
        self._retains_grad = False
        self._version = [0]
        self._no_grad_view = False   # a view made under no_grad of a tensor that requires grad
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
        return bool(self.data)   # numpy's rule: one element, else ValueError (ambiguous)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    __hash__ = object.__hash__  # == is elementwise, identity is the hash

    # ----------------------------------------------------------------- autograd
    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            complex_note = (": minigrad differentiates floating-point (real) tensors only (complex data "
                            "can still be used without grad)") if self.data.dtype.kind == "c" else ""
            raise TypeError(f"only floating-point tensors can require gradients; got dtype "
                            f"{self.dtype}{complex_note}")
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; use detach()")
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Fill ``.grad`` of every leaf this tensor depends on (d self / d leaf, times ``grad``).

        ``grad`` defaults to 1 and may be omitted only for one-element tensors. The graph's saved
        arrays are freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad)")
        engine.run_backward([self], [_root_grad(self, grad, create_graph)],
                            retain_graph=create_graph if retain_graph is None else retain_graph,
                            create_graph=create_graph)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.is_leaf:
            self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return (an
        array of the gradient's shape) replaces the gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        return hooks.add_hook(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after backward has accumulated this leaf's ``.grad`` (PyTorch's
        name and semantics: e.g. to all-reduce or step a parameter as soon as its gradient is
        ready). Leaves that require grad only; the hook returns None. Not called by ``mg.grad``,
        which accumulates nothing. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if not self.is_leaf:
            raise RuntimeError(f"post accumulate grad hooks cannot be registered on non-leaf tensors "
                               f"(this one was made by {self._ctx.fn.__name__}); use register_hook")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = {}
        return hooks.add_hook(self._post_accumulate_hooks, hook)

    def detach(self):
        """A new leaf sharing this tensor's memory (and its version counter), cut off from the graph.

        Its ``.data`` is a new view object: the engine recognises saved inputs by array identity
        (``Context.differentiable``), so ``x * x.detach()`` must not look like ``x * x``."""
        t = _wrap(self.data.view(), False)
        t._version = self._version          # an in-place update of either is one of both
        return t

    def numpy(self):
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars; this "
                             f"tensor has shape {self.shape}")
        return self.data.item()

    def _bump_version(self):
        """Record an in-place change of ``data``: backward refuses tensors saved at an older version."""
        self._version[0] += 1

    # ----------------------------------------------------------------- in place
    # PyTorch's rules: in place on .data, bumping the version counter (backward refuses a tensor
    # an op saved at an older version). Allowed on tensors that need no grad, and on any tensor
    # under no_grad (an optimizer's update). While recording, a leaf that requires grad is refused
    # (as in PyTorch), and so is a tensor inside a graph: minigrad does not record in-place ops.
    def __iadd__(self, other):
        return self._in_place(np.add, other, "+=")

    def __isub__(self, other):
        return self._in_place(np.subtract, other, "-=")

    def __imul__(self, other):
        return self._in_place(np.multiply, other, "*=")

    def __itruediv__(self, other):
        return self._in_place(np.true_divide, other, "/=")

    def _in_place(self, ufunc, other, what):
        self._check_in_place(other, what)
        ufunc(self.data, _data(other), out=self.data)
        self._bump_version()
        return self

    def __setitem__(self, index, value):
        self._check_in_place(value, "item assignment")
        self.data[_index_data(index)] = _data(value)
        self._bump_version()

    def _check_in_place(self, other, what):
        """Refuse, before touching anything, an in-place update that would need recording."""
        if not modes.local.grad_enabled:
            return
        if self._no_grad_view:
            raise RuntimeError(f"in-place {what} on a view that was created in no_grad mode of a tensor "
                               f"that requires grad, with grad mode enabled: this is ambiguous, as in "
                               f"PyTorch. Make the view and change it both inside the no_grad block "
                               f"(not recorded) or both outside it")
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(f"a leaf Tensor that requires grad is being used in an in-place "
                               f"operation ({what}); update it under `with mg.no_grad():`, as an "
                               f"optimizer does")
        if self.requires_grad:
            raise RuntimeError(f"in-place {what} on a tensor inside a graph (made by "
                               f"{self._ctx.fn.__name__}): minigrad does not record in-place ops; "
                               f"write `t = t + ...` instead")
        if isinstance(other, Tensor) and other.requires_grad:
            raise RuntimeError(f"in-place {what} with an operand that requires grad: minigrad does "
                               f"not record in-place ops; write `t = t + other` instead")

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
        return elementwise.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return elementwise.Pow.apply(base, self)

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
    A list operand is the array ``mg.tensor`` would make of it.
    """
    a = a if isinstance(a, (Tensor, np.ndarray)) else _as_array(a, None, "matmul")
    b = b if isinstance(b, (Tensor, np.ndarray)) else _as_array(b, None, "matmul")
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
    """Tensors used as indices, also inside a tuple or a list, become their arrays (not copied:
    ``Function.apply`` copies what a recorded op keeps)."""
    if isinstance(index, (tuple, list)):
        return type(index)(_index_data(i) for i in index)
    return _data(index)


def _root_grad(root, grad, create_graph):
    """The gradient that seeds backward: ones for a one-element root, else ``grad`` checked."""
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for one-element tensors; this "
                               f"tensor has shape {root.shape}: pass backward(grad) of that shape")
        grad = np.ones(root.data.shape, dtype=root.data.dtype)   # ones_like is a Python wrapper
    elif isinstance(grad, Tensor) and create_graph:
        pass                                     # part of the graph being recorded
    else:
        grad = np.asarray(_data(grad), dtype=root.dtype)  # not copied: run_backward copies it
        #                                                 only if it would become a .grad
    if tuple(grad.shape) != root.shape:
        raise ValueError(f"backward: grad has shape {tuple(grad.shape)} but the tensor has shape {root.shape}")
    if create_graph and not isinstance(grad, Tensor):
        grad = _wrap(grad.copy(), False)          # it may become a .grad: never the caller's array
    return grad


def tensor(data, requires_grad=False, dtype=None):
    """Make a leaf Tensor. Python numbers become float32; numpy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# The ops import Function, and the engine imports Tensor, from this module: import them after the class.
from .autograd import engine, hooks  # noqa: E402
from .ops import elementwise, linalg, reduce  # noqa: E402
from .ops import shape as shape_ops  # noqa: E402
