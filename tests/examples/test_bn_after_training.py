"""examples/bn_after_training.py and its parts, examples/after_training/: what practitioners do
with batch norm after training.

Everything runs on small subsets of MNIST-1D with one or two epochs (the part functions take
their sizes as arguments; main's constants are patched for the end-to-end run). The checks are
the ones that fail on wrong code: folding is exact in eval mode and not in training mode,
frozen fine-tuning never moves the running statistics, the recomputed statistics are the
formulas computed independently in numpy, the conclusions follow the numbers they are given,
bad arguments exit 2 with their message, and --plot writes PNGs.
"""
import contextlib
import copy
import io

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader

from .loader import load_example   # first: it puts examples/ on sys.path for the two lines below

from after_training import average, estimators, finetune, fold, shared, small_batch
from helpers import models, plots
from helpers.bn_stats import bn_layers

study = load_example("bn_after_training")
PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["bn_estimators.png", "bn_average.png", "bn_small_batch.png", "bn_finetune.png", "bn_fold.png"]


def small_data(n_train=400, n_test=200):
    X_train, y_train, _, _, X_test, y_test = models.load_data("mnist1d", "cnn", False)
    return {"X_train": X_train[:n_train], "y_train": y_train[:n_train],
            "X_test": X_test[:n_test], "y_test": y_test[:n_test]}


@pytest.fixture(scope="module")
def data():
    return small_data()


@pytest.fixture(scope="module")
def trained(data):
    """A base model after 4 epochs on 400 samples, with its checkpoints (about 0.5 s)."""
    return study.train_base(data, 4, seed=0)


def quiet_call(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = fn(*args, **kwargs)
    return result, out.getvalue()


# ------------------------------------------------------------------ 5. fold
def test_fold_is_exact_in_eval_mode_and_not_in_training_mode(trained, data):
    base, _ = trained
    before = base.state_dict()
    r = fold.part_fold(base, data, repeats=3)
    assert r["diffs"]["eval, float64"] <= 1e-10
    assert r["diffs"]["eval, float32"] <= 1e-3
    assert r["diffs"]["training, float32"] > 1e-2        # batch statistics of the test batch
    assert r["nodes"]["folded"] < r["nodes"]["original"] and r["layers"] == (11, 8)
    assert r["ms"]["original"] > 0 and r["ms"]["folded"] > 0 and r["ratio"] > 0
    after = base.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)   # the base model is a copy's source only


def test_fold_conclusion_says_so_when_the_folded_network_differs():
    r = {"diffs": {"eval, float64": 1e-3, "eval, float32": 1e-3, "training, float32": 1.0},
         "nodes": {"original": 29, "folded": 8}, "ratio": 0.7, "ms": {"original": 1.0, "folded": 0.7}}
    assert "DIFFERS" in fold.fold_conclusion(r)[0]
    r["diffs"]["eval, float64"] = 1e-14
    assert "computes the same function" in fold.fold_conclusion(r)[0]


# ------------------------------------------------------------------ 4. finetune
def test_frozen_fine_tuning_never_changes_the_running_statistics(trained, data):
    base, _ = trained
    r = finetune.part_finetune(base, data, seed=0, samples=40, epochs=1, batch_size=4, lr=1e-3)
    assert r["unchanged"] == {"BN updating": False, "BN frozen": True, "recalibrated, frozen": True}
    assert all(r["affine_trained"].values())              # gradients still reach γ and β
    for curve in r["curves"].values():
        assert len(curve) == 2 and all(0 <= a <= 1 for a in curve)
    assert r["curves"]["BN updating"][0] == r["curves"]["BN frozen"][0]   # the same model before a step


def test_a_frozen_copy_keeps_its_buffers_through_fit(trained, data):
    """Independently of part_finetune's own check: train a frozen copy and compare with the base."""
    base, _ = trained
    model = nn.utils.freeze_batch_norm(copy.deepcopy(base))
    optimizer = mg.optim.AdamW(model.parameters(), lr=1e-3)
    shared.fit(model, optimizer, data["X_train"][:40], data["y_train"][:40], 4, 1, 0, "", True, cosine=False)
    for a, b in zip(bn_layers(model), bn_layers(base)):
        np.testing.assert_array_equal(a.running_mean, b.running_mean)
        np.testing.assert_array_equal(a.running_var, b.running_var)
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked)
        assert not np.array_equal(a.weight.data, b.weight.data)


