"""Checks of minigrad/nn/parallel.py (DistributedDataParallel) run on every rank by worker.py."""
import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad import nn
from minigrad.nn.parallel import DistributedDataParallel as DDP

from .checks_collectives import expect_error, rank_rng, recorded_calls


def mlp(seed, hidden=6, extra=False):
    """Linear(4, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, 3), float64, seeded."""
    mg.manual_seed(seed)
    layers = [nn.Linear(4, hidden, dtype=np.float64), nn.BatchNorm1d(hidden, dtype=np.float64), nn.ReLU(),
              nn.Linear(hidden, 3, dtype=np.float64)]
    if extra:
        layers.append(nn.Linear(3, 3, dtype=np.float64))
    return nn.Sequential(*layers)


def flat(arrays):
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in arrays])


def same_on_every_rank(array):
    """True if ``array`` has bitwise the same bytes on every rank."""
    everyone = dist.all_gather(np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8))
    return all(np.array_equal(a, everyone[0]) for a in everyone)


def local_grads(model, x, y):
    """Gradients of this rank's mean loss, computed on a plain copy without any collective."""
    model.zero_grad()
    nn.functional.cross_entropy(model(mg.tensor(x)), y).backward()
    return [p.grad.copy() for p in model.parameters()]


def check_refuses_models_that_differ():
    P, r = dist.get_world_size(), dist.get_rank()
    message = expect_error(ValueError, "rank 1 differs from rank 0's: entry 0 is parameter '0.weight' (6, 4) "
                           "float64 on rank 0 but parameter '0.weight' (7, 4) float64 on rank 1",
                           DDP, mlp(0, hidden=7 if r == 1 else 6))
    expect_error(ValueError, f"entry 6 is buffer '1.running_mean' (6,) float64 on rank 0 but parameter "
                 f"'4.weight' (3, 3) float64 on rank {P - 1}", DDP, mlp(0, extra=r == P - 1))
    layers = [nn.Linear(2, 2)] + [nn.Linear(2, 2)] * (r == P - 1)     # one list a prefix of another
    extra = expect_error(ValueError, f"rank 0 has 2 parameters and buffers, rank {P - 1} has 4; the "
                         f"first one only rank {P - 1} has is parameter '1.weight' (2, 2) float32",
                         DDP, nn.Sequential(*layers))
    frozen = mlp(0)
    if r == 1:
        frozen[0].bias.requires_grad = False
    expect_error(ValueError, "(requires_grad=False) on rank 1", DDP, frozen)
    return {"shape_message": message, "count_message": extra}


def check_broadcast_at_construction_and_state_dict():
    model = mlp(seed=dist.get_rank())                 # different weights on every rank
    model[1].running_mean[...] = dist.get_rank()
    reference = mlp(seed=0)
    ddp = DDP(model)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    np.testing.assert_array_equal(model[1].running_mean, 0.0)
    state = ddp.state_dict()
    assert list(state) == ["module." + k for k in model.state_dict()]
    ddp.module.load_state_dict(mlp(seed=5).state_dict())   # a plain model's state_dict
    np.testing.assert_array_equal(model[0].weight.data, mlp(seed=5)[0].weight.data)
    ddp.load_state_dict(state)
    np.testing.assert_array_equal(model[0].weight.data, reference[0].weight.data)
    stale = mlp(seed=dist.get_rank())                 # a graph recorded before the broadcast
    loss = stale(mg.tensor(np.ones((4, 4)))).sum()
    DDP(stale)                                        # overwrites the weights it saved, in place
    expect_error(RuntimeError, "modified by an in-place operation", loss.backward)


