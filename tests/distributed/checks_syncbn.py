"""Checks of SyncBatchNorm (minigrad/nn/batchnorm.py), composed and fused, run on every rank by
worker.py: statistics of the global batch, the two forms agreeing, gradients to first and second
order against finite differences of the loss summed over ranks, a mismatch between ranks refused,
data-parallel training equal to one process on the concatenated batches, and recompute_bn_stats."""
import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn.batchnorm import sync_batch_norm_composed, sync_batch_norm_fused
from minigrad.nn.parallel import DistributedDataParallel as DDP

from .checks_collectives import expect_error, rank_rng
from .checks_parallel import flat, same_on_every_rank

F64 = np.float64
FORMS = {"fused": sync_batch_norm_fused, "composed": sync_batch_norm_composed}


def check_statistics_of_the_global_batch():
    """Unequal batches (N_r = r + 1, L = 2): μ, biased σ² and the running statistics are those
    of the concatenated batch, with the global n in the unbiased factor, the same on every rank."""
    r = dist.get_rank()
    x = rank_rng(6).standard_normal((r + 1, 3, 2)) * 3 + 1                  # (N_r, C, L)
    everyone = np.concatenate(dist.all_gather(x))                           # (Σ N_r, C, L)
    mean, var = everyone.mean(axis=(0, 2)), everyone.var(axis=(0, 2))
    n = everyone.shape[0] * 2
    for fused in (True, False):
        layer = nn.SyncBatchNorm(3, momentum=0.5, fused=fused, dtype=F64)
        y = layer(mg.tensor(x))
        np.testing.assert_allclose(y.data, (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(layer.running_mean, 0.5 * mean, rtol=1e-13)
        np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * var * n / (n - 1), rtol=1e-13)
        assert same_on_every_rank(np.concatenate([layer.running_mean, layer.running_var]))
        with mg.eval_mode():
            np.testing.assert_allclose(layer(mg.tensor(x)).data, (x - layer.running_mean[:, None])
                                       / np.sqrt(layer.running_var[:, None] + 1e-5), rtol=1e-13)
        one = nn.SyncBatchNorm(3, fused=fused, dtype=F64)   # one value per channel on each rank
        one(mg.tensor(x[:1, :, :1]))                        # trains when P > 1
        expect_error(ValueError, "got 1 over all ranks", one, mg.tensor(x[:1, :, :1] if r == 0 else x[:0, :, :1]))
        assert one.num_batches_tracked == 1                 # the refused call changed nothing


def run_form(form, x, w, b, g):
    """(y, μ, σ², n, dx, dγ, dβ) of one SyncBN form on this rank's x, upstream g."""
    xs = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    y, mean, var, n = FORMS[form](*xs)
    (y * g).sum().backward()
    return [y.data, mean, var, np.array(n)] + [t.grad for t in xs]


def check_fused_and_composed_agree():
    """Unequal batches, (N_r, C, L) and (N_r, C, H, W): every output and gradient within 1e-12."""
    r, rng = dist.get_rank(), rank_rng(10)
    worst = 0.0
    for shape in ((r + 2, 4, 3), (r + 1, 2, 3, 2)):
        x = rng.standard_normal(shape) * 2 + 5
        w, b = np.random.default_rng(11).uniform(0.5, 2, shape[1]), np.random.default_rng(12).standard_normal(shape[1])
        g = rng.standard_normal(shape)
        fused, composed = run_form("fused", x, w, b, g), run_form("composed", x, w, b, g)
        for a, c in zip(fused, composed):
            assert a.shape == c.shape and a.dtype == c.dtype
            worst = max(worst, float(np.max(np.abs(a - c) / (1 + np.abs(c)))))
    worst = float(dist.all_reduce(np.array(worst), "max"))
    assert worst < 1e-12, worst
    return {"max_difference": worst}


def check_gradient_against_finite_differences():
    """L = Σ_r Σ g_r·y_r with a random upstream g_r per rank and unequal batches. Every rank
    perturbs in lockstep: one coordinate of one rank's x, or the shared γ, β on all ranks."""
    rng = rank_rng(7)
    x = rng.standard_normal((dist.get_rank() + 2, 3, 2))                  # (N_r, C, L)
    shared = np.random.default_rng(8)                                       # the same on every rank
    w, b = shared.uniform(0.5, 2, 3), shared.standard_normal(3)
    g = rng.standard_normal(x.shape)
    numbers = {}
    for form, fn in FORMS.items():
        def loss():                      # Σ over ranks, the same number on every rank
            return float(dist.all_reduce(np.array((fn(mg.tensor(x), mg.tensor(w), mg.tensor(b))[0].data * g).sum())))
        _, _, _, _, dx, dw, db = run_form(form, x, w, b, g)
        analytic = [dx, dist.all_reduce(dw), dist.all_reduce(db)]           # γ, β: Σ_r of the ranks'
        numbers[form] = worst_difference(loss, [x, w, b], analytic, h=1e-6)
        assert numbers[form] < 1e-7, (form, numbers[form])
    return numbers


def check_second_order_across_ranks():
    """create_graph: G = ∂L/∂(x, γ, β) recorded, then Z = Σ_r <h_r, G_r>; ∂Z against finite
    differences of Z, where Z itself comes from a first-order backward (collectives inside)."""
    rng = rank_rng(13)
    x = rng.standard_normal((dist.get_rank() + 2, 2, 2)) + 1                # (N_r, C, L)
    shared = np.random.default_rng(14)
    w, b = shared.uniform(0.5, 2, 2), shared.standard_normal(2)
    g, h = rng.standard_normal(x.shape), [rng.standard_normal(s) for s in (x.shape, (2,), (2,))]
    numbers = {}
    for form, fn in FORMS.items():
        def first(create_graph):
            xs = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
            grads = mg.grad((fn(*xs)[0] * g).sum(), xs, create_graph=create_graph)
            return xs, grads

        def z():
            return float(dist.all_reduce(np.array(sum((gr.data * hr).sum() for gr, hr in zip(first(False)[1], h)))))
        xs, grads = first(True)
        plain = first(False)[1]
        for recorded, gr in zip(grads, plain):                  # the recorded gradient is the gradient
            np.testing.assert_allclose(recorded.data, gr.data, rtol=1e-12, atol=1e-13)
        sum((gr * hr).sum() for gr, hr in zip(grads, h)).backward()
        grads = [np.zeros_like(t.data) if t.grad is None else t.grad for t in xs]   # Z does not depend on β
        analytic = [grads[0], dist.all_reduce(grads[1]), dist.all_reduce(grads[2])]
        numbers[form] = worst_difference(z, [x, w, b], analytic, h=1e-5)
        assert numbers[form] < 1e-6, (form, numbers[form])
    return numbers


def worst_difference(loss, arrays, analytic, h):
    """max |central difference - analytic| over every coordinate: arrays[0] is this rank's own
    (each rank's coordinates in turn, all ranks evaluating), the others shared (moved on all)."""
    P, r = dist.get_world_size(), dist.get_rank()
    sizes = [int(s) for s in dist.all_gather(np.array(arrays[0].size))]
    worst = 0.0
    for owner in range(P):
        for i in range(sizes[owner]):
            numeric = central_difference(loss, arrays[0].reshape(-1), i, h, mine=owner == r)
            if owner == r:
                worst = max(worst, abs(numeric - analytic[0].reshape(-1)[i]))
    for array, exact in zip(arrays[1:], analytic[1:]):
        for i in range(array.size):
            worst = max(worst, abs(central_difference(loss, array, i, h, mine=True) - exact[i]))
    return float(dist.all_reduce(np.array(worst), "max"))


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


def check_ranks_that_differ_are_refused():
    """A SyncBatchNorm that differs between ranks (form, channels, dtype) raises on every rank at
    its first training call, naming both, before any collective of its own runs; a layer that
    changes on every rank is checked again."""
    P, r = dist.get_world_size(), dist.get_rank()
    x = mg.tensor(np.ones((2, 3, 2)), requires_grad=True)
    layer = nn.SyncBatchNorm(3, fused=r != P - 1, dtype=F64)
    message = expect_error(ValueError, f"SyncBatchNorm: every rank must run the same layer; rank 0 has fused "
                           f"SyncBatchNorm(3) on float64 input, rank {P - 1} has composed SyncBatchNorm(3) on "
                           f"float64 input", layer, x)
    assert layer.num_batches_tracked == 0
    wide = nn.SyncBatchNorm(4 if r == 1 else 3, affine=False, track_running_stats=False)
    expect_error(ValueError, "rank 1 has fused SyncBatchNorm(4) on float32 input", wide,
                 mg.tensor(np.ones((2, 4 if r == 1 else 3), np.float32 if r else np.float64)))
    expect_error(ValueError, "rank 0 has fused SyncBatchNorm(3) on float64 input, rank 1 has fused "
                 "SyncBatchNorm(3) on float32 input", nn.SyncBatchNorm(3, affine=False, track_running_stats=False),
                 mg.tensor(np.ones((2, 3), np.float32 if r == 1 else np.float64)))
    same = nn.SyncBatchNorm(3, dtype=F64)
    same(x)
    same.fused = False                                 # on every rank: checked again, and fine
    same(x)
    assert same._agreed == (False, 3, np.dtype(F64))
    return {"message": message}


# --------------------------------------------------------------------------- invariance
def cnn(seed, fused=True):
    """Conv1d -> BatchNorm1d (N, C, L) -> ReLU -> Flatten -> Linear -> BatchNorm1d (N, C) ->
    ReLU -> Linear, float64: both kinds of batch-norm input."""
    mg.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, dtype=F64), nn.BatchNorm1d(4, fused=fused, dtype=F64),
                         nn.ReLU(), nn.Flatten(), nn.Linear(24, 5, dtype=F64),
                         nn.BatchNorm1d(5, fused=fused, dtype=F64), nn.ReLU(), nn.Linear(5, 3, dtype=F64))


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