def test_finetune_conclusion_claims_absorption_only_when_recalibration_regains_the_loss():
    curves = {"BN updating": [0.70, 0.90], "BN frozen": [0.70, 0.92], "recalibrated, frozen": [0.94, 0.93]}
    r = {"curves": curves, "epochs": 1, "batch_size": 4, "original": 0.95, "updating_recalibrated": 0.90}
    lines = finetune.finetune_conclusion(r)
    assert "removes once its statistics" in lines[1]
    assert "not its EMA but its weights" in lines[3]
    r["curves"] = {**curves, "recalibrated, frozen": [0.75, 0.93]}
    assert "removes once" not in finetune.finetune_conclusion(r)[1]
    r["updating_recalibrated"] = 0.93
    assert "(+3.0 points)" in finetune.finetune_conclusion(r)[3]


# ------------------------------------------------------------------ recompute_bn_stats, independently
def numpy_bn_train(x, bn):
    """Training-mode batch norm of (N, C, L) in numpy: biased batch variance, the layer's γ, β, eps."""
    mean = x.mean(axis=(0, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + bn.eps) * bn.weight.data[None, :, None] + bn.bias.data[None, :, None]


@pytest.mark.parametrize("estimator", ["paper", "pooled"])
def test_recalibrated_statistics_are_the_formulas(estimator):
    """A tiny float64 Conv-BN-ReLU-Conv-BN net, batches of unequal size (10 samples in 4, 4, 2):
    the second BN's input is computed here with numpy batch norm in the first, per batch, as
    recompute_bn_stats runs in training mode."""
    mg.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(1, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Conv1d(3, 2, 3),
                          nn.BatchNorm1d(2)).double()
    rng = np.random.default_rng(0)
    for bn in bn_layers(model):      # not the initial γ = 1, β = 0
        bn.weight.data[...] = rng.uniform(0.5, 2, bn.num_features)
        bn.bias.data[...] = rng.normal(size=bn.num_features)
    X, y = rng.normal(2.0, 3.0, (10, 1, 9)), np.zeros(10, np.int64)
    conv1, bn1, conv2 = model[0], model[1], model[3]
    inputs = [[], []]                        # per BN layer: its input, per batch, (n_b, C, L)
    with mg.no_grad():
        for xb, _ in DataLoader(X, y, 4, shuffle=True, seed=0):
            h = conv1(mg.tensor(xb)).data
            inputs[0].append(h)
            inputs[1].append(conv2(mg.tensor(np.maximum(numpy_bn_train(h, bn1), 0))).data)
    assert [len(b) for b in inputs[0]] == [4, 4, 2]
    recal = shared.recalibrated(model, X, y, 4, estimator, seed=0)
    for bn, batches in zip(bn_layers(recal), inputs):
        everything = np.concatenate(batches)                          # (10, C, L)
        sizes = np.array([b.shape[0] * b.shape[2] for b in batches])  # values per channel
        mean = everything.mean(axis=(0, 2))
        if estimator == "paper":                                      # Σ n_b · unbiased var_b / N
            var = sum(n * b.var(axis=(0, 2), ddof=1) for n, b in zip(sizes, batches)) / sizes.sum()
        else:                                                         # all values around μ
            var = everything.var(axis=(0, 2))
        np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    # the model itself is untouched
    np.testing.assert_array_equal(model[1].running_var, np.ones(3))


def test_estimators_pooled_first_layer_does_not_depend_on_the_batch_size(trained, data):
    base, _ = trained
    r = estimators.part_estimators(base, data, seed=0, sizes=(4, 50))
    assert set(r["accuracy"]) == {"EMA", "paper", "pooled", "exact"}
    assert all(0 <= a <= 1 for a in r["accuracy"].values())
    for size in (4, 50):
        assert r["by_size"][("pooled", size)]["var_ratio"][0] == pytest.approx(1, abs=1e-4)
        assert 0 <= r["by_size"][("paper", size)]["accuracy"] <= 1
    # batches of 4 (4 x 19 values): the paper's first-layer variance falls short of the exact one
    assert r["by_size"][("paper", 4)]["var_ratio"][0] < r["by_size"][("paper", 50)]["var_ratio"][0]
    assert r["positions"] == [19, 10, 5]
    for per_layer in r["gaps"].values():
        assert len(per_layer) == 3 and all(m >= 0 and v >= 0 for m, v in per_layer)


# ------------------------------------------------------------------ 2. average
def test_averaged_checkpoints_average_weights_and_running_statistics(trained):
    base, snapshots = trained
    early = snapshots[min(snapshots)][0]
    averaged = average.average_checkpoints(early, base)
    sa, sb, sm = early.state_dict(), base.state_dict(), averaged.state_dict()
    for key in sm:
        if sm[key].dtype.kind == "f":
            np.testing.assert_allclose(sm[key], (sa[key] + sb[key]) / 2, rtol=1e-6)
    assert not np.array_equal(sa["1.running_var"], sb["1.running_var"])


def test_estimators_conclusion_follows_its_numbers():
    by_size = {(e, s): {"var_ratio": [1.0, 0.9, 0.8] if e == "pooled" else [0.99, 0.95, 0.9], "accuracy": a}
               for (e, s), a in {("paper", 2): 0.90, ("pooled", 2): 0.91, ("paper", 100): 0.93,
                                 ("pooled", 100): 0.94}.items()}
    r = {"accuracy": {"EMA": 0.95, "paper": 0.93, "pooled": 0.94, "exact": 0.94},
         "gaps": {"EMA vs pooled": [(0.1, 0.02), (0.1, 0.05)], "paper vs pooled": [(0, 0.001), (0, 0.002)],
                  "EMA vs paper": [(0.1, 0.02), (0.1, 0.05)]},
         "by_size": by_size, "sizes": [2, 100], "positions": [19, 10, 5]}
    lines = estimators.estimators_conclusion(r)
    assert lines[0].startswith("After training all four give test accuracies within 2.0 points (20 of")
    assert "at most 5.0% from the pooled ones, the paper's 0.20%" in lines[0]
    assert "(at most 0% off), the paper's estimator is 1.00% off in batches of 2" in lines[1]
    assert "BN 3's variances are 10.0% (paper) and 20.0% (pooled)" in lines[2]
    assert "paper gives 0.9000-0.9300, pooled 0.9100-0.9400" in lines[3]


def test_every_figure_has_a_title_axis_labels_a_legend_and_a_caption(tiny_main, monkeypatch):
    if not plots.have_matplotlib():
        pytest.skip("matplotlib is not installed")
    result, _, folder = tiny_main
    seen = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, text: seen.__setitem__(path, (fig, text)))
    for part, (name, plot, setup) in study.FIGURES.items():
        plot(result[part], str(folder / ("x" + name)), "caption")
    assert len(seen) == len(study.FIGURES)      # every figure goes through the one saver
    for path, (fig, text) in seen.items():
        assert text == "caption"
        assert fig.get_size_inches()[0] == plots.WIDTH, path    # readable at a README column's width
        panels = [ax for ax in fig.get_axes() if ax.axison]      # not the legend rows
        assert fig.get_suptitle() or (len(panels) == 1 and panels[0].get_title()), path
        for ax in panels:
            assert ax.get_xlabel() and ax.get_ylabel(), (path, ax.get_title())
            assert ax.get_lines() or ax.patches, (path, ax.get_title())   # every panel shows data
        legends = [ax.get_legend() for ax in fig.get_axes() if ax.get_legend() is not None]
        assert legends and all(legend.get_texts() for legend in legends), path   # entries, not an empty box
        plots.pyplot().close(fig)
    # the caption names the data, the seed and the command
    text = shared.caption(study.make_parser().parse_args(["--plot", "figs"]), small_data(300, 200), "fold", "Setup.")
    assert "MNIST-1D" in text and "300 train / 200 test" in text and "seed 0" in text
    assert "python examples/bn_after_training.py --part all --seed 0 --epochs 30 --plot figs" in text
    assert "1 BLAS thread" in text


