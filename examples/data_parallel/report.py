"""bn_distributed.py's report: the table, the conclusions computed from it, how far each condition's
final state lands from one process's, and the figure (saved by helpers/plots.py's one saver).

Invariant: nothing here trains or changes a model; every sentence comes from the numbers.
"""
import numpy as np

from helpers import cli, plots

CONDITIONS = ("plain BN", "SyncBN", "one process")


def print_table(table, args):
    P = args.processes
    print(f"\nTest accuracy (mean ± sd over {args.seeds} seeds) and rank 0's running statistics against the "
          f"population's: worst channel's |mean difference| in standard deviations, |variance ratio - 1|")
    print(f"{'per process':>11} {'global':>6} " + " ".join(f"{c:>17}" for c in CONDITIONS)
          + "   " + " ".join(f"{c + ' gap':>22}" for c in CONDITIONS))
    for b in args.batches:
        cells = [f"{table[c, b]['acc'][0]:.4f} ± {table[c, b]['acc'][1]:.4f}" for c in CONDITIONS]
        gaps = [f"{table[c, b]['mean gap'][0]:.2f} σ, {100 * table[c, b]['var gap'][0]:5.1f}%" for c in CONDITIONS]
        print(f"{b:>11} {P * b:>6} " + " ".join(f"{c:>17}" for c in cells) + "   " + " ".join(f"{g:>22}" for g in gaps))


def conclusions(table, args):
    """What the table says, computed from it: where plain BN falls behind SyncBN by more than the
    seeds' spread, and whether SyncBN matches one process."""
    lines, hurt, neutral = [], [], []
    for b in args.batches:
        plain, sync = table["plain BN", b]["acc"], table["SyncBN", b]["acc"]
        spread = max(plain[1], sync[1])
        (hurt if sync[0] - plain[0] > 2 * spread else neutral).append((b, sync[0] - plain[0], spread))
    if hurt:
        lines.append("Per-process statistics hurt at per-process batch " + ", ".join(
            f"{b} ({100 * d:+.1f} points for SyncBN, seeds' sd {100 * s:.1f})" for b, d, s in hurt) + ".")
    if neutral:
        lines.append("They do not hurt beyond twice the seeds' spread at " + ", ".join(
            f"{b} ({100 * d:+.1f} points, sd {100 * s:.1f})" for b, d, s in neutral)
            + ": no difference these seeds can tell from noise.")
    worst = max(args.batches, key=lambda b: abs(table["SyncBN", b]["acc"][0] - table["one process", b]["acc"][0]))
    lines.append(f"SyncBN against one process with the global batch: at most "
                 f"{100 * abs(table['SyncBN', worst]['acc'][0] - table['one process', worst]['acc'][0]):.1f} points "
                 f"apart (per-process batch {worst}): the same arithmetic up to float32 rounding, which "
                 f"training amplifies.")
    gap = {c: [table[c, b]["var gap"][0] for b in args.batches] for c in ("plain BN", "SyncBN")}
    lines.append("Rank 0's running variances against the population's (mean over seeds), plain BN: "
                 + ", ".join(f"{100 * g:.0f}%" for g in gap["plain BN"]) + "; SyncBN: "
                 + ", ".join(f"{100 * g:.0f}%" for g in gap["SyncBN"])
                 + f" (per-process batch {', '.join(map(str, args.batches))}).")
    return lines


def plot(table, args, path, argv):
    """Test accuracy (points, one group per per-process batch: separate runs, never joined) and the
    variance gap of rank 0's running statistics (bars from zero), the three conditions side by side."""
    fig, (legend, ax_acc, ax_gap) = plots.figure(3, 1, height=7.6, gridspec_kw={"height_ratios": [0.16, 1, 0.8]})
    looks = {"plain BN": ("C1", "o"), "SyncBN": ("C0", "s"), "one process": ("C2", "^")}
    labels = {"plain BN": f"plain BN: each of {args.processes} processes normalises its own b samples",
              "SyncBN": f"SyncBatchNorm: the statistics of all {args.processes}·b samples",
              "one process": f"one process, batch {args.processes}·b (plain BN)"}
    x = np.arange(len(args.batches))
    for offset, condition in zip((-0.25, 0, 0.25), CONDITIONS):
        colour, marker = looks[condition]
        mean = [table[condition, b]["acc"][0] for b in args.batches]
        sd = [table[condition, b]["acc"][1] for b in args.batches]
        ax_acc.errorbar(x + offset, mean, yerr=sd, fmt=marker, color=colour, ms=8, capsize=3, ls="",
                        label=labels[condition])
        for i, b in enumerate(args.batches):                         # every seed, small
            values = table[condition, b]["acc"][2]
            ax_acc.plot([x[i] + offset] * len(values), values, ".", color=colour, alpha=0.45, ms=4)
        ax_gap.bar(x + offset, [100 * table[condition, b]["var gap"][0] for b in args.batches], width=0.24,
                   color=colour)
    for ax in (ax_acc, ax_gap):
        for i in range(1, len(x)):
            ax.axvline(i - 0.5, color="0.8", lw=0.8)                 # the conditions' borders
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.grid(axis="y", alpha=0.3)
    ax_acc.set_xticks(x, [])
    ax_gap.set_xticks(x, [f"b = {b}\n(global {args.processes * b})" for b in args.batches])
    ax_gap.set_xlabel(f"per-process batch b (global batch {args.processes}·b); each group: separate runs")
    ax_acc.set_ylabel("test accuracy")
    ax_gap.set_ylabel("variance gap (%)")
    ax_acc.set_title(f"Test accuracy, eval mode (rank 0's running statistics): mean ± sd of {args.seeds} "
                     f"seeds, dots: each seed")
    ax_gap.set_title("Rank 0's running variances against the population's: worst channel's |ratio - 1|, "
                     "mean of seeds")
    plots.legend_panel(legend, *ax_acc.get_legend_handles_labels(), ncol=1)
    fig.suptitle(f"Data-parallel batch norm on {args.processes} processes: per-process (ghost) statistics "
                 f"against SyncBatchNorm and one process")
    plots.save_figure(fig, path, f"MNIST-1D (3600 training / 1000 test signals), train_cnn.py's CNN with "
                      f"BatchNorm1d, AdamW lr {args.lr:g} cosine over {args.epochs} epochs, the same initial "
                      f"weights and the same global batches in every condition, seeds 0-{args.seeds - 1}; "
                      f"population statistics: the whole training set as one batch (nn.recompute_bn_stats). "
                      f"{args.threads or 1} BLAS thread(s) per process.\n{cli.command('bn_distributed.py', argv)}")


def distance_to_one_process(saved):
    """{condition: the worst run's max |state - one process's state| / max |one process's state|}."""
    states = dict(zip((str(k) for k in saved["keys"]), saved["states"]))
    apart = {}
    for condition in ("plain BN", "SyncBN"):
        apart[condition] = 0.0
        for key, state in states.items():
            if key.startswith(condition + "|"):
                one = states["one process" + key[len(condition):]]
                apart[condition] = max(apart[condition], float(np.abs(state - one).max() / np.abs(one).max()))
    return apart