def train_data_parallel(data, sizes, variant):
    """Rank r trains on its slice of each global batch. The loss rule for unequal batches:
    loss_r = Σ_{i on r} ℓ_i · P / N, so that DDP's mean over ranks, (1/P) Σ_r ∇loss_r, is the
    gradient of the global mean loss (1/N) Σ_i ℓ_i. Equal batches: loss_r is r's mean loss."""
    P, r = dist.get_world_size(), dist.get_rank()
    model = cnn(0, fused=variant != "sync composed")
    if variant != "plain":
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
        identical &= same_on_every_rank(params if variant == "plain" else state(model))   # plain BN: buffers differ
    return model, identical


def check_invariance_to_the_number_of_ranks():
    P = dist.get_world_size()
    numbers = {}
    for label, sizes in (("equal", [4] * P), ("unequal", [3, 6, 2][:P])):
        data = batches(sizes)
        reference = train_one_process(data)
        for variant in ("sync fused", "sync composed", "plain"):
            model, identical = train_data_parallel(data, sizes, variant)
            assert identical, f"{label} {variant}: a replica differs from rank 0's"
            for part, values in (("parameters", lambda m: flat(p.data for p in m.parameters())),
                                 ("buffers", lambda m: flat(m.buffers()))):
                error = float(np.abs(values(model) - values(reference)).max())
                numbers[f"{variant} {label} {part}"] = error
                if variant == "plain":
                    assert error > 1e-4, (label, part, error)  # per-replica statistics: another model
                else:
                    assert error < 1e-10, (variant, label, part, error)
    return numbers


