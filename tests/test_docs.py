"""The front page and the docs stay true: every Python block runs as written, every linked file
exists, the two set-up commands are what CI runs, and the README stays one screen."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README] + sorted((ROOT / "docs").glob("*.md"))
BLOCKS = [(doc, i, block) for doc in DOCS
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S))]


def test_readme_is_one_screen():
    """The front page: what minigrad is, the two commands, a first example, a figure, a map."""
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 8 * 1024
    assert text.count("```python") >= 1 and "![" in text
    for doc in DOCS[1:]:
        if doc.name != "changes.md":
            assert f"docs/{doc.name}" in text, f"the front page does not link {doc.name}"


def test_docs_have_python_examples():
    assert sum(doc == README for doc, _, _ in BLOCKS) >= 1 and len(BLOCKS) >= 5


@pytest.mark.parametrize("doc, index, block", BLOCKS, ids=[f"{d.name}-{i}" for d, i, _ in BLOCKS])
def test_python_block_runs(doc, index, block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)        # blocks may write files (a checkpoint)
    exec(compile(block, f"{doc.name} block {index}", "exec"), {})
    assert capsys.readouterr().out     # every block prints what it computed


def test_readme_commands_match_ci():
    head = README.read_text(encoding="utf-8").split("\n```", 2)[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e ." in head and "python examples/train_mlp.py" in head
    install = re.search(r'pip install -e "(\.\[[^\]]*\])" && python -m pytest -q', head)
    assert install, head
    assert f'pip install --quiet -e "{install.group(1)}"' in ci and "python -m pytest -q" in ci


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_linked_file_is_committed(doc):
    """A figure or page linked from the docs exists (figures: `python examples/figures.py`)."""
    links = re.findall(r"\]\(([^)#\s]+)\)", doc.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    missing = [link for link in local if not (doc.parent / link).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"
