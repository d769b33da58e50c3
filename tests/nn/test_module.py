"""nn.Module, Parameter, Sequential: registration, traversal, state_dict / load_state_dict,
dtype casts, repr, the global train/eval flag and zero_grad.

Key names and error behaviour follow PyTorch ("0.weight", "1.running_mean"); errors must name
the offending keys and shapes, because a checkpoint mismatch is otherwise hard to locate.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def make_model(seed=0):
    """Linear -> BatchNorm1d -> ReLU -> Linear: parameters, buffers and a parameter-free layer."""
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


MODEL_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
              "1.num_batches_tracked", "3.weight", "3.bias"]


class TwoLayer(nn.Module):
    """A hand-written model: a sub-module, a bare Parameter, a buffer and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.full(4, 2.0, dtype=np.float32))
        self.register_buffer("offset", np.arange(4, dtype=np.float32))
        self.note = "not state"

    def forward(self, x, shift=0.0):
        return self.body(x) * self.scale + shift


# ------------------------------------------------------------------ Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float32                     # Python numbers: float32, as in PyTorch
    assert nn.Parameter(np.zeros(2)).dtype == np.float64   # arrays keep their dtype
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad


def test_parameter_copies_its_data():
    array = np.ones(3, dtype=np.float32)
    p = nn.Parameter(array)
    array[0] = 5.0
    assert p.data[0] == 1.0
    t = mg.tensor(np.ones(2))
    q = nn.Parameter(t)
    t.data[1] = 7.0
    assert q.data[1] == 1.0


def test_parameter_repr_says_parameter():
    text = repr(nn.Parameter(np.array([1.5], dtype=np.float32)))
    assert text.startswith("Parameter containing:") and "1.5" in text and "requires_grad=True" in text


# ------------------------------------------------------------------ registration and traversal
def test_attributes_are_registered_by_kind():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["scale", "body.weight", "body.bias"]
    assert [p is q for p, q in zip(m.parameters(), [m.scale, m.body.weight, m.body.bias])] == [True] * 3
    assert [n for n, _ in m.named_buffers()] == ["offset"]
    assert next(m.buffers()) is m.offset
    assert list(m.children()) == [m.body]
    assert list(m.modules()) == [m, m.body]
    assert m.note == "not state" and "note" not in m.state_dict()


def test_call_runs_forward_with_args_and_kwargs():
    m = TwoLayer()
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    expected = (x.data @ m.body.weight.data.T + m.body.bias.data) * 2.0 + 1.0
    np.testing.assert_allclose(m(x, shift=1.0).data, expected, rtol=1e-6)


def test_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()(mg.tensor([1.0]))


def test_assigning_before_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter([1.0])

    with pytest.raises(AttributeError, match="Module.__init__"):
        Broken()


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_parameter_slot_accepts_only_parameters_or_none():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="parameter 'bias'"):
        layer.bias = mg.tensor(np.zeros(3, dtype=np.float32))
    layer.bias = None
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]


def test_assigning_none_to_a_submodule_removes_it():
    m = TwoLayer()
    m.body = None
    assert m.body is None
    assert [n for n, _ in m.named_parameters()] == ["scale"]
    assert list(m.state_dict()) == ["scale", "offset"]
    other = TwoLayer()
    with pytest.raises(TypeError, match="sub-module 'body'"):
        other.body = 3
    m.body = nn.Linear(3, 4)                            # and a module can be put back
    assert [n for n, _ in m.named_parameters()] == ["scale", "body.weight", "body.bias"]


