"""Figures: matplotlib on the file-only Agg backend, one width for every figure, ONE saver.

Every figure is WIDTH inches wide at 100 px per inch of text, the width of a README column
(~800 px), so its text reads at the size a page shows it; ``save_figure`` writes it at DPI (sharp
when scaled down), with the caption (data, seed, the command that made it) under the axes, and
says what it wrote. matplotlib is optional (``pip install -e ".[plot]"``): nothing here imports it
until a figure is drawn or a format checked.
"""
import textwrap

WIDTH, DPI = 8.0, 150          # inches; dots per inch of the PNG (1200 px wide)
CAPTION_SIZE = 8.5             # points: ~12 px at the width a page shows the figure
TITLE_SIZE = 11.5
PLOT_HINT = 'pip install -e ".[plot]"'   # the optional extra, from a checkout (not PyPI's "minigrad")


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot():
    """matplotlib.pyplot on the Agg backend (callers checked it is installed), with the house
    font sizes: 10 pt text, 9 pt legends and ticks."""
    import matplotlib
    matplotlib.use("Agg")              # files only: no display needed
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 10, "legend.fontsize": 9, "xtick.labelsize": 9,
                         "ytick.labelsize": 9, "axes.titlesize": 10.5, "figure.titlesize": TITLE_SIZE})
    return plt


def formats():
    """The file suffixes (no dot) matplotlib can write: png, pdf, svg, ..."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return sorted(FigureCanvasAgg.get_supported_filetypes())


def figure(nrows=1, ncols=1, height=4.5, **kwargs):
    """(fig, axes) of the house width, WIDTH x ``height`` inches (plt.subplots' other arguments),
    laid out by matplotlib's constrained layout (titles, labels and legends get their room)."""
    return pyplot().subplots(nrows, ncols, figsize=(WIDTH, height), layout="constrained", **kwargs)


def legend_panel(ax, handles, labels=None, ncol=2):
    """Turn ``ax`` (a row of its own in the figure's grid) into the figure's legend: the layout
    gives it its own room, so it never covers data."""
    ax.axis("off")
    labels = [h.get_label() for h in handles] if labels is None else labels
    ax.legend(handles, labels, loc="center", ncol=ncol, frameon=False, borderaxespad=0)


def save_figure(fig, path, caption):
    """Write ``fig`` to ``path`` with ``caption`` wrapped under the axes (a "\\n" starts a new
    paragraph), close it, and print what was written. Every figure of the examples goes through
    here."""
    width_in, height_in = fig.get_size_inches()
    if fig.get_suptitle():                                      # wrapped to the figure's width
        fig.suptitle("\n".join(wrap(fig.get_suptitle(), width_in, TITLE_SIZE)))
    lines = wrap(caption, width_in, CAPTION_SIZE)
    fig.text(0.01, 0.01, "\n".join(lines), ha="left", va="bottom", fontsize=CAPTION_SIZE)
    bottom = (len(lines) * 1.25 * CAPTION_SIZE + 10) / 72 / height_in   # 1.25 em a line, plus a gap
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "rect" in engine.get():
        engine.set(rect=(0, bottom, 1, 1 - bottom))             # constrained layout: above the caption
    else:
        fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    print(f"wrote {path}")


def wrap(text, width_in, points):
    """``text`` in lines that fit ``width_in`` inches at ``points`` (about 0.55 em a character);
    a "\n" starts a new paragraph."""
    chars = int(width_in * 72 / (0.55 * points))
    return [line for paragraph in text.split("\n") for line in textwrap.wrap(paragraph, chars)]


def plot_history(history, path, title, caption, test_acc=None):
    """Loss and accuracy per epoch, stacked, training (batch statistics) and validation (running
    statistics), and the test accuracy (if given) as a star at the last epoch, to ``path``."""
    from matplotlib.ticker import MaxNLocator
    fig, (ax_loss, ax_acc) = figure(2, 1, height=6.2, sharex=True)
    epochs = [r["epoch"] for r in history]
    style = "o-" if len(epochs) <= 30 else "-"                  # markers only where they can be told apart
    for key, ax in (("loss", ax_loss), ("acc", ax_acc)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], style, ms=4, label="training batches (batch statistics)")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], style, ms=4, label="validation (running statistics)")
        ax.set_ylabel("cross-entropy (nats)" if key == "loss" else "accuracy (fraction correct)")
        ax.grid(alpha=0.3)
    if test_acc is not None:
        ax_acc.plot(epochs[-1], test_acc, "*", ms=13, color="C3", label=f"test, once at the end: {test_acc:.4f}")
        ax_acc.legend(loc="lower right")
    ax_acc.set_xlabel("epoch")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(loc="upper right")
    ax_acc.set_ylim(top=1.015)                                  # a line at 1.0 stays visible
    fig.suptitle(title)
    save_figure(fig, path, caption)
