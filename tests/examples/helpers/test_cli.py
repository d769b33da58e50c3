"""examples/helpers/cli.py: argument types, and the checks made before any work: output files
(writable, a file, a format matplotlib writes, no two the same), output folders, memory, and the
one-line end of a MemoryError. Each refusal is exit 2 with one line, and leaves nothing behind."""
import argparse
import os
import sys

import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from helpers import cli, plots, threads  # noqa: E402


def make_parser(*options):
    p = argparse.ArgumentParser(prog="x.py")
    for option in options:
        p.add_argument(f"--{option}")
    cli.add_threads(p)
    return p


def refusal(capsys, argv, options=("metrics", "save", "plot", "json"), folders=(), extra=("resume",)):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(make_parser(*options, *extra, *folders), argv, files=options, folders=folders)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# ------------------------------------------------------------------ types
def test_number_choice_boolean_widths():
    assert cli.number(int, 1)("3") == 3 and cli.number(float, above=0)("1e-3") == 1e-3
    for parse, text, message in ((cli.number(int, 1), "0", "expected an integer >= 1, got '0'"),
                                 (cli.number(float, above=0), "nan", "expected a number > 0, got 'nan'"),
                                 (cli.number(float, 0, 1), "1.5", "expected a number in [0, 1], got '1.5'"),
                                 (cli.number(int, 0), "1.5", "expected an integer >= 0, got '1.5'"),
                                 (cli.choice("a", "b"), "c", "invalid choice: 'c' (choose from a, b)"),
                                 (cli.boolean, "yes", "expected True or False, got 'yes'"),
                                 (cli.parse_widths, "8,0", "expected comma-separated positive widths")):
        with pytest.raises(argparse.ArgumentTypeError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            parse(text)
    assert cli.boolean("True") is True and cli.boolean("False") is False
    assert cli.number(float, 0, 1)("1") == 1.0 and cli.number(float, 0, 1)("0") == 0.0   # bounds included
    assert cli.number(float, above=0)("1e-300") == 1e-300
    assert cli.parse_widths("128,64") == (128, 64)
    assert cli.describe(float, None, 10, 0) == "a number > 0 <= 10"
    assert cli.show((128, 64)) == "128,64" and cli.show(0.001) == "0.001"


def test_threads_flag_and_its_check(capsys, monkeypatch):
    assert cli.parse(make_parser(), []).threads is None                  # default: the pinned one
    refusal(capsys, ["--threads", "0"], options=())
    monkeypatch.setattr(threads, "apply", lambda count, given: f"--threads {count}: refused")
    assert refusal(capsys, ["--threads", "3"], options=()) == "x.py: error: --threads 3: refused"


def test_parse_tells_threads_whether_the_count_was_typed(monkeypatch):
    seen = []
    monkeypatch.setattr(threads, "apply", lambda count, given: seen.append((count, given)))
    cli.parse(make_parser(), [])
    cli.parse(make_parser(), ["--threads", "3"])
    assert seen == [(threads.DEFAULT, False), (3, True)]


def test_command_names_what_ran():
    assert cli.command("train_mlp.py", ["--plot", "a b.png", "--quiet"]) == \
        "python examples/train_mlp.py --plot 'a b.png' --quiet"


# ------------------------------------------------------------------ output files
def test_good_output_paths_pass_and_leave_nothing_behind(tmp_path):
    existing = tmp_path / "kept.jsonl"
    existing.write_text("old\n")
    (tmp_path / "sub").mkdir()
    args = cli.parse(make_parser("metrics", "save", "json"), ["--metrics", str(existing), "--save",
                     str(tmp_path / "run.npz"), "--json", str(tmp_path / "sub" / ".." / "out.json")],
                     files=("metrics", "save", "json"))
    assert args.save == str(tmp_path / "run.npz")
    assert existing.read_text() == "old\n"                      # probed, not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.jsonl", "sub"]


@pytest.mark.parametrize("path, message", [
    ("{tmp}", "is a directory; give a file name"),
    ("{tmp}/new/", "ends with a slash; give a file name"),
    ("{tmp}/no/such/m.jsonl", "the folder of '{tmp}/no/such/m.jsonl' does not exist"),
    ("{tmp}/" + "m" * 300 + ".jsonl", "cannot write '{tmp}/" + "m" * 300 + ".jsonl': File name too long"),
])
def test_bad_output_files_are_refused_with_one_line(capsys, tmp_path, path, message):
    path = path.format(tmp=tmp_path)
    line = refusal(capsys, ["--metrics", path])
    assert line.startswith("x.py: error: --metrics: ") and line.endswith(message.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot create files in: a read-only one of ours, or (as root, who
    writes anywhere else) /sys, a kernel file system."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        yield str(folder)
        folder.chmod(0o700)
    elif os.path.isdir("/sys/kernel"):
        yield "/sys"
    else:
        pytest.skip("no folder this user cannot write into")


def test_an_unwritable_folder_is_refused(capsys, unwritable):
    path = os.path.join(unwritable, "m.jsonl")
    line = refusal(capsys, ["--save", path])
    assert line.startswith(f"x.py: error: --save: cannot write {path!r}: ")
    assert not os.path.exists(path)
    line = refusal(capsys, ["--plot", unwritable], options=(), folders=("plot",), extra=())
    assert line.startswith(f"x.py: error: --plot: cannot write into {unwritable!r}: ")


def test_a_checkpoint_name_too_long_for_the_atomic_write_is_refused(capsys, tmp_path):
    """mg.save writes ".NAME.XXXXXXXX.tmp" first: a 250-character NAME fits, its temporary file not."""
    path = str(tmp_path / ("c" * 250))
    assert "File name too long" in refusal(capsys, ["--save", path])
    cli.parse(make_parser("metrics"), ["--metrics", path], files=("metrics",))   # fine for a plain file
    assert list(tmp_path.iterdir()) == []


def test_plot_formats(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert {"png", "svg", "pdf"} <= set(plots.formats()) and "txt" not in plots.formats()
    parse = lambda path: cli.parse(make_parser("plot"), ["--plot", path], files=("plot",)).plot   # noqa: E731
    assert parse(str(tmp_path / "curve")) == str(tmp_path / "curve.png")     # what matplotlib would write
    assert parse(str(tmp_path / "curve.")) == str(tmp_path / "curve.png")
    assert parse(str(tmp_path / "curve.SVG")) == str(tmp_path / "curve.SVG")
    line = refusal(capsys, ["--plot", str(tmp_path / "curve.txt")], options=("plot",))
    assert "--plot: matplotlib cannot write '.txt' files" in line and ".png" in line and ".svg" in line
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    line = refusal(capsys, ["--plot", str(tmp_path / "c.png")], options=("plot",))
    assert line == 'x.py: error: --plot needs matplotlib (pip install -e ".[plot]")'


def test_two_outputs_naming_one_file_are_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "m.jsonl"
    target.write_text("x")
    os.symlink(target, tmp_path / "link.jsonl")
    os.link(target, tmp_path / "hard.jsonl")
    for metrics, save in (("m.jsonl", "m.jsonl"), ("m.jsonl", str(target)), ("./m.jsonl", "sub/../m.jsonl"),
                          ("link.jsonl", "m.jsonl"), ("hard.jsonl", "m.jsonl")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        line = refusal(capsys, ["--metrics", metrics, "--save", save])
        assert line == (f"x.py: error: --metrics {metrics} and --save {save} are the same file: one "
                        f"would overwrite the other; give two paths")
    assert target.read_text() == "x"
    cli.parse(make_parser("metrics", "save"), ["--metrics", "a.jsonl", "--save", "b.npz"], files=("metrics", "save"))


def test_plot_without_suffix_clashes_with_the_png_it_would_write(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = str(tmp_path / "c.png")
    assert "are the same file" in refusal(capsys, ["--plot", str(tmp_path / "c"), "--json", png])


def test_an_output_may_not_overwrite_the_checkpoint_to_resume_but_save_may(capsys, tmp_path):
    ckpt = tmp_path / "run.npz"
    ckpt.write_bytes(b"checkpoint")
    line = refusal(capsys, ["--resume", str(ckpt), "--metrics", str(ckpt)])
    assert line == f"x.py: error: --metrics {ckpt} is the checkpoint that --resume reads: it would be " \
                   "overwritten; give another path"
    args = cli.parse(make_parser("save", "resume"), ["--resume", str(ckpt), "--save", str(ckpt)], files=("save",))
    assert args.save == args.resume and ckpt.read_bytes() == b"checkpoint"


# ------------------------------------------------------------------ output folders
def test_output_folders(capsys, tmp_path):
    assert cli.parse(make_parser("plot"), ["--plot", str(tmp_path)], folders=("plot",)).plot == str(tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    for folder in (str(tmp_path / "missing"), str(tmp_path / "f")):
        line = refusal(capsys, ["--plot", folder], options=(), folders=("plot",), extra=())
        assert line == f"x.py: error: --plot: {folder!r} is not an existing folder"


# ------------------------------------------------------------------ memory
def test_memory_problem_compares_with_the_machine(monkeypatch):
    assert cli.memory_problem("--x 1", 1024) is None
    message = cli.memory_problem("--hidden 9", 2 ** 60)
    assert message.startswith("--hidden 9 needs 1048576.0 TiB, more than this machine's ")
    monkeypatch.setattr(os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert cli.memory_problem("--hidden 9", 2 ** 60) is None          # unknown: no estimate
    assert [cli.size(n) for n in (512, 1023, 1024, 1536, 3 * 2 ** 30, 2 ** 50)] == \
        ["512 B", "1023 B", "1.0 KiB", "1.5 KiB", "3.0 GiB", "1024.0 TiB"]


def test_run_ends_a_memory_error_in_one_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["examples/x.py"])
    assert cli.run(lambda: 7) == 7

    def hungry():
        raise MemoryError("Unable to allocate 715. GiB for an array")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(hungry)
    assert exit_info.value.code == "x.py: error: out of memory (Unable to allocate 715. GiB for an array); " \
                                   "try smaller sizes"
