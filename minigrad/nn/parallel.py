"""DistributedDataParallel: one model replicated on every rank, each rank a share of the batch.

Invariant: after a backward through this wrapper's forward, every parameter's ``.grad`` is
the mean over ranks of the ranks' gradients, bitwise the same on every rank, so identical
optimizer steps keep the replicas bitwise identical. Gradients travel flattened in buckets
(reverse parameter order, capped in size), a handful of collectives per step, started from
each parameter's post-accumulate-grad hook as soon as its bucket is complete.
"""
import contextlib
import functools
import math
import numbers

import numpy as np

from .. import distributed, modes
from .module import Module


def _describe(entry):
    kind, name, shape, dtype, requires_grad = entry
    frozen = kind == "parameter" and not requires_grad
    return f"{kind} '{name}' {shape} {dtype}" + (" (requires_grad=False)" if frozen else "")


def first_difference(mine, theirs):
    """How two ranks' lists of (kind, name, shape, dtype, requires_grad) first differ, or None."""
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if a != b:
            return f"entry {i} is {_describe(a)} on rank 0 but {_describe(b)} on rank {{rank}}"
    if len(mine) != len(theirs):
        longer, n = (mine, "0") if len(mine) > len(theirs) else (theirs, "{rank}")
        return (f"rank 0 has {len(mine)} parameters and buffers, rank {{rank}} has {len(theirs)}; "
                f"the first one only rank {n} has is {_describe(longer[min(len(mine), len(theirs))])}")
    return None


def broadcast_coalesced(arrays):
    """Overwrite every array (contiguous) in place with rank 0's values: one Bcast of all their
    bytes in one buffer, whatever their dtypes (their shapes and dtypes were checked to agree)."""
    flat = distributed._broadcast(np.concatenate([a.reshape(-1).view(np.uint8) for a in arrays]))
    offset = 0
    for a in arrays:                       # bytes back into each array: (nbytes,) -> a.shape
        np.copyto(a, flat[offset:offset + a.nbytes].view(a.dtype).reshape(a.shape))
        offset += a.nbytes