def test_a_checkpoint_continued_with_the_same_seed_is_the_uninterrupted_run(trained, data):
    """What makes the fork a fork: from the same checkpoint and seed, fit reproduces the base run
    exactly (epoch order and learning rate follow the epoch number); another seed does not."""
    base, snapshots = trained
    for seed, same in ((0, True), (1, False)):
        model, optimizer = copy.deepcopy(snapshots[2])
        shared.fit(model, optimizer, data["X_train"], data["y_train"], shared.BATCH, 4, seed, "", True, start=2)
        equal = all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
        assert equal is same


def test_checkpoint_epochs():
    assert average.checkpoint_epochs(30) == [3, 6, 10, 15, 20, 25]
    assert average.checkpoint_epochs(2) == [1]
    assert average.checkpoint_epochs(4) == [1, 2, 3]


def test_average_part_scores_every_checkpoint_and_the_fork(trained, data):
    base, snapshots = trained
    r = average.part_average(base, snapshots, data, epochs=4, seed=0)
    assert list(r["rows"]) == [f"epoch {e}" for e in (1, 2, 3)] + ["fork at 2"]
    for row in r["rows"].values():
        assert all(0 <= row[c] <= 1 for c in average.AVERAGE_COLUMNS)
        assert row["B"] == shared.test_accuracy(base, data["X_test"], data["y_test"])


# ------------------------------------------------------------------ 3. small-batch
def test_small_batch_rows(data):
    r = small_batch.part_small_batch(data, seed=0, sizes=(2, 8), samples=60, epochs=1)
    assert r["samples"] == 60 and set(r["rows"]) == {2, 8}
    assert r["rows"][2]["steps"] == 30 and r["rows"][8]["steps"] == 8   # 60 / 8: 7 full + one of 4
    for row in r["rows"].values():
        assert all(0 <= row[c] <= 1 for c in small_batch.SMALL_COLUMNS)