def test_reassigning_a_buffer_keeps_it_a_buffer():
    bn = nn.BatchNorm1d(2)
    bn.running_mean = np.array([1.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [1.0, 2.0])


# ------------------------------------------------------------------ Sequential
def test_sequential_indexing_iteration_and_len():
    a, b, c = nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3
    assert seq[0] is a and seq[1] is b and seq[-1] is c
    assert list(seq) == [a, b, c]
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2 and tail[0] is b and tail[1] is c


def test_sequential_applies_modules_in_order():
    mg.manual_seed(3)
    first, second = nn.Linear(4, 3), nn.Linear(3, 2)
    seq = nn.Sequential(first, nn.ReLU(), second)
    x = mg.tensor(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    hidden = np.maximum(x.data @ first.weight.data.T + first.bias.data, 0)
    expected = hidden @ second.weight.data.T + second.bias.data
    np.testing.assert_allclose(seq(x).data, expected, rtol=1e-5, atol=1e-6)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 is function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# ------------------------------------------------------------------ state_dict
def test_state_dict_uses_pytorch_key_names():
    assert list(make_model().state_dict()) == MODEL_KEYS


def test_state_dict_num_batches_tracked_is_0d_int64():
    model = make_model()
    with mg.train_mode():
        model(mg.tensor(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)))
    count = model.state_dict()["1.num_batches_tracked"]
    assert count.shape == () and count.dtype == np.int64 and count == 1


def test_state_dict_holds_copies():
    model = make_model()
    state = model.state_dict()
    state["0.weight"][...] = 0.0
    state["1.running_mean"][...] = 9.0
    assert np.abs(model[0].weight.data).max() > 0
    np.testing.assert_array_equal(model[1].running_mean, 0.0)
    before = state["3.bias"].copy()
    model[3].bias.data += 1.0
    np.testing.assert_array_equal(state["3.bias"], before)


def test_state_dict_leaves_out_absent_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.BatchNorm1d(3, affine=False),
                          nn.BatchNorm1d(3, track_running_stats=False))
    assert list(model.state_dict()) == ["0.weight", "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked", "2.weight", "2.bias"]


def test_load_state_dict_round_trip_reproduces_outputs():
    source, target = make_model(seed=0), make_model(seed=1)
    x = mg.tensor(np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32))
    with mg.train_mode():
        source(x)                                    # running statistics move away from (0, 1)
    assert not np.array_equal(source[0].weight.data, target[0].weight.data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value, err_msg=key)
    with mg.eval_mode():
        np.testing.assert_array_equal(target(x).data, source(x).data)


def test_load_state_dict_copies_into_the_existing_arrays():
    model = make_model()
    weight, running_mean = model[0].weight.data, model[1].running_mean
    state = make_model(seed=5).state_dict()
    model.load_state_dict(state)
    assert model[0].weight.data is weight and model[1].running_mean is running_mean  # optimizers keep refs
    np.testing.assert_array_equal(weight, state["0.weight"])
    state["0.weight"][...] = 0.0                     # the loaded model does not alias the dict
    assert np.abs(weight).max() > 0


def test_load_state_dict_missing_key_is_named():
    model = make_model()
    state = model.state_dict()
    del state["1.running_var"]
    with pytest.raises(ValueError, match=r"missing keys: \['1.running_var'\]"):
        model.load_state_dict(state)


def test_load_state_dict_unexpected_key_is_named():
    model = make_model()
    state = model.state_dict()
    state["4.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"unexpected keys: \['4.weight'\]"):
        model.load_state_dict(state)


def test_load_state_dict_wrong_shape_names_key_and_both_shapes():
    model = make_model()
    state = model.state_dict()
    state["0.weight"] = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"0\.weight: expected shape \(3, 4\), got \(4, 3\)"):
        model.load_state_dict(state)