def check_mean_gradient_in_buckets():
    """After backward every .grad is the mean over ranks of the local gradients, bitwise equal
    on every rank; the default cap sends one bucket, a tiny cap one per parameter."""
    rng = rank_rng(3)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    expected = [np.mean(dist.all_gather(g[None]), axis=0)[0] for g in local_grads(mlp(0), x, y)]
    sums = []
    original = dist._sum
    dist._sum = lambda a: sums.append(a.size) or original(a)
    try:
        for cap, buckets in ((25, 1), (1e-6, 6)):
            model = mlp(0)
            ddp = DDP(model, bucket_cap_mb=cap)
            assert len(ddp._buckets) == buckets
            sums.clear()
            nn.functional.cross_entropy(ddp(mg.tensor(x)), y).backward()
            assert len(sums) == buckets and sum(sums) == sum(p.size for p in model.parameters())
            for p, e in zip(model.parameters(), expected):
                np.testing.assert_allclose(p.grad, e, rtol=1e-13, atol=1e-15)
                assert same_on_every_rank(p.grad)
    finally:
        dist._sum = original
    assert DDP(mlp(0), bucket_cap_mb=1e-6)._buckets[0] == [5]      # the last parameter first


def check_no_sync_accumulates_then_averages():
    rng = rank_rng(4)
    batches = [(rng.standard_normal((4, 4)), rng.integers(0, 3, 4)) for _ in range(3)]
    plain = mlp(0)
    total = [sum(gs) for gs in zip(*(local_grads(plain, x, y) for x, y in batches))]
    expected = [np.mean(dist.all_gather(g[None]), axis=0)[0] for g in total]
    model = mlp(0)
    ddp = DDP(model, broadcast_buffers=False)
    for i, (x, y) in enumerate(batches):
        if i < 2:
            with ddp.no_sync():
                nn.functional.cross_entropy(ddp(mg.tensor(x)), y).backward()
            assert not same_on_every_rank(model[3].weight.grad)     # local only
        else:
            nn.functional.cross_entropy(ddp(mg.tensor(x)), y).backward()
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_allclose(p.grad, e, rtol=1e-12, atol=1e-15)


class WithSpare(nn.Module):
    """An MLP and a spare layer its forward never uses."""

    def __init__(self):
        super().__init__()
        self.body, self.spare = mlp(0), nn.Linear(3, 3, dtype=np.float64)

    def forward(self, x):
        return self.body(x)


def check_unused_parameter_is_named_at_next_forward():
    x = mg.tensor(rank_rng(5).standard_normal((4, 4)))
    for cap in (25, 1e-6):                                # one bucket; one per parameter
        ddp = DDP(WithSpare(), bucket_cap_mb=cap)
        ddp(x)                                            # a forward without backward is fine
        (ddp(x) ** 2).sum().backward()
        message = expect_error(RuntimeError, "Expected to have finished reduction", ddp, x)
        assert "['spare.weight', 'spare.bias']" in message, message
    ddp = DDP(mlp(0))
    loss = (ddp(x) ** 2).sum()
    loss.backward(retain_graph=True)
    expect_error(RuntimeError, "got a gradient twice", loss.backward)


def check_broadcast_buffers_before_forward():
    model = mlp(0)
    ddp = DDP(model)
    model[1].running_var[...] = 1.0 + dist.get_rank()
    model[1].num_batches_tracked[...] = 7 + dist.get_rank()
    with mg.eval_mode():
        calls = recorded_calls(ddp, mg.tensor(np.ones((2, 4))))
    assert calls == ["Bcast"]                                          # float64 and int64, one message
    np.testing.assert_array_equal(model[1].running_var, 1.0)            # rank 0's
    assert model[1].num_batches_tracked == 7
    quiet = DDP(mlp(0), broadcast_buffers=False)
    quiet.module[1].running_var[...] = 1.0 + dist.get_rank()
    with mg.eval_mode():
        quiet(mg.tensor(np.ones((2, 4))))
    np.testing.assert_array_equal(quiet.module[1].running_var, 1.0 + dist.get_rank())


CHECKS = [check_refuses_models_that_differ, check_broadcast_at_construction_and_state_dict,
          check_mean_gradient_in_buckets, check_no_sync_accumulates_then_averages,
          check_unused_parameter_is_named_at_next_forward, check_broadcast_buffers_before_forward]