def check_recompute_bn_stats_over_every_rank():
    """Each rank passes its own batches (sizes differ between ranks and batches): SyncBatchNorm
    layers get the population statistics of the concatenated batches, as one process would
    with the same weights, bitwise the same on every rank; plain layers keep their rank's own."""
    P, r = dist.get_world_size(), dist.get_rank()
    sizes = [[2 + (s + k) % 3 for s in range(P)] for k in range(3)]        # [batch][rank]
    rng = np.random.default_rng(15)
    data = [[rng.standard_normal((n, 2, 6)) + k for n in row] for k, row in enumerate(sizes)]
    numbers = {}
    for estimator in ("paper", "pooled"):
        reference = cnn(1)
        nn.recompute_bn_stats(reference, [np.concatenate(row) for row in data], estimator=estimator)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(cnn(1))
        assert nn.recompute_bn_stats(model, [row[r] for row in data], estimator=estimator) == 3
        error = float(np.abs(flat(model.buffers()) - flat(reference.buffers())).max())
        assert error < 1e-12 and same_on_every_rank(flat(model.buffers())), (estimator, error)
        numbers[estimator] = error
        local = cnn(1)
        nn.recompute_bn_stats(local, [row[r] for row in data], estimator=estimator)
        assert not same_on_every_rank(flat(local.buffers()))                  # plain: per rank
    return numbers


CHECKS = [check_statistics_of_the_global_batch, check_fused_and_composed_agree,
          check_gradient_against_finite_differences, check_second_order_across_ranks,
          check_ranks_that_differ_are_refused, check_invariance_to_the_number_of_ranks,
          check_recompute_bn_stats_over_every_rank]
