"""Random chains of 2-6 ops, drawn by hypothesis from one table of (minigrad, torch) pairs:
elementwise (neg, square, exp, log, sqrt, relu), binary ops broadcasting against a second random
input (+ - * / **), reductions (sum, mean, max over a random axis, random keepdims), shape ops
(reshape, transpose, .T, swapaxes, broadcast_to, slicing, int and integer-array indexing), matmul.
Each chain is checked against central finite differences along a random upstream gradient (to
second order for the small ones) and, when torch is installed, against the same chain in torch.
"""
from itertools import permutations
from math import prod
from typing import Callable, NamedTuple, Optional

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg

MAX_SIZE = 64     # entries per intermediate: finite differences cost two forward passes per input entry
MAX_DIMS = 4
MAX_VALUE = 1e3   # larger intermediates (exp of exp ...) would drown finite differences in rounding


class Step(NamedTuple):
    name: str                 # with its parameters, e.g. "sum(axis=-1, keepdims=True)"
    mg: Callable              # (t, *operand) -> minigrad Tensor
    torch: Callable           # (torch, t, *operand) -> torch.Tensor, the same math
    shape: tuple              # the step's output shape
    operand: Optional[tuple] = None   # (shape, kind, requires_grad) of the step's second input

    def __repr__(self):       # what hypothesis prints for a failing chain
        return f"{self.name} -> {self.shape}"


def same_in_both(name, f, shape, operand=None):
    """A step written with operators and methods that minigrad and torch share."""
    return Step(name, f, lambda torch, *args: f(*args), shape, operand)


def pick(draw, rng, options):
    """One of ``options``, drawn by hypothesis from a shuffled copy: hypothesis favours the first
    entry of a list (unshuffled, "neg" was every third step and half the chains had two steps)."""
    return draw(st.sampled_from([options[i] for i in rng.permutation(len(options))]))


# ------------------------------------------------------------------ elementwise, kept in domain
# log and sqrt see t² + 1 >= 1; relu sees ±(t² + 0.1), at least 0.1 away from its kink at 0
UNARY = {
    "neg": lambda t: -t,
    "square": lambda t: t ** 2,
    "exp": lambda t: t.exp(),
    "log": lambda t: (t * t + 1).log(),
    "sqrt": lambda t: (t * t + 1).sqrt(),
}


def unary(name):
    return lambda draw, rng, shape: same_in_both(name, UNARY[name], shape)


def relu(draw, rng, shape):
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)   # fixed: the entries relu zeroes
    return Step("relu(±(t² + 0.1))", lambda t: (sign * (t * t + 0.1)).relu(),
                lambda torch, t: (torch.from_numpy(sign) * (t * t + 0.1)).relu(), shape)


# ------------------------------------------------------------------ binary, broadcasting
# operand kinds: "normal" N(0, 1); "nonzero" ±U(0.5, 2), a safe divisor; "exponent" U(-1, 1)
BINARY = {
    "t + o": (lambda t, o: t + o, "normal"),
    "t - o": (lambda t, o: t - o, "normal"),
    "o - t": (lambda t, o: o - t, "normal"),
    "t * o": (lambda t, o: t * o, "normal"),
    "t / o": (lambda t, o: t / o, "nonzero"),
    "o / (t² + 1)": (lambda t, o: o / (t * t + 1), "normal"),      # the chain's value divides
    "(t² + 1) ** o": (lambda t, o: (t * t + 1) ** o, "exponent"),  # base > 0: d/do = y log base
}


@st.composite
def operand_shapes(draw, shape):
    """A shape that broadcasts with ``shape`` both ways (each axis its size or 1, a size-1 axis of
    ``shape`` grown, maybe a new leading axis), keeping the broadcast result within MAX_SIZE."""
    budget = MAX_SIZE // prod(shape)      # how many times broadcasting may enlarge the result
    other = []
    for n in shape:
        if n == 1 and budget >= 2:
            side = draw(st.integers(1, min(3, budget)))      # stretches t along this axis
            budget //= side
        else:
            side = draw(st.sampled_from([n, 1]))
        other.append(side)
    if len(shape) < MAX_DIMS and budget >= 2 and draw(st.booleans()):
        other.insert(0, draw(st.integers(2, min(3, budget))))
    return tuple(other[draw(st.integers(0, len(other))):])  # dropping leading axes still broadcasts


