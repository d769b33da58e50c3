"""examples/bn_distributed.py (and data_parallel/report.py): a tiny study (two per-process batches, two seeds, one epoch) run
through its own mpiexec job; its table, conclusions and figure come from its numbers; bad
arguments and a launch under mpiexec are refused."""
import contextlib
import io

import numpy as np
import pytest

from .loader import load_example

from data_parallel import report  # noqa: E402  (examples/ is on sys.path: see loader.py)
from helpers import plots  # noqa: E402

TINY = ["--batches", "16,32", "--seeds", "2", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def study():
    return load_example("bn_distributed")


@pytest.fixture(scope="module")
def run(study):
    """One tiny study (a few seconds), shared: (result dict, printed text)."""
    pytest.importorskip("mpi4py", reason="the [dist] extra (mpi4py, mpich) is not installed")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = study.main(TINY)
    return result, out.getvalue()


def test_every_condition_seed_and_batch_is_trained_and_scored(run):
    result, text = run
    assert set(result["results"]) == {(c, b, s) for c in ("plain BN", "SyncBN", "one process")
                                      for b in (16, 32) for s in (0, 1)}
    for accuracy, (mean_gap, var_gap) in result["results"].values():
        assert 0.3 < accuracy < 1 and mean_gap >= 0 and var_gap >= 0
    for (condition, b), row in result["table"].items():
        values = [result["results"][condition, b, s][0] for s in (0, 1)]
        assert row["acc"][2] == values and row["acc"][0] == pytest.approx(np.mean(values))
        assert row["acc"][1] == pytest.approx(np.std(values, ddof=1))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("per process"))
    for line, b in zip(lines[header + 1:header + 3], (16, 32)):
        cells = line.split()
        assert cells[:2] == [str(b), str(2 * b)]
        assert cells[2] == f"{result['table']['plain BN', b]['acc'][0]:.4f}"


def test_sync_bn_lands_nearer_one_process_than_plain_bn(run):
    result, text = run
    assert result["apart"]["SyncBN"] < result["apart"]["plain BN"]
    assert f"SyncBN {result['apart']['SyncBN']:.1e}, plain BN {result['apart']['plain BN']:.1e}" in text


def test_conclusions_follow_from_the_table(study):
    class Args:
        batches, processes = (2, 8), 2

    def row(acc, sd, var_gap):
        return {"acc": (acc, sd, []), "mean gap": (0.1, 0, []), "var gap": (var_gap, 0, [])}
    table = {("plain BN", 2): row(0.70, 0.02, 0.6), ("SyncBN", 2): row(0.80, 0.01, 0.3),
             ("one process", 2): row(0.82, 0.01, 0.3), ("plain BN", 8): row(0.85, 0.01, 0.2),
             ("SyncBN", 8): row(0.86, 0.01, 0.1), ("one process", 8): row(0.86, 0.01, 0.1)}
    lines = report.conclusions(table, Args)
    assert lines[0] == "Per-process statistics hurt at per-process batch 2 (+10.0 points for SyncBN, seeds' sd 2.0)."
    assert lines[1] == ("They do not hurt beyond twice the seeds' spread at 8 (+1.0 points, sd 1.0): no difference "
                        "these seeds can tell from noise.")
    assert "at most 2.0 points apart (per-process batch 2)" in lines[2]
    assert lines[3].endswith("plain BN: 60%, 20%; SyncBN: 30%, 10% (per-process batch 2, 8).")


def test_the_figure_has_points_bars_from_zero_and_a_caption(study, run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    result, _ = run
    seen = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, text: seen.append((fig, path, text)))

    class Args:
        batches, processes, seeds, epochs, lr, threads = (16, 32), 2, 2, 1, 1e-2, None
    report.plot(result["table"], Args, str(tmp_path / "f.png"), TINY)
    fig, path, text = seen[0]
    legend, accuracy, gap = fig.axes
    points = [line for line in accuracy.get_lines() if line.get_marker() not in (None, "None", "")]
    assert len(points) >= 9 and all(line.get_linestyle() == "None" for line in points)   # never joined
    assert gap.get_ylim()[0] == 0 and len(gap.patches) == 6
    assert [t.get_text() for t in legend.get_legend().get_texts()][1] == "SyncBatchNorm: the statistics of all 2·b samples"
    assert "python examples/bn_distributed.py --batches 16,32" in text and "seeds 0-1" in text
    plots.pyplot().close(fig)


@pytest.mark.parametrize("args, message", [
    (["--batches", "1,2"], "argument --batches: expected comma-separated batch sizes of 2 or more"),
    (["--processes", "1"], "argument --processes: expected an integer >= 2"),
    (["--plot", "no/such/dir"], "--plot: 'no/such/dir' is not an existing folder"),
])
def test_bad_arguments_exit_with_one_line(study, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        study.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
