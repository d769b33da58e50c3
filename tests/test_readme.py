"""The README's Python examples run as written (so the quick tour cannot rot)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)        # the tour writes ckpt.npz
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
    assert capsys.readouterr().out     # every block prints what it computed


def test_readme_commands_match_ci():
    head = README.read_text(encoding="utf-8").split("\n```", 2)[1]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e ." in head and "python examples/train_mlp.py" in head
    assert 'pip install -e ".[test]"' in head and "python -m pytest -q" in head
    assert 'pip install --quiet -e ".[test]"' in ci and "python -m pytest -q" in ci