def binary(name):
    f, kind = BINARY[name]

    def build(draw, rng, shape):
        other, requires_grad = draw(operand_shapes(shape)), draw(st.booleans())
        return same_in_both(f"{name}, o: {other}", f, np.broadcast_shapes(shape, other),
                            (other, kind, requires_grad))
    return build


def matmul(draw, rng, shape):
    """t @ o, or o @ t: o a vector (contracted away) or a matrix, maybe with a batch axis."""
    left = len(shape) >= 2 and draw(st.booleans())            # o @ t contracts t's axis -2
    k = shape[-2] if left else shape[-1]
    if draw(st.booleans()):
        other = (k,)
    else:
        rest = prod(shape) // k                               # the output has rest · m entries
        m = draw(st.integers(1, max(1, min(3, MAX_SIZE // rest))))
        other = (m, k) if left else (k, m)
        if len(shape) <= 2 and MAX_SIZE // (rest * m) >= 2 and draw(st.booleans()):
            other = (draw(st.integers(2, min(3, MAX_SIZE // (rest * m)))),) + other   # batch axis
    out = (np.zeros(other) @ np.zeros(shape) if left else np.zeros(shape) @ np.zeros(other)).shape
    f = (lambda t, o: o @ t) if left else (lambda t, o: t @ o)
    return same_in_both(f"{'o @ t' if left else 't @ o'}, o: {other}", f, out,
                        (other, "normal", draw(st.booleans())))


# ------------------------------------------------------------------ reductions
@st.composite
def axes(draw, ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes; never the empty tuple
    (numpy reduces nothing over (), torch everything)."""
    tuples = st.lists(st.integers(-ndim, ndim - 1), min_size=1, unique_by=lambda a: a % ndim).map(tuple)
    return draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1), tuples))


def reduction(name):
    def build(draw, rng, shape):
        axis, keepdims = draw(axes(len(shape))), draw(st.booleans())
        dim = tuple(range(len(shape))) if axis is None else axis      # torch's spelling of "all"
        out = np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape
        return Step(f"{name}(axis={axis}, keepdims={keepdims})",
                    lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
                    lambda torch, t: getattr(torch, name)(t, dim=dim, keepdim=keepdims), out)
    return build


def maximum(draw, rng, shape):
    """max over distinct entries by construction: squash(t) = t / sqrt(t² + 1) lies in (-1, 1), and
    added offsets (distinct multiples of 3) decide each slice's maximum, at random positions, with
    a margin of 1. Subtracting the winning offset afterwards keeps the result in (-1, 1)."""
    axis, keepdims = draw(axes(len(shape))), draw(st.booleans())
    dim = tuple(range(len(shape))) if axis is None else axis
    offsets = -3.0 * rng.permutation(prod(shape)).reshape(shape)
    top = np.asarray(offsets.max(axis=axis, keepdims=keepdims))
    return Step(f"max(squash(t) + offsets, axis={axis}, keepdims={keepdims})",
                lambda t: (t / (t * t + 1).sqrt() + offsets).max(axis=axis, keepdims=keepdims) - top,
                lambda torch, t: torch.amax(t / (t * t + 1).sqrt() + torch.from_numpy(offsets),
                                            dim=dim, keepdim=keepdims) - torch.from_numpy(top),
                top.shape)


# ------------------------------------------------------------------ shape ops and indexing
def factorizations(n, dims):
    """Every tuple of ``dims`` positive ints whose product is n."""
    if dims == 0:
        return [()] if n == 1 else []
    return [(d,) + rest for d in range(1, n + 1) if n % d == 0 for rest in factorizations(n // d, dims - 1)]


def reshape(draw, rng, shape):
    new = draw(st.sampled_from(factorizations(prod(shape), draw(st.integers(1, 3)))))
    spelled = list(new)
    if draw(st.booleans()):
        spelled[draw(st.integers(0, len(new) - 1))] = -1              # reshape infers that axis
    return same_in_both(f"reshape{tuple(spelled)}", lambda t: t.reshape(*spelled), new)


def transpose(draw, rng, shape):
    perm = pick(draw, rng, list(permutations(range(len(shape))))[1:])   # any but the identity
    return Step(f"transpose{perm}", lambda t: t.transpose(*perm), lambda torch, t: t.permute(*perm),
                tuple(shape[a] for a in perm))


def reverse_axes(draw, rng, shape):
    reverse = tuple(range(len(shape)))[::-1]
    return Step("T", lambda t: t.T, lambda torch, t: t.permute(*reverse), shape[::-1])


def swapaxes(draw, rng, shape):
    a, b = draw(st.integers(0, len(shape) - 1)), draw(st.integers(-len(shape), len(shape) - 1))
    return Step(f"swapaxes({a}, {b})", lambda t: t.swapaxes(a, b), lambda torch, t: torch.swapaxes(t, a, b),
                np.zeros(shape).swapaxes(a, b).shape)


def broadcast_to(draw, rng, shape):
    """Grow size-1 axes, maybe add a leading axis: backward must sum them back down."""
    target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    if len(shape) < MAX_DIMS and draw(st.booleans()):
        target.insert(0, draw(st.integers(1, 3)))
    target = tuple(target)
    assume(prod(target) <= MAX_SIZE)
    return Step(f"broadcast_to{target}", lambda t: t.broadcast_to(target),
                lambda torch, t: t.expand(target), target)


def index_slice(draw, rng, shape):
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    start = draw(st.integers(-n, n - 1))                  # maybe negative; never an empty slice
    stop = draw(st.one_of(st.none(), st.integers(start % n + 1, n)))
    index = (slice(None),) * axis + (slice(start, stop, draw(st.integers(1, 2))),)
    return same_in_both(f"t[{index}]", lambda t: t[index], np.zeros(shape)[index].shape)


def index_int(draw, rng, shape):
    """t[..., i] with a plain int (the axis goes), or t[..., idx] with an integer array along a
    random axis, whose entries may repeat (their gradients must add up) and be negative."""
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    lead = (slice(None),) * axis
    if draw(st.booleans()):
        index = lead + (draw(st.integers(-n, n - 1)),)
        return same_in_both(f"t[{index}]", lambda t: t[index], np.zeros(shape)[index].shape)
    idx = rng.integers(-n, n, size=draw(st.integers(1, 4)))
    out = np.zeros(shape)[lead + (idx,)].shape
    assume(prod(out) <= MAX_SIZE)
    return Step(f"t[{lead + (idx.tolist(),)}]", lambda t: t[lead + (idx,)],
                lambda torch, t: t[lead + (torch.from_numpy(idx),)], out)


# ------------------------------------------------------------------ the table
ANY, NONEMPTY, MATRIX = (lambda shape: True), (lambda shape: len(shape) >= 1), (lambda shape: len(shape) >= 2)
OPS = {   # name: (applies to a shape?, builder(draw, rng, shape) -> Step)
    **{name: (ANY, unary(name)) for name in UNARY},
    "relu": (ANY, relu),
    **{name: (ANY, binary(name)) for name in BINARY},
    "matmul": (NONEMPTY, matmul),
    "sum": (NONEMPTY, reduction("sum")),
    "mean": (NONEMPTY, reduction("mean")),
    "max": (NONEMPTY, maximum),
    "reshape": (ANY, reshape),
    "transpose": (MATRIX, transpose),
    "T": (MATRIX, reverse_axes),
    "swapaxes": (MATRIX, swapaxes),
    "broadcast_to": (ANY, broadcast_to),
    "slice": (NONEMPTY, index_slice),
    "index": (NONEMPTY, index_int),
}


@st.composite
def chains(draw):
    """(input shape, steps): 2-6 steps, each drawn among the ops that apply to the current shape."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))   # shuffles, the steps' constants
    ndim = pick(draw, rng, [1, 2, 3])
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    steps, current = [], shape
    for _ in range(pick(draw, rng, [2, 3, 4, 5, 6])):
        name = pick(draw, rng, [name for name, (applies, _) in OPS.items() if applies(current)])
        steps.append(OPS[name][1](draw, rng, current))
        current = steps[-1].shape
    return shape, steps


def leaves(shape, steps, seed):
    """The chain's inputs, float64 from one seeded rng: x ~ N(0, 1), then each step's operand."""
    rng = np.random.default_rng(seed)
    made = [mg.tensor(rng.standard_normal(shape), requires_grad=True)]
    for step in steps:
        if step.operand:
            other, kind, requires_grad = step.operand
            if kind == "nonzero":
                data = rng.choice([-1.0, 1.0], other) * rng.uniform(0.5, 2.0, other)
            elif kind == "exponent":
                data = rng.uniform(-1.0, 1.0, other)
            else:
                data = rng.standard_normal(other)
            made.append(mg.tensor(data, requires_grad=requires_grad))
    return made


def run(steps, inputs, torch=None, check=None):
    """The chain applied to inputs[0], each binary step taking the next input as its operand;
    in minigrad, or in torch when given. ``check(t)`` sees every intermediate."""
    t, operands = inputs[0], iter(inputs[1:])
    for step in steps:
        args = (next(operands),) if step.operand else ()
        t = step.mg(t, *args) if torch is None else step.torch(torch, t, *args)
        assert tuple(t.shape) == step.shape, f"{step.name}: shape {tuple(t.shape)}, expected {step.shape}"
        if check:
            check(t)
    return t


def moderate(steps, inputs):
    """Every intermediate finite and at most MAX_VALUE in size."""
    sizes = []
    with mg.no_grad():
        run(steps, inputs, check=lambda t: sizes.append(np.abs(t.data).max(initial=0.0)))
    return bool(np.all(np.array(sizes) <= MAX_VALUE))   # NaN compares False too


def close(actual, expected, what):
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12 * scale, err_msg=what)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(chain=chains(), seed=st.integers(0, 2 ** 32 - 1), second_order=st.booleans())
def test_random_chain_matches_finite_differences(chain, seed, second_order):
    shape, steps = chain
    inputs = leaves(shape, steps, seed)
    assume(moderate(steps, inputs))

    def fn(*ts):
        return run(steps, ts)

    # check_dependence=False: a chain may legitimately not depend on an input (relu zeroes the
    # entries a later max picks); the comparison with the numeric zeros still holds
    assert mg.gradcheck(fn, inputs, seed=seed, check_dependence=False)
    small = sum(x.size for x in inputs) <= 24         # each FD entry runs a backward too
    if second_order and small:
        assert mg.gradgradcheck(fn, inputs, seed=seed)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(chain=chains(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_chain_matches_torch(chain, seed):
    torch = pytest.importorskip("torch")
    shape, steps = chain
    inputs = leaves(shape, steps, seed)
    assume(moderate(steps, inputs))
    y = run(steps, inputs)
    upstream = np.asarray(np.random.default_rng(seed).standard_normal(y.shape))   # never all ones
    y.backward(upstream)
    theirs = [torch.tensor(x.data, requires_grad=x.requires_grad) for x in inputs]
    y_torch = run(steps, theirs, torch)
    y_torch.backward(torch.from_numpy(upstream))
    chain_name = " -> ".join(step.name for step in steps)
    close(y.data, y_torch.detach().numpy(), f"forward of {chain_name}")
    for i, (x, x_torch) in enumerate(zip(inputs, theirs)):
        if x.requires_grad:
            close(x.grad, x_torch.grad.numpy(), f"gradient of input {i} of {chain_name}")
