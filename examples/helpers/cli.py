"""The command line every example shares: argument types with one-line errors, the flags, and the
checks made before any work (thread count, output paths, memory).

Invariant: a problem with the command line ends in one line on stderr and exit code 2 (argparse's
``parser.error``) before any file is written or any training step is taken. Output paths are
probed by creating the file (removed again if it was not there), so whatever the system would
refuse later (an unwritable folder, a name too long) is refused now.
"""
import argparse
import math
import os
import shlex
import sys
import tempfile

from . import plots, ranks, threads


# ------------------------------------------------------------------ argument types
def number(kind=int, minimum=None, maximum=None, above=None):
    """An argparse ``type``: a number of ``kind`` in range, else a one-line error naming the
    range and what came (argparse adds the option's name). ``above``: strictly greater."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        ok = value is not None and math.isfinite(value)
        ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
        ok = ok and (above is None or value > above)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {describe(kind, minimum, maximum, above)}, "
                                             f"got {text!r}")
        return value
    return parse


def choice(*names):
    """An argparse ``type``: one of ``names``, else a one-line error listing them."""
    def parse(text):
        if text not in names:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(names)})")
        return text
    return parse


def boolean(text):
    """"True" / "False" -> True / False (a flag's value as a checkpoint stores it)."""
    if text not in ("True", "False"):
        raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")
    return text == "True"


def describe(kind, minimum, maximum, above):
    """"an integer >= 1", "a number > 0", "a number in [0, 1]"."""
    what = "an integer" if kind is int else "a number"
    if minimum is not None and maximum is not None:
        return f"{what} in [{minimum}, {maximum}]"
    bounds = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
              f"<= {maximum}" if maximum is not None else ""]
    return " ".join([what] + [b for b in bounds if b])


def integers(minimum, what, example):
    """An argparse type for comma-separated integers >= ``minimum``: "2,4,8" -> (2, 4, 8); the
    error names ``what`` was expected, with ``example``."""
    def parse(text):
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            values = ()
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} such as {example}, got {text!r}")
        return values
    return parse


parse_widths = integers(1, "positive widths", "128,64")     # layer widths
parse_seeds = integers(0, "seeds >= 0", "0,1,2")


def command(script, argv):
    """The command that ran, as a figure's caption names it: "python examples/<script> <args>"
    (with "mpiexec -n P " before it under several processes)."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return ranks.command_prefix() + " ".join(["python", f"examples/{script}", *map(shlex.quote, args)])


def show(value):
    """An option's value as typed on the command line: (128, 64) -> "128,64"."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


# ------------------------------------------------------------------ flags and parsing
def add_threads(parser):
    parser.add_argument("--threads", type=number(int, 1), default=None, metavar="N",
                        help=f"BLAS threads (default {threads.DEFAULT}: fast on a busy machine, the "
                             f"same numbers on every machine; examples/helpers/threads.py)")


def add_run_arguments(parser, metrics_help):
    """The flags every training example has: --metrics --save --resume --plot --quiet --threads."""
    parser.add_argument("--metrics", metavar="PATH", help=metrics_help)
    parser.add_argument("--save", metavar="CKPT", help="write a checkpoint after every epoch")
    parser.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT")
    parser.add_argument("--plot", metavar="PNG", help=f"plot the curves (needs matplotlib: "
                                                      f"{plots.PLOT_HINT}; no suffix: .png)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch table")
    add_threads(parser)


def parse(parser, argv, files=(), folders=()):
    """Parse ``argv``, then what every example checks before any work: the BLAS thread count,
    the output files (the options named in ``files``) and output folders (``folders``).
    Under mpiexec every rank parses and exits alike, rank 0 alone says why and probes the
    output paths (ranks.py)."""
    ranks.quiet_errors(parser)
    args = parser.parse_args(argv)
    problem = threads.apply(args.threads or threads.DEFAULT, given=args.threads is not None)
    if problem:
        parser.error(problem)

    def outputs():
        check_output_files(parser, args, files)
        for option in folders:
            check_output_folder(parser, option, getattr(args, option))
    ranks.on_rank_zero(outputs)
    return args