def test_batch_statistics_scoring_leaves_the_model_alone(trained, data):
    base, _ = trained
    before = base.state_dict()
    acc = small_batch.batch_stats_accuracy(base, data["X_test"], data["y_test"], 4, seed=0)
    assert 0 <= acc <= 1
    after = base.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_batch_statistics_accuracy_in_one_batch_is_the_training_mode_forward(trained, data):
    base, _ = trained
    X, y = data["X_test"], data["y_test"]
    with mg.no_grad(), mg.train_mode():
        expected = float((copy.deepcopy(base)(mg.tensor(X)).data.argmax(axis=1) == y).mean())
    assert small_batch.batch_stats_accuracy(base, X, y, len(y), seed=0) == expected
    assert expected != shared.test_accuracy(base, X, y)    # batch statistics are not the running ones


def test_subset_is_fixed_sorted_and_everything_when_large(data):
    X, y = data["X_train"], data["y_train"]
    Xs, ys = shared.subset(X, y, 50)
    assert len(ys) == 50 and Xs.shape == (50, 1, 40)
    rows = [int(np.flatnonzero((X == row).all(axis=(1, 2)))[0]) for row in Xs]
    assert rows == sorted(rows) and len(set(rows)) == 50      # distinct rows, original order
    np.testing.assert_array_equal(shared.subset(X, y, 50)[0], Xs)   # the same rows every time
    Xa, ya = shared.subset(X, y, len(y))
    assert Xa is X and ya is y


# ------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def tiny_main(tmp_path_factory):
    """main() end to end on 300 training / 200 test samples, 2 epochs, every part small."""
    patch = pytest.MonkeyPatch()
    small = small_data(300, 200)
    real_load = models.load_data

    def load(*args):
        assert args == ("mnist1d", "cnn", False)          # train_cnn's data, positions unshuffled
        X_train, y_train, X_val, y_val, X_test, y_test = real_load(*args)
        return small["X_train"], small["y_train"], X_val, y_val, small["X_test"], small["y_test"]
    patch.setattr(models, "load_data", load)
    for module, name, value in ((estimators, "RECAL_SIZES", (4, 100)), (small_batch, "SMALL_SIZES", (4, 32)),
                                (small_batch, "SMALL_SAMPLES", 64), (small_batch, "SMALL_EPOCHS", 1),
                                (finetune, "FT_SAMPLES", 24), (finetune, "FT_EPOCHS", 1), (fold, "FOLD_REPEATS", 2)):
        patch.setattr(module, name, value)
    folder = tmp_path_factory.mktemp("figures")
    argv = ["--epochs", "2", "--quiet"] + (["--plot", str(folder)] if plots.have_matplotlib() else [])
    try:
        result, text = quiet_call(study.main, argv)
    finally:
        patch.undo()
    return result, text, folder


def test_main_returns_every_part_with_accuracies_in_range(tiny_main):
    result, text, _ = tiny_main
    assert set(study.PARTS) <= set(result)
    for part in study.PARTS:
        assert result[part]["conclusion"] and all(isinstance(line, str) for line in result[part]["conclusion"])
        assert result[part]["conclusion"][0] in text                 # printed as returned
    assert 0 <= result["base_test_acc"] <= 1
    assert all(0 <= a <= 1 for a in result["estimators"]["accuracy"].values())
    assert all(0 <= a <= 1 for c in result["finetune"]["curves"].values() for a in c)
    for heading in ("1. estimators", "2. average", "3. small-batch", "4. finetune", "5. fold", "seconds:"):
        assert heading in text
    assert result["seconds"]["total"] > 0


def test_plot_writes_one_png_per_part(tiny_main):
    if not plots.have_matplotlib():
        pytest.skip("matplotlib is not installed")
    _, text, folder = tiny_main
    for name in NAMES:
        path = folder / name
        assert path.read_bytes()[:8] == PNG, name
        assert f"wrote {path}" in text


@pytest.mark.parametrize("argv, message", [
    (["--part", "everything"], "invalid choice: 'everything'"),
    (["--epochs", "1"], "expected an integer >= 2, got '1'"),
    (["--seed", "-1"], "expected an integer >= 0, got '-1'"),
    (["--plot", "/no/such/folder"], "--plot: '/no/such/folder' is not an existing folder"),
])
def test_bad_arguments_exit_2_with_their_message_before_any_work(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(study, "train_base", lambda *a, **k: pytest.fail("trained despite a bad argument"))
    with pytest.raises(SystemExit) as exit_info:
        study.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()[-1]) > 0


def test_plot_without_matplotlib_is_an_argument_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    monkeypatch.setattr(study, "train_base", lambda *a, **k: pytest.fail("trained without matplotlib"))
    with pytest.raises(SystemExit) as exit_info:
        study.main(["--plot", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        study.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 30)" in out and "(default: all)" in out and "(default: 0)" in out
