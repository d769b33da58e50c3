"""The examples' layout: every example imports helpers first (so one BLAS thread is pinned before
numpy loads), and no example imports another example."""
import ast

import pytest

from .loader import EXAMPLES

SCRIPTS = sorted(EXAMPLES.glob("*.py"))
NAMES = {p.stem for p in SCRIPTS}


def imports(tree):
    """The top-level module names imported by ``tree``, in order."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_first_import_is_helpers(script):
    tree = ast.parse(script.read_text())
    first = next(node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))
    assert isinstance(first, ast.Import) and [a.name for a in first.names] == ["helpers"], script.name


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.py")), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_no_example_imports_another(path):
    assert not NAMES & set(imports(ast.parse(path.read_text()))), path