def check_memory(parser, what, nbytes):
    """Refuse a run whose arrays alone (``nbytes``, an estimate from the sizes on the command
    line) exceed the machine's physical memory: one line instead of numpy's MemoryError
    traceback, or the system killing the process. Skipped where the memory size is unknown."""
    problem = memory_problem(what, nbytes)
    if problem:
        parser.error(problem)


def memory_problem(what, nbytes):
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):           # not POSIX: no estimate
        return None
    if nbytes <= total:
        return None
    return f"{what} needs {size(nbytes)}, more than this machine's {size(total)} of memory"


def size(nbytes):
    """1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def run(main):
    """Run ``main()`` as a script: a MemoryError that the up-front estimate let through (a size
    that fits the machine but not what other processes leave free) ends in one line, exit 1."""
    try:
        return main()
    except MemoryError as err:
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: out of memory ({err or 'numpy'}); "
                 f"try smaller sizes")


# ------------------------------------------------------------------ output paths
def check_output_files(parser, args, options):
    """Each given --option PATH must be a file this process can create or overwrite, --plot in a
    format matplotlib writes (no suffix: matplotlib's .png, and args.plot says so), and no two
    outputs, nor an output and --resume's checkpoint (but --save), the same file."""
    given = {}
    for option in options:
        path = getattr(args, option, None)
        if path is None:
            continue
        if option == "plot":
            path = plot_path(parser, path)
            setattr(args, option, path)
        check_output_file(parser, option, path)
        given[option] = path
    resume = getattr(args, "resume", None)
    if resume is not None:
        for option, path in given.items():
            if option != "save" and same_file(path, resume):   # --resume X --save X continues X
                parser.error(f"--{option} {path} is the checkpoint that --resume reads: it would be "
                             f"overwritten; give another path")
    options = list(given)
    for i, first in enumerate(options):
        for second in options[i + 1:]:
            if same_file(given[first], given[second]):
                parser.error(f"--{first} {given[first]} and --{second} {given[second]} are the same "
                             f"file: one would overwrite the other; give two paths")


def plot_path(parser, path):
    """The file --plot PATH writes: PATH if its suffix is a format matplotlib writes, PATH.png if
    it has none (matplotlib's default), else a one-line error listing the formats."""
    if not plots.have_matplotlib():
        parser.error(f"--plot needs matplotlib ({plots.PLOT_HINT})")
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        return path                    # check_output_file says what is wrong with it
    stem, suffix = os.path.splitext(path)
    if suffix in ("", "."):
        return stem.rstrip(".") + ".png"
    formats = plots.formats()
    if suffix[1:].lower() not in formats:
        parser.error(f"--plot: matplotlib cannot write {suffix!r} files ({path!r}); use one of "
                     + ", ".join("." + f for f in formats))
    return path


def check_output_file(parser, option, path):
    """One line, exit 2, unless ``path`` is a file that can be created (or overwritten) now."""
    if path.endswith(("/", os.sep)) or (os.altsep and path.endswith(os.altsep)):
        parser.error(f"--{option}: {path!r} ends with a slash; give a file name")
    if os.path.isdir(path):
        parser.error(f"--{option}: {path!r} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"--{option}: the folder of {path!r} does not exist")
    existed = os.path.lexists(path)
    try:
        with open(path, "ab"):         # appends nothing: an existing file keeps its contents
            pass
        if option == "save":           # mg.save writes a temporary file next to it, then renames
            fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
            os.close(fd)
            os.remove(tmp)
    except OSError as err:
        parser.error(f"--{option}: cannot write {path!r}: {err.strerror or err}")
    finally:
        if not existed and os.path.isfile(path):
            os.remove(path)


def check_output_folder(parser, option, folder):
    """--option DIR: an existing folder this process can write files into; --plot also needs
    matplotlib. Nothing is left in it."""
    if folder is None:
        return
    if not os.path.isdir(folder):
        parser.error(f"--{option}: {folder!r} is not an existing folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        parser.error(f"--{option}: cannot write into {folder!r}: {err.strerror or err}")
    if option == "plot" and not plots.have_matplotlib():
        parser.error(f"--plot needs matplotlib ({plots.PLOT_HINT})")


def same_file(a, b):
    """Whether two paths name one file: equal once symlinks and case are resolved, or (when both
    exist) the same file on disk (a hard link)."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
