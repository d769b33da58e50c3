"""examples/batches/figure.py: three panels and a legend row, points never joined by lines, every
norm told apart, and a caption with the setup and the command."""
import numpy as np
import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from batches import figure, report  # noqa: E402
from helpers import plots  # noqa: E402

CONDITIONS = ((2, None), (128, None), (None, 2))
CONFIG = {"conditions": CONDITIONS, "seeds": (0, 1), "n_train": 3600, "n_test": 1000, "step": 128, "lr": 0.01,
          "epochs": 10, "threads": 1}


def results():
    run = {"test": 0.9, "train_mode": 0.9, "gap": 0.0, "steps": 290, "batch": 32, "seconds": 0.5}
    return {norm: {c: [dict(run, test=0.9 - 0.01 * k + 0.02 * j), dict(run, test=0.92 - 0.01 * k + 0.02 * j)]
                   for j, c in enumerate(CONDITIONS)}
            for k, norm in enumerate(("batch", "renorm", "group", "layer", "none"))}


def test_the_figure_has_its_panels_points_only_and_a_legend(monkeypatch):
    if not plots.have_matplotlib():
        pytest.skip("matplotlib is not installed")
    seen = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, text: seen.append((fig, path, text)))
    figure.plot(results(), CONFIG, "x.png", "the caption")
    fig, path, text = seen[0]
    assert path == "x.png" and text == "the caption" and fig.get_size_inches()[0] == plots.WIDTH
    legend_row, *panels = fig.get_axes()
    assert [t.get_text() for t in legend_row.get_legend().get_texts()] == [report.NAMES[n] for n in results()]
    assert len(panels) == 3 and panels[2].get_yscale() == "log"
    for ax in panels:
        assert ax.get_title() and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["b = 2", "b = 128", "2 classes\nper batch"]
        markers = [line for line in ax.get_lines() if line.get_marker() in {m for _, m in figure.LOOKS.values()}]
        assert len(markers) == 5 and all(line.get_linestyle() == "None" for line in markers)   # never joined
        xs = [tuple(line.get_xdata()) for line in markers]
        assert len(set(xs)) == 5                                  # side by side: coinciding points stay apart
        low, high = ax.get_xlim()
        assert all(low < x < high for row in xs for x in row)     # every point inside the axes
    # the points are the means over seeds, the bars reach the min and the max
    accuracy = [line for line in panels[0].get_lines() if line.get_marker() == "o"][0]
    np.testing.assert_allclose(accuracy.get_ydata(), [91.0, 93.0, 95.0])        # seeds 90 and 92, ..., in %
    low, high = [line for line in panels[0].get_lines() if line.get_marker() == "_"][:2]
    np.testing.assert_allclose(np.asarray(low.get_ydata(), float), [90.0, 92.0, 94.0])
    np.testing.assert_allclose(np.asarray(high.get_ydata(), float), [92.0, 94.0, 96.0])
    seconds = [line for line in panels[2].get_lines() if line.get_marker() == "o"][0]
    np.testing.assert_allclose(seconds.get_ydata(), [0.5] * 3)                  # seconds, unscaled
    assert panels[2].get_xlabel()
    assert any(tuple(line.get_ydata()) == (0, 0) for line in panels[1].get_lines())   # the gap's zero line
    plots.pyplot().close(fig)


def test_the_caption_says_the_setup_and_the_command():
    text = figure.caption(results(), CONFIG, "python examples/small_batches.py --plot docs/figures")
    assert "MNIST-1D (3600 train / 1000 test)" in text and "over 10 epoch(s)" in text
    assert "all the step's samples of 2 classes (about 32)" in text              # the runs' mean batch
    assert "the same 128 samples" in text and "Seeds 0, 1" in text and "1 BLAS thread(s)" in text
    assert text.endswith("\npython examples/small_batches.py --plot docs/figures")
