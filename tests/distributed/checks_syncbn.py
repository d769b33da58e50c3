"""Checks of minigrad/nn/syncbatchnorm.py run on every rank by worker.py: SyncBatchNorm's
statistics are the global batch's, its gradient matches finite differences of the loss summed
over ranks, and data-parallel training with it equals one process on the concatenated batch."""
import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel as DDP
from minigrad.nn.syncbatchnorm import sync_batch_norm_composed

from .checks_collectives import expect_error, rank_rng
from .checks_parallel import flat, same_on_every_rank

F64 = np.float64


def check_statistics_of_the_global_batch():
    """Unequal batches (N_r = r + 1, L = 2): μ, biased σ² and the running statistics are those
    of the concatenated batch, with the global n in the unbiased factor, the same on every rank."""
    r = dist.get_rank()
    x = rank_rng(6).standard_normal((r + 1, 3, 2)) * 3 + 1                  # (N_r, C, L)
    everyone = np.concatenate(dist.all_gather(x))                           # (Σ N_r, C, L)
    layer = nn.SyncBatchNorm(3, momentum=0.5, dtype=F64)
    y = layer(mg.tensor(x))
    mean, var = everyone.mean(axis=(0, 2)), everyone.var(axis=(0, 2))
    n = everyone.shape[0] * 2
    np.testing.assert_allclose(y.data, (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.running_mean, 0.5 * mean, rtol=1e-13)
    np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * var * n / (n - 1), rtol=1e-13)
    assert same_on_every_rank(np.concatenate([layer.running_mean, layer.running_var]))
    with mg.eval_mode():
        np.testing.assert_allclose(layer(mg.tensor(x)).data, (x - layer.running_mean[:, None])
                                   / np.sqrt(layer.running_var[:, None] + 1e-5), rtol=1e-13)
    one = nn.SyncBatchNorm(3, dtype=F64)     # one value per channel on each rank trains when P > 1
    one(mg.tensor(x[:1, :, :1]))
    expect_error(ValueError, "got 1 over all ranks", one, mg.tensor(x[:1, :, :1] if r == 0 else x[:0, :, :1]))


def check_gradient_against_finite_differences():
    """L = Σ_r Σ g_r·y_r with a random upstream g_r per rank and unequal batches. Every rank
    perturbs in lockstep: one coordinate of one rank's x, or the shared γ, β on all ranks."""
    P, r, rng = dist.get_world_size(), dist.get_rank(), rank_rng(7)
    x = mg.tensor(rng.standard_normal((r + 2, 3, 2)), requires_grad=True)  # (N_r, C, L)
    shared = np.random.default_rng(8)                                        # the same on every rank
    w = mg.tensor(shared.uniform(0.5, 2, 3), requires_grad=True)
    b = mg.tensor(shared.standard_normal(3), requires_grad=True)
    g = rng.standard_normal(x.shape)

    def loss():                          # Σ over ranks, the same number on every rank
        y = sync_batch_norm_composed(x, w, b)[0]
        return float(dist.all_reduce(np.array((y.data * g).sum())))

    (sync_batch_norm_composed(x, w, b)[0] * g).sum().backward()
    analytic = {"x": x.grad, "w": dist.all_reduce(w.grad), "b": dist.all_reduce(b.grad)}  # γ, β: Σ_r
    h, worst = 1e-6, 0.0
    sizes = [int(s) for s in dist.all_gather(np.array(x.size))]
    for owner in range(P):
        for i in range(sizes[owner]):
            numeric = central_difference(loss, x.data.reshape(-1), i, h, mine=owner == r)
            if owner == r:
                worst = max(worst, abs(numeric - analytic["x"].reshape(-1)[i]))
    for name, t in (("w", w), ("b", b)):
        for i in range(3):
            numeric = central_difference(loss, t.data, i, h, mine=True)
            worst = max(worst, abs(numeric - analytic[name][i]))
    worst = float(dist.all_reduce(np.array(worst), "max"))
    assert worst < 1e-7, worst
    return {"max_abs_error": worst}


