"""examples/bn_inference.py: the four-way study prints every method per epoch, leaves the trained
model alone, shows the single-sample case, and its summary follows from its numbers."""
import contextlib
import io
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import load_digits, train_val_split

from .loader import EXAMPLES, load_example

from helpers import models  # noqa: E402  (examples/helpers; loader puts examples/ on sys.path)

EXAMPLE = EXAMPLES / "bn_inference.py"
TINY = ["--epochs", "2", "--hidden", "32", "--val-batch-sizes", "1,2,8,full"]


@pytest.fixture(scope="module")
def study():
    return load_example("bn_inference")


@pytest.fixture(scope="module")
def run(study):
    """One tiny study (about 0.3 s), shared: (result dict, printed text)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = study.main(TINY)
    return result, out.getvalue()


def test_every_method_is_printed_for_every_epoch(run):
    result, text = run
    blocks = [block.split("\n\n")[0] for block in re.split(r"\nepoch (?=\d)", text)[1:]]
    assert len(blocks) == 2 and blocks[0].startswith("1 ") and blocks[1].startswith("2 ")
    for block in blocks:
        for label in ("(1) running (EMA, momentum 0.1)", "(2) batch stats, val batch 2",
                      "(2) batch stats, val batch 8", "(2) batch stats, val batch 359 (full)",
                      "(3) population, train set (Alg. 2)", "(4) cumulative (momentum=None)"):
            assert label in block
        size_1 = next(line for line in block.splitlines() if "val batch 1 " in line)
        assert "impossible" in size_1
        assert "weights identical after this epoch" in block
    overview = text.split("Validation accuracy by epoch")[1].splitlines()
    assert overview[1].split() == ["epoch", "running", "B=1", "B=2", "B=8", "B=359", "B=32",
                                   "sorted", "population", "cumulative"]
    for line, epoch in zip(overview[2:4], result["history"]):
        cells = line.split()
        assert cells[0] == str(epoch["epoch"]) and cells[2] == "impossible"
        assert cells[1] == f"{epoch['rows']['running'][0]:.4f}"
    for epoch in result["history"]:
        rows = epoch["rows"]
        assert set(rows) == {"running", "batch 1", "batch 2", "batch 8", "batch 359", "sorted 32",
                             "population", "cumulative"}
        assert isinstance(rows["batch 1"], str)     # impossible
        for value in rows.values():
            if not isinstance(value, str):
                assert 0 <= value[0] <= 1 and value[1] > 0
        assert epoch["identical"]              # BN momentum does not change the training run


def test_running_statistics_row_is_what_eval_mode_gives(study):
    """(1) is the eval-mode accuracy, the same number train_mlp.py reports."""
    result = study.main(["--epochs", "1", "--hidden", "32", "--val-batch-sizes", "full"])
    trained = load_example("train_mlp").main(["--epochs", "1", "--hidden", "32", "--quiet"])
    assert result["history"][0]["rows"]["running"][0] == \
        trained["history"][0]["val_acc"]


def test_single_sample_eval_works_and_training_mode_refuses(run):
    result, text = run
    demo = result["single_sample"]
    assert 0 <= demo["predicted"] < 10 and demo["label"] == 5
    assert "Expected more than 1 value per channel" in demo["training_error"]
    assert demo["buffers_unchanged"]
    assert demo["max_diff_vs_batch"] < 1e-4     # same logits alone as inside the batch
    assert "One sample" in text and "refused, ValueError" in text


def test_summary_is_computed_from_the_numbers(run):
    result, text = run
    summary = result["summary"]
    assert "Summary" in text and all(line in text for line in summary)
    last = result["history"][-1]["rows"]
    small = last["batch 2"][0]
    full = last["batch 359"][0]
    assert f"batches of 2 score {small:.4f}, of 359 {full:.4f}" in summary[1]
    assert any("a batch of 1 cannot be normalised" in line for line in summary)
    assert any("identical after every epoch" in line for line in summary)


def test_batch_statistics_leave_the_model_untouched(study):
    X_train, y_train, X_val, y_val = train_val_split(*load_digits(), 0.2, seed=0)
    mg.manual_seed(0)
    model = models.build_mlp([16], momentum=0.1)
    with mg.train_mode(), mg.no_grad():
        model(mg.tensor(X_train[:64]))          # give the buffers non-default values
    before = model.state_dict()
    acc, loss = study.batch_statistics_score(model, X_val, y_val, 8, seed=0)
    study.population_statistics(model, X_train, y_train, 64, seed=0)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert 0 <= acc <= 1
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        study.batch_statistics_score(model, X_val, y_val, 1, seed=0)


def test_population_statistics_are_algorithm_2(study):
    """Running mean = size-weighted mean of the training batches' means; running var = the same
    average of their unbiased variances (the paper's m/(m-1) · E[σ²_B])."""
    from minigrad.data import DataLoader
    X_train, y_train, _, _ = train_val_split(*load_digits(), 0.2, seed=0)
    mg.manual_seed(1)
    model = models.build_mlp([8], momentum=0.1)
    population = study.population_statistics(model, X_train, y_train, 64, seed=0)
    linear, bn = model[0], population[1]
    means, variances, sizes = [], [], []
    for xb, _ in DataLoader(X_train, y_train, 64, shuffle=True, seed=0):
        h = xb.astype(np.float64) @ linear.weight.data.T + linear.bias.data     # (B, 8)
        means.append(h.mean(axis=0))
        variances.append(h.var(axis=0, ddof=1))
        sizes.append(len(xb))
    np.testing.assert_allclose(bn.running_mean, np.average(means, axis=0, weights=sizes),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, np.average(variances, axis=0, weights=sizes), rtol=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'"),
    (["--batch-size", "1"], "argument --batch-size: expected an integer >= 2, got '1'"),
    (["--lr", "-1"], "argument --lr: expected a number > 0"),
    (["--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
    (["--hidden", "8,0"], "argument --hidden: expected comma-separated positive widths"),
    (["--val-batch-sizes", "0,full"], "argument --val-batch-sizes: expected positive sizes"),
])
def test_bad_arguments_exit_with_a_message(study, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        study.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_help_shows_the_defaults(study, capsys):
    with pytest.raises(SystemExit):
        study.main(["--help"])
    out = capsys.readouterr().out
    assert "(default: 10)" in out and "(default: 64)" in out and "(default: 0.001)" in out


def test_plot_writes_three_figures_and_the_printed_numbers_behind_them(study, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    result = study.main(["--epochs", "2", "--hidden", "16", "--val-batch-sizes", "2,full",
                         "--plot", str(tmp_path)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bn_inference_accuracy.png", "bn_inference_batch_size.png", "bn_inference_statistics.png"]
    assert all((tmp_path / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    out = capsys.readouterr().out
    assert "batch statistics by validation batch size: B=2" in out and "First BatchNorm1d, channels 0-2" in out
    curve = result["curve"]
    assert set(curve) == {2, 4, 8, 16, 32, 64, 128, 256} and curve[2] < curve[256]
    first = result["history"][0]
    assert len(first["trace"]) == 23 and len(result["history"][1]["trace"]) == 23   # one per batch
    np.testing.assert_array_equal(first["trace"][-1][0], first["channels"]["running"][0])


def test_plot_into_a_missing_folder_is_refused_before_training(study, capsys):
    with pytest.raises(SystemExit) as exit_info:
        study.main(["--plot", "no/such/folder"])
    assert exit_info.value.code == 2 and "is not an existing folder" in capsys.readouterr().err


def test_a_model_too_big_for_memory_is_one_line_before_any_work(study, capsys, monkeypatch):
    monkeypatch.setattr(models, "digits_split", lambda: pytest.fail("loaded data despite the size"))
    with pytest.raises(SystemExit) as exit_info:
        study.main(["--hidden", "3000000000"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "--hidden 3000000000: the two models needs" in err and "more than this machine's" in err


def test_the_accuracy_figure_tells_coinciding_curves_apart(study, tmp_path, monkeypatch):
    """Two panels: everything, and the top of the range where the methods that work differ by a
    few images; there each method sits at its own sideways offset, and the legend has a row of
    its own (it covers no data)."""
    pytest.importorskip("matplotlib")
    from helpers import plots
    seen = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, text: seen.setdefault(path, (fig, text)))
    study.main(["--epochs", "3", "--hidden", "16", "--val-batch-sizes", "2,full", "--plot", str(tmp_path)])
    fig, text = seen[str(tmp_path / "bn_inference_accuracy.png")]
    legend_row, top, zoom = fig.get_axes()
    assert not legend_row.axison and legend_row.get_legend() is not None and top.get_legend() is None
    xs = [tuple(line.get_xdata()) for line in zoom.get_lines()]
    assert len(xs) == len(set(xs)) == len(top.get_lines())     # no two methods share x positions
    low, high = zoom.get_ylim()
    running = top.get_lines()[0].get_ydata()
    assert high - low < 0.3 and low <= min(running[1:])        # zoomed, the running curve inside
    assert "python examples/bn_inference.py" in text and "0.0028" in text
    for fig, _ in seen.values():
        plots.pyplot().close(fig)


def test_the_cost_of_a_population_pass_is_measured_in_training_steps(run):
    """docs/batchnorm.md's answer to "why not population statistics during training": one pass
    over the training set (forward only) against one training step, both timed and printed."""
    result, out = run
    one_pass, one_step = result["population_pass"]
    assert 0 < one_step < one_pass            # a forward pass over every batch costs more than one step
    line = next(line for line in out.splitlines() if line.startswith("A population pass over"))
    assert f"{one_pass / one_step:.1f} training steps" in line and "times slower" in line
