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


@pytest.mark.parametrize("doc", ["README.md", "docs/batchnorm.md"])
def test_every_linked_image_and_file_is_committed(doc):
    """A figure shown in the docs exists: `python examples/figures.py` made and committed it."""
    path = README.parent / doc
    links = re.findall(r"\]\(([^)#\s]+)\)", path.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    missing = [link for link in local if not (path.parent / link).exists()]
    assert local and not missing, f"{doc} links to missing files: {missing}"
