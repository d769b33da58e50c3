"""minigrad/nn/parallel.py, DistributedDataParallel: in one process (world size 1: the
gradient is the rank's own, the bookkeeping is the same) and on 2 and 3 ranks through
worker.py (checks_parallel.py)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn.parallel import DistributedDataParallel as DDP
from minigrad.nn.parallel import first_difference, make_buckets

from .checks_parallel import WithSpare, mlp
from .conftest import mpiexec


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return mg.tensor(rng.standard_normal((5, 4))), rng.integers(0, 3, 5)


def test_exported_as_nn_parallel():
    assert nn.parallel.DistributedDataParallel is DDP


def test_world_size_one_gradient_is_the_plain_models():
    x, y = batch()
    plain, wrapped = mlp(0), mlp(0)
    ddp = DDP(wrapped)
    assert ddp.module is wrapped
    nn.functional.cross_entropy(plain(x), y).backward()
    nn.functional.cross_entropy(ddp(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_state_dict_keys_carry_the_module_prefix():
    model = mlp(0)
    ddp = DDP(model)
    assert list(ddp.state_dict()) == ["module." + k for k in model.state_dict()]
    assert [n for n, _ in ddp.named_parameters()] == ["module." + n for n, _ in model.named_parameters()]
    other = mlp(1)
    ddp.module.load_state_dict(other.state_dict())               # a plain model's keys, via .module
    np.testing.assert_array_equal(model[0].weight.data, other[0].weight.data)
    with pytest.raises(ValueError, match="missing keys"):
        ddp.load_state_dict(other.state_dict())                  # without the prefix: refused


def test_unused_parameter_raises_at_the_next_forward_naming_it():
    x, _ = batch()
    ddp = DDP(WithSpare())
    (ddp(x) ** 2).sum().backward()
    with pytest.raises(RuntimeError, match=r"Expected to have finished reduction.*\['spare.weight', 'spare.bias'\]"):
        ddp(x)
    with pytest.raises(RuntimeError, match="Expected to have finished reduction"):
        ddp(x)                                                   # refused, and nothing reset


def test_forward_without_backward_and_no_grad_forward_are_fine():
    x, _ = batch()
    ddp = DDP(mlp(0))
    ddp(x)
    with mg.no_grad():
        ddp(x)
    (ddp(x) ** 2).sum().backward()
    ddp(x)


def test_a_second_backward_through_one_forward_is_refused():
    x, _ = batch()
    ddp = DDP(mlp(0))
    loss = (ddp(x) ** 2).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="'3.bias' got a gradient twice after one forward"):
        loss.backward()


def test_no_sync_accumulates_and_the_next_synced_backward_is_checked():
    x, _ = batch()
    ddp = DDP(WithSpare())
    with ddp.no_sync():
        assert ddp.require_backward_grad_sync is False
        (ddp(x) ** 2).sum().backward()                           # nothing expected: no error
    assert ddp.require_backward_grad_sync is True
    ddp(x)
    first = ddp.module.body[0].weight.grad.copy()
    with ddp.no_sync():
        (ddp(x) ** 2).sum().backward()
    np.testing.assert_allclose(ddp.module.body[0].weight.grad, 2 * first)


def test_create_graph_is_refused():
    x, _ = batch()
    ddp = DDP(mlp(0))
    with pytest.raises(RuntimeError, match="create_graph=True is not supported"):
        (ddp(x) ** 2).sum().backward(create_graph=True)


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="wraps a Module, got list"):
        DDP([nn.Linear(2, 2)])
    for cap in (0, -1, True, "25", float("inf")):
        with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number"):
            DDP(nn.Linear(2, 2), bucket_cap_mb=cap)
    assert DDP(nn.Linear(2, 2)).bucket_cap_mb == 25                       # PyTorch's default
    ddp = DDP(nn.Linear(2, 2), broadcast_buffers=0, bucket_cap_mb=1.5)
    assert ddp.bucket_cap_mb == 1.5 and ddp.broadcast_buffers is False    # the attributes PyTorch has


def test_buckets_reverse_order_cap_and_one_dtype_each():
    params = [mg.tensor(np.zeros(n, dtype), requires_grad=True)
              for n, dtype in ((10, np.float64), (10, np.float32), (30, np.float64), (5, np.float64))]
    assert make_buckets(params, cap_bytes=1e9) == [[3, 2, 0], [1]]
    assert make_buckets(params, cap_bytes=8 * 35) == [[3, 2], [1], [0]]   # 5 + 30 fit, 10 more do not
    assert make_buckets(params, cap_bytes=1) == [[3], [2], [1], [0]]      # a parameter above the cap
    ddp = DDP(mlp(0))                                                     # alone in its bucket
    assert ddp._buckets == [[5, 4, 3, 2, 1, 0]]
    # bytes from the last: 3.bias 24, 3.weight 144, 1.bias 48, 1.weight 48 (264) | 0.bias 48, 0.weight 192
    assert DDP(mlp(0), bucket_cap_mb=300 / 2 ** 20)._buckets == [[5, 4, 3, 2], [1, 0]]
    frozen = mlp(0)
    frozen[0].weight.requires_grad = False
    assert DDP(frozen)._names == ["0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]


def test_first_difference_names_it():
    a = [("parameter", "w", (2,), "float64", True), ("buffer", "b", (), "int64", False)]
    assert first_difference(a, list(a)) is None
    b = [a[0], ("buffer", "b", (1,), "int64", False)]
    assert first_difference(a, b) == ("entry 1 is buffer 'b' () int64 on rank 0 but buffer 'b' (1,) int64 "
                                      "on rank {rank}")
    assert "rank 0 has 2 parameters and buffers, rank {rank} has 1; the first one only rank 0 has is " \
           "buffer 'b' () int64" == first_difference(a, a[:1])


CHECKS = ["check_refuses_models_that_differ", "check_broadcast_at_construction_and_state_dict",
          "check_mean_gradient_in_buckets", "check_no_sync_accumulates_then_averages",
          "check_unused_parameter_is_named_at_next_forward", "check_broadcast_buffers_before_forward"]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("check", CHECKS)
def test_data_parallel_on_several_ranks(worker, n, check):
    numbers = worker(n, check)
    if check == "check_refuses_models_that_differ":
        print(numbers["shape_message"], numbers["count_message"], sep="\n")
        assert "rank 1 differs from rank 0's: entry 0 is parameter '0.weight'" in numbers["shape_message"]


def test_ddp_as_the_first_distributed_call_still_compares_the_ranks():
    done = mpiexec(2, "ddp_first_worker", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused: DistributedDataParallel: the model on rank 1 differs from rank 0's") == 2, \
        done.stdout + done.stderr


def test_backward_through_module_before_any_forward_of_the_wrapper():
    # rank-local work through .module (evaluation, a probe) before DDP's first forward: plain gradients
    model = nn.Linear(3, 2)
    ddp = DDP(model)
    model(mg.tensor(np.ones((4, 3), np.float32))).sum().backward()
    np.testing.assert_allclose(model.weight.grad, np.full((2, 3), 4.0))
    loss = model(mg.tensor(np.ones((4, 3), np.float32))).sum()
    DDP(model)                     # one process: nothing is broadcast, so the graph stays valid
    loss.backward()

