"""examples/compare_bn.py and its compare/ package (fused vs composed batch norm), and the
vacuous-gradcheck guard.

Every case runs on tiny shapes with 2 timing repeats; timings are only checked to exist (speed
belongs in benchmarks/). PyTorch is optional: its column is tested only when it is installed.
"""
import json
import math
import sys
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F

from .loader import load_example

from compare import cases as compare  # noqa: E402  (examples/ is on sys.path: see loader.py)
from compare.report import format_case  # noqa: E402

cli = load_example("compare_bn")


@pytest.fixture(scope="module")
def case64():
    return compare.compare_case((6, 4), "float64", affine=True, seed=0, repeats=2, use_torch=False)


@pytest.fixture(scope="module")
def case32():
    return compare.compare_case((6, 4), "float32", affine=True, seed=0, repeats=2, use_torch=False)


def test_fused_and_composed_agree(case64, case32):
    for case, tol in ((case64, 1e-12), (case32, 1e-5)):
        agreement = case["agreement"]
        assert set(agreement) == {"y", "dx", "dweight", "dbias", "running_mean", "running_var", "eval_y"}
        for key, d in agreement.items():
            assert d["rel"] <= tol and d["abs"] <= 10 * tol, (case["dtype"], key, d)
        assert case["verdict"][0].startswith("agree:")


def test_both_match_finite_differences(case64):
    truth = case64["truth"]
    assert truth["shape"] == [6, 4]
    for impl in ("fused", "composed"):
        assert set(truth[impl]) == {"dx", "dweight", "dbias"}
        assert max(truth[impl].values()) < 1e-6, (impl, truth[impl])
    assert case64["verdict"][1].startswith("both right:")


def test_truth_runs_on_a_reduced_copy():
    truth = compare.truth((20, 9, 5), affine=False, seed=1)
    assert truth["shape"] == [8, 6, 4]
    assert truth["fused"]["dweight"] is None and truth["fused"]["dx"] < 1e-6


def test_numerics_float32_against_float64(case32):
    standard, offset = case32["numerics"]["standard"], case32["numerics"]["offset_1e4"]
    for impl in ("fused", "composed"):
        assert max(standard[impl].values()) < 1e-5
        assert max(offset[impl].values()) < 1e-2               # the float32 floor at 1e4 is ~5e-4
    assert standard["naive_y"] < 1e-5
    # the one-pass variance breaks at 1e4: NaN, or far worse than either implementation
    assert math.isnan(offset["naive_y"]) or offset["naive_y"] > 100 * offset["fused"]["y"]
    assert offset["naive_negative_var_channels"] >= 1
    assert set(offset["closer"].values()) <= {"fused", "composed", "tie"}


def test_node_counts_and_bytes(case64):
    cost = case64["cost"]
    fused, composed = cost["fused"], cost["composed"]
    assert fused["nodes"] == 1 and composed["nodes"] == 11 > fused["nodes"]
    assert fused["saved_bytes"] == (6 * 4 + 4 + 4) * 8         # x_hat, inv_std, weight
    assert composed["saved_bytes"] > fused["saved_bytes"]
    assert composed["retained_bytes"] > composed["saved_bytes"] > 0
    for impl in (fused, composed):
        assert impl["forward_s"] > 0 and impl["backward_s"] > 0 and impl["total_s"] > 0
    assert cost["ratio"]["nodes"] == 11 and cost["repeats"] == 2


def test_without_affine_and_with_length_axis():
    case = compare.compare_case((4, 3, 2), "float64", affine=False, momentum=0.5, seed=3,
                                steps=2, repeats=1, use_torch=False)
    assert case["agreement"]["dweight"] is None and case["agreement"]["dx"]["rel"] < 1e-12
    assert case["cost"]["composed"]["nodes"] == 7
    assert case["truth"]["shape"] == [4, 3, 2]


def test_format_case_has_every_section(case32):
    text = format_case(case32)
    for heading in ("Agreement:", "Truth:", "Numerics:", "Cost:", "Verdict:"):
        assert heading in text
    assert "x[:6, :4]" in text and "graph nodes" in text and "11.0x" in text
    assert "PyTorch column skipped" in text