def central_difference(loss, array, i, h, mine):
    """(L(a_i + h) - L(a_i - h)) / 2h, changing ``array`` only where ``mine``; every rank calls."""
    original = array[i] if mine else None
    if mine:
        array[i] = original + h
    plus = loss()
    if mine:
        array[i] = original - h
    minus = loss()
    if mine:
        array[i] = original
    return (plus - minus) / (2 * h)


# --------------------------------------------------------------------------- invariance
def cnn(seed):
    """Conv1d -> BatchNorm1d (N, C, L) -> ReLU -> Flatten -> Linear -> BatchNorm1d (N, C) ->
    ReLU -> Linear, float64: both kinds of batch-norm input."""
    mg.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, dtype=F64), nn.BatchNorm1d(4, dtype=F64), nn.ReLU(),
                         nn.Flatten(), nn.Linear(24, 5, dtype=F64), nn.BatchNorm1d(5, dtype=F64), nn.ReLU(),
                         nn.Linear(5, 3, dtype=F64))


def state(model):
    return flat(list(model.state_dict().values()))


def batches(sizes, steps=6):
    """The same global batches on every rank: (X (N, 2, 6), y (N,)) per step, N = Σ sizes."""
    rng = np.random.default_rng(9)
    n = sum(sizes)
    return [(rng.standard_normal((n, 2, 6)), rng.integers(0, 3, n)) for _ in range(steps)]


def train_one_process(data):
    """The reference: one process, plain batch norm, the mean loss of each global batch."""
    model = cnn(0)
    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for X, y in data:
        opt.zero_grad()
        F.cross_entropy(model(mg.tensor(X)), y).backward()
        opt.step()
    return model


def train_data_parallel(data, sizes, sync):
    """Rank r trains on its slice of each global batch. The loss rule for unequal batches:
    loss_r = Σ_{i on r} ℓ_i · P / N, so that DDP's mean over ranks, (1/P) Σ_r ∇loss_r, is the
    gradient of the global mean loss (1/N) Σ_i ℓ_i. Equal batches: loss_r is r's mean loss."""
    P, r = dist.get_world_size(), dist.get_rank()
    model = cnn(0)
    if sync:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DDP(model)
    opt = mg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    start, n = sum(sizes[:r]), sum(sizes)
    identical = True
    for X, y in data:
        opt.zero_grad()
        part = slice(start, start + sizes[r])
        loss = F.cross_entropy(ddp(mg.tensor(X[part])), y[part], reduction="sum") * (P / n)
        loss.backward()
        opt.step()
        params = flat(p.data for p in model.parameters())
        identical &= same_on_every_rank(state(model) if sync else params)   # plain BN: buffers differ
    return model, identical


def check_invariance_to_the_number_of_ranks():
    P = dist.get_world_size()
    numbers = {}
    for label, sizes in (("equal", [4] * P), ("unequal", [3, 6, 2][:P])):
        data = batches(sizes)
        reference = train_one_process(data)
        for sync in (True, False):
            model, identical = train_data_parallel(data, sizes, sync)
            assert identical, f"{label} sync={sync}: a replica differs from rank 0's"
            for part, values in (("parameters", lambda m: flat(p.data for p in m.parameters())),
                                 ("buffers", lambda m: flat(m.buffers()))):
                error = float(np.abs(values(model) - values(reference)).max())
                numbers[f"{'sync' if sync else 'plain'} {label} {part}"] = error
                if sync:
                    assert error < 1e-10, (label, part, error)
                else:
                    assert error > 1e-4, (label, part, error)  # per-replica statistics: another model
    return numbers


CHECKS = [check_statistics_of_the_global_batch, check_gradient_against_finite_differences,
          check_invariance_to_the_number_of_ranks]