def test_load_state_dict_reports_every_problem_and_loads_nothing():
    model = make_model()
    before = model.state_dict()
    state = make_model(seed=7).state_dict()
    state["3.bias"] = np.zeros(5, dtype=np.float32)
    state["extra"] = np.zeros(1)
    del state["1.weight"]
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for part in ("3.bias", "(2,)", "(5,)", "'1.weight'", "'extra'"):
        assert part in message, part
    for key, value in model.state_dict().items():   # a failed load must not half-load
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_load_state_dict_non_strict_reports_and_loads_the_rest():
    model = make_model()
    state = make_model(seed=4).state_dict()
    del state["0.bias"]
    state["ghost"] = np.ones(1)
    bias_before = model[0].bias.data.copy()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["0.bias"] and unexpected == ["ghost"]
    np.testing.assert_array_equal(model[0].weight.data, state["0.weight"])
    np.testing.assert_array_equal(model[0].bias.data, bias_before)


def test_load_state_dict_non_strict_still_rejects_wrong_shapes():
    model = make_model()
    with pytest.raises(ValueError, match="0.bias"):
        model.load_state_dict({"0.bias": np.zeros(7)}, strict=False)


def test_load_state_dict_casts_to_the_existing_dtype():
    model = make_model()
    state = {k: v.astype(np.float64) + 0.1 if v.dtype.kind == "f" else v
             for k, v in model.state_dict().items()}
    state["1.num_batches_tracked"] = np.array(3.0)           # a float: cast to int64
    state["3.bias"] = mg.tensor(np.array([1.0, 2.0]))        # Tensors are accepted too
    model.load_state_dict(state)
    loaded = model.state_dict()
    for key, value in loaded.items():
        expected_dtype = np.int64 if key.endswith("num_batches_tracked") else np.float32
        assert value.dtype == expected_dtype, key
    np.testing.assert_allclose(loaded["0.weight"], state["0.weight"].astype(np.float32))
    np.testing.assert_array_equal(loaded["3.bias"], [1.0, 2.0])
    assert loaded["1.num_batches_tracked"] == 3


# ------------------------------------------------------------------ dtype
def test_double_casts_parameters_and_float_buffers_and_returns_self():
    model = make_model()
    x = mg.tensor(np.ones((2, 4), dtype=np.float32))
    with mg.train_mode():
        model(x).backward(np.ones((2, 2), dtype=np.float32))
    assert model.double() is model
    for name, p in model.named_parameters():
        assert p.dtype == np.float64 and p.grad.dtype == np.float64, name
    assert model[1].running_mean.dtype == np.float64 and model[1].running_var.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64      # integer buffers are left alone
    with mg.eval_mode():
        assert model(mg.tensor(np.ones((2, 4)))).dtype == np.float64
        with pytest.raises(TypeError, match="float64 parameters but got input of dtype float32"):
            model(x)
    assert model.float() is model
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model.to(np.float64) is model and model[0].weight.dtype == np.float64


@pytest.mark.parametrize("dtype, message", [
    (np.int64, r"Module\.to only accepts floating point dtypes, but got desired dtype=int64$"),
    (np.int8, r"but got desired dtype=int8$"),
    (bool, r"but got desired dtype=bool$"),
    (np.complex128, r"dtype=complex128; minigrad differentiates real tensors only"),
    (np.complex64, r"dtype=complex64; minigrad differentiates real tensors only"),
    ("cpu", r"Module\.to only accepts floating point dtypes \(e\.g\. np\.float32\), but got 'cpu'"),
    (None, r"but got None"),
], ids=["int64", "int8", "bool", "complex128", "complex64", "a_device", "None"])
def test_to_refuses_what_is_not_a_real_floating_point_dtype_and_changes_nothing(dtype, message):
    # an integer cast would truncate every weight and leave integer Parameters requiring grad
    model = make_model()
    with mg.train_mode():
        model(mg.tensor(np.ones((2, 4), dtype=np.float32))).backward(np.ones((2, 2), dtype=np.float32))
    before = model.state_dict()
    with pytest.raises(TypeError, match=message):
        model.to(dtype)
    assert_model_unchanged(model, before)
    assert all(p.requires_grad and p.grad.dtype == np.float32 for p in model.parameters())