def test_torch_absent_gives_one_skip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)            # import torch -> ImportError
    case = compare.compare_case((4, 3), "float64", repeats=1)
    assert case["torch"] is None
    assert "not installed" in case["torch_skipped"]
    skip_lines = [line for line in format_case(case).splitlines() if "torch" in line.lower()]
    assert skip_lines == [case["torch_skipped"]]


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 2, 3)])
def test_torch_column_when_installed(shape):
    pytest.importorskip("torch")
    case = compare.compare_case(shape, "float64", repeats=1, use_torch=True)
    torch = case["torch"]
    assert case["torch_skipped"] is None
    for key, pair in torch["agreement"].items():
        for impl in ("fused", "composed"):
            assert pair[impl]["rel"] < 1e-12, (key, impl, pair)
    assert torch["cost"]["total_s"] > 0


SCHEMA = {"impls", "shape", "dtype", "affine", "momentum", "seed", "steps", "eps", "agreement", "truth",
          "numerics", "second_order", "cost", "folding", "torch", "torch_skipped", "verdict", "elapsed_s"}


def test_main_writes_strict_json(tmp_path, capsys):
    path = tmp_path / "cmp.json"
    cases = cli.main(["4x3", "5x2x3", "--dtype", "both", "--no-affine", "--no-torch",
                          "--repeats", "1", "--json", str(path)])
    printed = capsys.readouterr().out
    assert printed.count("Verdict:") == 4 and "4 cases in" in printed

    def no_nan(token):
        raise AssertionError(f"{token} in strict JSON")
    data = json.loads(path.read_text(), parse_constant=no_nan)
    assert data["schema"] == "minigrad.compare/1"
    assert [(c["kind"], c["shape"], c["dtype"]) for c in data["layers"]][:3] == [
        ("renorm", [4, 3], "float32"), ("group", [4, 3], "float32"), ("layer", [4, 3], "float32")]
    assert len(data["layers"]) == 12 and printed.count("=== other normalisations on") == 4
    assert data["options"]["dtype"] == "both" and data["options"]["affine"] is False
    assert len(data["cases"]) == len(cases) == 4
    assert [(c["shape"], c["dtype"]) for c in data["cases"]] == [
        ([4, 3], "float32"), ([4, 3], "float64"), ([5, 2, 3], "float32"), ([5, 2, 3], "float64")]
    for c in data["cases"]:
        assert set(c) == SCHEMA
        assert set(c["cost"]) == {"fused", "composed", "ratio", "repeats"}
        assert set(c["cost"]["fused"]) == {"nodes", "saved_bytes", "retained_bytes",
                                           "forward_s", "backward_s", "total_s"}
        assert set(c["numerics"]) == {"standard", "offset_1e4"}
        assert c["agreement"]["dweight"] is None                 # --no-affine
        assert isinstance(c["verdict"], list) and len(c["verdict"]) == 5


def test_second_order_shows_why_the_fused_op_rebuilds_its_saved_arrays(case64):
    second = case64["second_order"]
    assert second["fused"] < 1e-6 and second["composed"] < 1e-6          # H·v right for both
    assert second["naive fused"] > 1e-2                                  # constants: H·v wrong
    assert second["naive_first_order_vs_fused"] < 1e-12                  # but first order equal
    assert "naive fused" in format_case(case64) and case64["verdict"][3].startswith("second order:")


@pytest.mark.parametrize("shape", [(6, 4), (4, 3, 5), (3, 2, 3, 3)], ids=["linear", "conv1d", "conv2d"])
def test_folding_equals_the_original_in_eval_mode_only(shape):
    from compare.folding import folding
    result = folding(shape, seed=0, repeats=1)
    assert result["eval_float64"] < 1e-12 and result["eval_float32"] < 1e-5
    assert result["training_float64"] > 1e-3                              # batch statistics differ
    original, folded = result["nodes"]
    assert folded == 1 and original > folded                              # one Affine / Conv node
    assert all(t > 0 for t in result["eval_s"])


def test_a_batchnorm2d_case_runs_every_section():
    case = compare.compare_case((3, 2, 3, 3), "float64", repeats=1, use_torch=False)
    assert case["agreement"]["dx"]["rel"] < 1e-12 and case["agreement"]["running_var"]["rel"] < 1e-12
    assert case["truth"]["shape"] == [3, 2, 3, 3] and case["truth"]["fused"]["dx"] < 1e-6
    assert "Conv2d + batch norm" in format_case(case)


def test_parse_shape_rejects_bad_shapes():
    assert cli.parse_shape("64x128") == (64, 128)
    assert cli.parse_shape("1x3x2x2") == (1, 3, 2, 2)
    for bad in ("64", "1x4", "2x0x3", "1x2x1", "1x2x1x1", "axb", "2x3x4x5x6"):
        with pytest.raises(Exception, match="shape must be|2 or more values per channel"):
            cli.parse_shape(bad)


