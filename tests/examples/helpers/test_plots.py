"""examples/helpers/plots.py: the one saver (caption under the axes, the title wrapped to the
figure's width, a PNG, one line saying what it wrote) and the training curves."""
import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from helpers import plots  # noqa: E402

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def test_save_figure_writes_the_caption_wraps_the_title_and_says_what_it_wrote(tmp_path, capsys):
    fig, ax = plots.figure(height=3)
    ax.plot([1, 2], [3, 4])
    fig.suptitle("a title far too long for one line of the figure's width " * 3)
    path = tmp_path / "f.png"
    plots.save_figure(fig, str(path), "Setup: data, seed.\npython examples/x.py --plot f.png")
    assert path.read_bytes()[:8] == PNG
    assert capsys.readouterr().out == f"wrote {path}\n"
    texts = [t.get_text() for t in fig.texts]
    assert any("Setup: data, seed.\npython examples/x.py --plot f.png" == t for t in texts)
    assert fig.get_suptitle().count("\n") >= 1                  # wrapped
    assert not plots.pyplot().fignum_exists(fig.number)          # closed
    assert fig.get_size_inches()[0] == plots.WIDTH


def test_wrap_keeps_paragraphs_and_fits_the_width():
    lines = plots.wrap("word " * 60 + "\nsecond paragraph", plots.WIDTH, 10)
    assert lines[-1] == "second paragraph" and len(lines) >= 3
    assert max(map(len, lines)) <= int(plots.WIDTH * 72 / (0.55 * 10))


@pytest.mark.parametrize("epochs, marker", [(3, "o"), (40, "None")])
def test_plot_history(tmp_path, monkeypatch, epochs, marker):
    seen = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, caption: seen.update(fig=fig, caption=caption))
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 1 - 1 / (e + 1),
                "val_acc": 1 - 1.2 / (e + 1)} for e in range(1, epochs + 1)]
    plots.plot_history(history, str(tmp_path / "c.png"), "MLP with BatchNorm1d: 0.9", "the caption")
    fig = seen["fig"]
    loss, acc = fig.get_axes()
    assert fig.get_suptitle() == "MLP with BatchNorm1d: 0.9" and seen["caption"] == "the caption"
    assert [len(line.get_xdata()) for line in acc.get_lines()] == [epochs, epochs]
    assert {line.get_marker() for line in acc.get_lines()} == {marker}   # markers only when few
    assert list(acc.get_lines()[1].get_ydata()) == [r["val_acc"] for r in history]
    assert "running statistics" in loss.get_legend().get_texts()[1].get_text()
    assert acc.get_legend() is None                            # no test accuracy given
    plots.pyplot().close(fig)
    plots.plot_history(history, str(tmp_path / "c.png"), "t", "c", test_acc=0.875)
    star = seen["fig"].get_axes()[1].get_lines()[-1]
    assert list(star.get_xdata()) == [epochs] and list(star.get_ydata()) == [0.875]
    assert star.get_label() == "test, once at the end: 0.8750"
    plots.pyplot().close(seen["fig"])