def test_to_casts_a_tensor_gradient_too():
    layer = nn.Linear(2, 1)
    x = mg.tensor(np.ones((3, 2), dtype=np.float32))
    (layer(x) ** 2).sum().backward(create_graph=True)       # .grad is a Tensor now
    assert isinstance(layer.weight.grad, mg.Tensor)
    expected = layer.weight.grad.data.astype(np.float64)
    layer.to(np.float64)
    assert layer.weight.grad.dtype == np.float64
    np.testing.assert_array_equal(layer.weight.grad, expected)
    assert layer.to("float16").weight.dtype == np.float16   # any real floating dtype, by any name


def test_python_scalars_take_the_tensor_dtype():
    y = nn.Linear(3, 2)(mg.tensor(np.ones((1, 3), dtype=np.float32)))
    assert (y * 0.5 + 1).dtype == np.float32
    assert (2.0 - y / 3).dtype == np.float32


# ------------------------------------------------------------------ repr
def test_repr_is_readable_and_nested():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.25)),
                          nn.BatchNorm1d(3, momentum=None))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.25)\n"
        "  )\n"
        "  (2): BatchNorm1d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True, fused=True)\n"
        ")")


# ------------------------------------------------------------------ train / eval
def test_train_and_eval_set_the_global_flag_and_return_self():
    a, b = make_model(), nn.Linear(2, 2)
    assert a.eval() is a
    assert mg.is_training() is False and a.training is False
    assert b.training is False                        # global: every module sees it
    assert b.train() is b
    assert mg.is_training() is True and a.training is True
    assert a.train(False) is a and mg.is_training() is False


def test_eval_changes_what_a_batchnorm_model_computes():
    model = make_model()
    x = mg.tensor(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32) + 3)
    train_out = model.train()(x).data
    eval_out = model.eval()(x).data                 # running statistics, not the batch's
    assert not np.allclose(train_out, eval_out, atol=1e-3)


# ------------------------------------------------------------------ zero_grad
def test_zero_grad_clears_every_parameter_gradient():
    model = make_model()
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    with mg.train_mode():
        model(x).backward(np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ load_state_dict: values checked first
def assert_model_unchanged(model, before):
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
        assert value.dtype == before[key].dtype, key


BAD_VALUES = {
    "string": ("3.bias", "0.5", r"3\.bias: expected numbers \(float32\), got str of dtype <U3"),
    "string_array": ("0.bias", np.array(["a", "b", "c"]), r"0\.bias: expected numbers"),
    "object": ("3.bias", np.array([None, 1.0], dtype=object), r"3\.bias: expected numbers \(float32\), got ndarray of dtype object"),
    "none": ("3.bias", None, r"3\.bias: expected numbers \(float32\), got NoneType"),
    "ragged": ("3.bias", [[1.0], [2.0, 3.0]], r"3\.bias: not an array of numbers"),
    "complex": ("3.bias", np.array([1 + 2j, 3.0]), r"3\.bias: complex \(complex128\) into float32 would drop the imaginary part"),
    "fraction_into_count": ("1.num_batches_tracked", np.array(2.5), r"1\.num_batches_tracked: int64 cannot hold these float64 values exactly"),
    "nan_into_count": ("1.num_batches_tracked", np.array(np.nan), r"int64 cannot hold"),
    "inf_into_count": ("1.num_batches_tracked", float("inf"), r"int64 cannot hold"),
    "overflow": ("3.bias", np.array([1e300, 1.0]), r"3\.bias: values overflow to inf in float32"),
}


@pytest.mark.parametrize("case", BAD_VALUES, ids=BAD_VALUES.keys())
@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_refuses_values_the_target_cannot_hold_and_loads_nothing(case, strict):
    key, value, message = BAD_VALUES[case]
    model = make_model()
    before = model.state_dict()
    state = make_model(seed=3).state_dict()            # every other entry is good, and different
    state[key] = value
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state, strict=strict)
    assert_model_unchanged(model, before)              # not half-loaded: 0.weight is not written either