@pytest.mark.parametrize("args, message", [
    (["--momentum", "1.5"], "argument --momentum: expected a number in [0, 1], got '1.5'"),
    (["--repeats", "0"], "argument --repeats: expected an integer >= 1"),
    (["--json", "no/such/dir/c.json"], "--json: the folder of 'no/such/dir/c.json' does not exist"),
    (["4xz"], "shape must be NxC"),
])
def test_bad_arguments_exit_with_a_message(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_shape_too_big_for_memory_is_one_line_before_any_case(capsys, monkeypatch):
    monkeypatch.setattr(cli, "compare_case", lambda *a, **k: pytest.fail("measured despite the size"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["4x3", "100000x100000"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2
    assert "shape 100000x100000 needs " in err and "more than this machine's" in err


def test_case_bytes_counts_the_input_copies_and_the_folded_layer():
    assert cli.case_bytes((4, 3)) == 8 * (10 * 12 + 9)
    assert cli.case_bytes((4, 3, 5)) == 8 * (10 * 60 + 9 * 9)


# ---------------------------------------------------------------------------- vacuous gradcheck

def bn_x():
    rng = np.random.default_rng(0)
    return mg.Tensor(rng.standard_normal((5, 3)), requires_grad=True)


@pytest.mark.parametrize("bn", [F.batch_norm_fused, F.batch_norm_composed])
def test_gradcheck_warns_on_bn_sum(bn):
    # Σ_i x̂_i = 0 per channel, so bn(x).sum() is a constant: its gradient "matches" anything
    with pytest.warns(mg.VacuousGradcheckWarning, match="does not depend on input 0"):
        assert mg.gradcheck(lambda x: bn(x, None, None)[0].sum(), [bn_x()])


def test_gradcheck_vacuous_raises_with_flag():
    with pytest.raises(mg.GradcheckError, match="vacuous"):
        mg.gradcheck(lambda x: F.batch_norm_fused(x, None, None)[0].sum(), [bn_x()],
                     raise_on_vacuous=True)


def test_gradcheck_on_bn_itself_is_not_vacuous():
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.VacuousGradcheckWarning)
        assert mg.gradcheck(lambda x: F.batch_norm_fused(x, None, None)[0], [bn_x()])


# ---------------------------------------------------------------------------- the other normalisations
@pytest.mark.parametrize("kind", ["renorm", "group", "layer"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 3)], ids=["NC", "NCL", "NCHW"])
def test_layer_cases_agree_and_count_their_cost(kind, shape):
    from compare.layers import layer_case
    case = layer_case(kind, shape, "float64", seed=1, repeats=1, use_torch=False)
    assert set(case["agreement"]) == {"y", "dx", "dweight", "dbias"}
    for key, d in case["agreement"].items():
        assert d["rel"] < 1e-12, (key, d)
    fused, composed = case["cost"]["fused"], case["cost"]["composed"]
    # the fused form: one op over x (BatchRenorm: and three (C,)-sized nodes for γ r, γ d + β)
    assert fused["nodes"] == (4 if kind == "renorm" else 1) < composed["nodes"]
    assert 0 < fused["saved_bytes"] < composed["saved_bytes"]
    assert fused["total_s"] > 0 and composed["total_s"] > 0 and case["cost"]["ratio"]["nodes"] > 1
    assert case["torch"] is None


@pytest.mark.parametrize("kind", ["group", "layer"])
def test_layer_cases_against_torch(kind):
    pytest.importorskip("torch")
    from compare.layers import layer_case
    from compare.report import format_layers
    cases = [layer_case(kind, (4, 6, 3), "float64", repeats=1, use_torch=True),
             layer_case("renorm", (4, 6, 3), "float64", repeats=1, use_torch=True)]
    for pair in cases[0]["torch"]["agreement"].values():
        assert pair["fused"]["rel"] < 1e-12 and pair["composed"]["rel"] < 1e-12
    assert cases[1]["torch"] is None and cases[1]["torch_skipped"] == "PyTorch has no such layer"
    text = format_layers(cases)
    assert "other normalisations on 4x6x3 float64" in text and "BatchRenorm, r_max 3, d_max 5" in text
    assert ("GroupNorm, 2 groups" if kind == "group" else "LayerNorm over (6, 3)") in text


def test_groups_for_a_case():
    from compare.layers import groups_for
    assert [groups_for(c) for c in (1, 3, 4, 6, 32, 64, 1024)] == [1, 1, 2, 2, 16, 32, 32]