def make_buckets(params, cap_bytes):
    """Indices into ``params`` grouped into buckets: reverse order (backward produces the last
    layer's gradients first), one dtype per bucket, a new bucket once ``cap_bytes`` is reached."""
    buckets, filling = [], {}               # filling: dtype -> (bucket, its bytes so far)
    for i in reversed(range(len(params))):
        p = params[i]
        bucket, size = filling.get(p.dtype, (None, 0))
        if bucket is None or size + p.data.nbytes > cap_bytes:
            bucket, size = [], 0
            buckets.append(bucket)
        bucket.append(i)
        filling[p.dtype] = (bucket, size + p.data.nbytes)
    return buckets


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: ``ddp = DistributedDataParallel(model)``.

    Construction (a collective): checks that every rank built the same model (parameter and
    buffer names, shapes, dtypes, requires_grad) and raises on every rank, naming the first
    difference, if not; then copies rank 0's parameters and buffers to every rank.
    Forward: with ``broadcast_buffers`` (default, as in PyTorch), rank 0's buffers (running
    statistics) are first copied to every rank; then ``module(*inputs)`` runs. Every rank must
    call it (use ``ddp.module`` for work on one rank alone, such as evaluation on rank 0).
    Backward: each parameter's ``.grad`` becomes the MEAN over ranks, so with equal per-rank
    batches and a mean loss it is the gradient of the global batch's mean loss (for unequal
    batches weight the loss, see docs/distributed.md). Gradients travel flattened in buckets of
    at most ``bucket_cap_mb`` MiB (PyTorch's default, 25). Inside ``no_sync()`` gradients only
    accumulate locally; the next backward outside it averages the accumulated ``.grad``.
    A parameter that requires grad but got no gradient in that backward leaves its bucket
    unreduced: the next forward raises, naming it (PyTorch raises there too).
    ``state_dict`` keys carry the ``module.`` prefix, as PyTorch's; a plain model's state_dict
    loads through ``ddp.module.load_state_dict``.
    """

    def __init__(self, module, broadcast_buffers=True, bucket_cap_mb=25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if (isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, numbers.Real)
                or not 0 < bucket_cap_mb < math.inf):
            raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        distributed.init()
        named = list(module.named_parameters())
        entries = [("parameter", n, p.shape, str(p.dtype), p.requires_grad) for n, p in named]
        entries += [("buffer", n, b.shape, str(b.dtype), False) for n, b in module.named_buffers()]
        everyone = distributed._gather_objects(entries)
        for rank, theirs in enumerate(everyone[1:], 1):
            difference = first_difference(everyone[0], theirs)
            if difference:            # every rank sees every list: all raise the same error
                raise ValueError(f"DistributedDataParallel: the model on rank {rank} differs from "
                                 f"rank 0's: {difference.format(rank=rank)}. Every rank must build "
                                 f"the same model")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True        # PyTorch's name; False inside no_sync()
        if distributed.get_world_size() > 1:
            broadcast_coalesced([p.data for _, p in named] + list(module.buffers()))
            for _, p in named:
                p._bump_version()                     # changed in place
        self._names = [n for n, p in named if p.requires_grad]
        self._params = [p for _, p in named if p.requires_grad]
        self._buckets = make_buckets(self._params, bucket_cap_mb * 2 ** 20)
        self._bucket_of = {i: b for b, bucket in enumerate(self._buckets) for i in bucket}
        self._handles = [p.register_post_accumulate_grad_hook(functools.partial(self._grad_ready, i))
                         for i, p in enumerate(self._params)]
        self._expecting = False      # a forward that will be followed by a synced backward ran;
        # only then are the reduction's _ready, _missing and _next_bucket read: forward sets them

    def forward(self, *inputs, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers and distributed.get_world_size() > 1:
            broadcast_coalesced(list(self.module.buffers()))
        self._expecting = modes.is_grad_enabled() and self.require_backward_grad_sync
        self._ready = set()                                         # parameters whose gradient arrived
        self._missing = [len(bucket) for bucket in self._buckets]   # per bucket: still to arrive
        self._next_bucket = 0        # buckets are reduced in order, the same on every rank
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside skip the averaging of their backward: gradients accumulate locally
        (gradient accumulation); the first backward after the block averages the total."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _check_previous_reduction(self):
        if self._expecting and self._ready and self._next_bucket < len(self._buckets):
            unused = [n for i, n in enumerate(self._names) if i not in self._ready]
            raise RuntimeError(f"Expected to have finished reduction in the prior iteration before "
                               f"starting a new one: these parameters got no gradient in the last "
                               f"backward, so no gradient was averaged over ranks in their buckets: "
                               f"{unused}. Every parameter that requires grad must take part in the "
                               f"loss on every rank (or set requires_grad=False before wrapping)")

    def _grad_ready(self, index, param):
        """Post-accumulate-grad hook of parameter ``index``: count it, reduce full buckets."""
        if not self._expecting:
            return                               # no_sync(), no_grad forward, or not through us
        if index in self._ready:
            raise RuntimeError(f"DistributedDataParallel: parameter '{self._names[index]}' got a "
                               f"gradient twice after one forward (a second backward through the "
                               f"same graph); its gradient was already averaged over ranks. Run "
                               f"forward again, or backward the earlier ones inside no_sync()")
        if not isinstance(param.grad, np.ndarray):
            raise RuntimeError("DistributedDataParallel averages array gradients: backward with "
                               "create_graph=True is not supported")
        self._ready.add(index)
        self._missing[self._bucket_of[index]] -= 1
        while self._next_bucket < len(self._buckets) and self._missing[self._next_bucket] == 0:
            self._reduce_bucket(self._buckets[self._next_bucket])
            self._next_bucket += 1

    def _reduce_bucket(self, bucket):
        """Replace each gradient in the bucket by its mean over ranks: one flat buffer, one sum."""
        size = distributed.get_world_size()
        if size == 1:
            return
        params = [self._params[i] for i in bucket]
        total = distributed._sum(np.concatenate([p.grad.reshape(-1) for p in params]))
        total /= size                                  # the same bits on every rank, then / P
        offset = 0
        for p in params:                               # views of a fresh buffer, one per step
            p.grad = total[offset:offset + p.size].reshape(p.shape)
            offset += p.size