def test_load_state_dict_names_every_bad_key_at_once():
    model = make_model()
    state = model.state_dict()
    state["0.bias"], state["3.weight"] = "x", np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    assert "0.bias: expected numbers" in str(info.value) and "3.weight: expected shape (2, 3)" in str(info.value)


def test_load_state_dict_accepts_what_torch_s_copy_would_without_loss():
    model = make_model()
    state = model.state_dict()
    state["0.weight"] = state["0.weight"].astype(np.float64) / 3      # rounded to float32, as torch
    state["0.bias"] = np.arange(3)                                     # integers into float32
    state["1.weight"] = np.array([True, False, True])                  # bool into float32, as torch
    state["1.num_batches_tracked"] = np.float32(4.0)                   # a whole float into int64
    state["1.running_var"] = np.array([1, 2, 3], dtype=np.int8)
    state["3.bias"] = [0.5, -0.5]                                      # a list of numbers
    model.load_state_dict(state)
    loaded = model.state_dict()
    np.testing.assert_array_equal(loaded["0.weight"], state["0.weight"].astype(np.float32))
    np.testing.assert_array_equal(loaded["0.bias"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(loaded["1.weight"], [1.0, 0.0, 1.0])
    assert loaded["1.num_batches_tracked"] == 4 and loaded["1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(loaded["3.bias"], [0.5, -0.5])


def test_load_state_dict_into_an_unsigned_buffer_refuses_negatives():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("seen", np.zeros(2, dtype=np.uint8))

    counter = Counter()
    with pytest.raises(ValueError, match="seen: uint8 cannot hold these int64 values exactly"):
        counter.load_state_dict({"seen": np.array([-1, 3])})
    with pytest.raises(ValueError, match="seen: uint8 cannot hold"):
        counter.load_state_dict({"seen": np.array([256, 3])})
    counter.load_state_dict({"seen": np.array([255, 3])})
    np.testing.assert_array_equal(counter.seen, [255, 3])


def test_load_state_dict_wants_a_dict():
    with pytest.raises(TypeError, match="expects a dict .*got list"):
        make_model().load_state_dict([("0.weight", np.zeros((3, 4)))])


def test_reassigning_a_name_to_another_kind_leaves_nothing_stale():
    m = nn.Module()
    m.head = 3                                   # a plain attribute...
    m.head = nn.Linear(2, 2)                     # ...becomes a sub-module
    assert isinstance(m.head, nn.Linear) and "head.weight" in m.state_dict()
    m.head = nn.Parameter(np.ones(2))            # ...and then a parameter
    assert isinstance(m.head, nn.Parameter)
    assert list(m.state_dict()) == ["head"]      # the Linear's weights are gone with it


def test_load_state_dict_is_an_in_place_update():
    layer = mg.nn.Linear(2, 1, dtype=np.float64)
    y = (layer(mg.tensor(np.ones((3, 2)))) ** 2).sum()
    layer.load_state_dict({k: v + 1 for k, v in layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_a_forward_pre_hook_may_replace_the_arguments():
    m = TwoLayer()
    x = mg.tensor(np.ones((2, 3), dtype=np.float32))
    handle = m.register_forward_pre_hook(lambda module, args: args[0] * 0)      # one value: wrapped
    np.testing.assert_allclose(m(x).data, np.broadcast_to(m.body.bias.data * 2.0, (2, 4)), rtol=1e-6)
    handle.remove()
    m.register_forward_pre_hook(lambda module, args: (args[0], 5.0))           # a tuple: all of them
    np.testing.assert_allclose(m(x).data, (x.data @ m.body.weight.data.T + m.body.bias.data) * 2.0 + 5.0, rtol=1e-6)


def test_named_children_are_the_direct_sub_modules():
    model = make_model()
    assert [name for name, _ in model.named_children()] == ["0", "1", "2", "3"]
    assert [child for _, child in model.named_children()] == list(model.children())
