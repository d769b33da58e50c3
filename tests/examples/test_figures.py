"""examples/figures.py: one command runs every study with --plot (each as its own command, so
captions name it) and draws the two graph images; its folder is checked before any work."""
import shutil

import pytest

from .loader import load_example

figures = load_example("figures")
PNG = b"\x89PNG\r\n\x1a\n"


def test_main_runs_each_study_with_plot_into_the_folder(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    ran, drawn = [], []
    monkeypatch.setattr(figures, "study", lambda script, *arguments: ran.append((script, *arguments)))
    monkeypatch.setattr(figures, "graphs", drawn.append)
    out = str(tmp_path)
    monkeypatch.setattr(figures, "have_mpi", lambda: True)
    figures.main(["--out", str(tmp_path)])
    assert ran == [("bn_inference.py", "--plot", out), ("bn_after_training.py", "--plot", out, "--quiet"),
                   ("train_cnn.py", "--plot", f"{out}/train_cnn.png", "--quiet"),
                   ("small_batches.py", "--plot", out, "--quiet"), ("bn_distributed.py", "--plot", out, "--quiet")]
    assert drawn == [out]
    ran.clear()
    monkeypatch.setattr(figures, "have_mpi", lambda: False)
    figures.main(["--out", str(tmp_path)])
    assert [r[0] for r in ran] == ["bn_inference.py", "bn_after_training.py", "train_cnn.py", "small_batches.py"]
    assert "skipped bn_distributed.png: it needs mpiexec and mpi4py" in capsys.readouterr().out
    ran.clear()
    # --threads is forwarded to each study; pinning this process too needs threadpoolctl (optional)
    monkeypatch.setattr(figures.cli.threads, "apply", lambda count, given: None)
    figures.main(["--out", str(tmp_path), "--threads", "1"])
    assert all(r[-2:] == ("--threads", "1") for r in ran)


def test_a_missing_folder_is_refused_before_any_work(capsys, monkeypatch):
    monkeypatch.setattr(figures, "study", lambda *a: pytest.fail("ran a study despite the bad folder"))
    with pytest.raises(SystemExit) as exit_info:
        figures.main(["--out", "no/such/folder"])
    assert exit_info.value.code == 2 and "--out: 'no/such/folder' is not an existing folder" in capsys.readouterr().err


def test_a_failed_study_ends_the_command(monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        figures.study("train_mlp.py", "--epochs", "0")
    assert "examples/train_mlp.py failed (exit 2)" in str(exit_info.value)


def test_graphs_draws_both_batch_norms_with_title_and_key(tmp_path, capsys):
    if shutil.which("dot") is None:
        figures.graphs(str(tmp_path))
        assert "skipped the graph images" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
        return
    figures.graphs(str(tmp_path))
    out = capsys.readouterr().out
    assert "graph_composed.png (11 ops, 120 B saved for backward)" in out
    assert "graph_fused.png (1 op, 72 B saved for backward)" in out
    for name in ("composed", "fused"):
        assert (tmp_path / f"graph_{name}.png").read_bytes()[:8] == PNG
