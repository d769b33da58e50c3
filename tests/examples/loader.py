"""Shared by the example tests: load a script from examples/ as a module (they are not a package).

examples/ goes on sys.path, as it is for ``python examples/NAME.py``, so the scripts find their
shared ``helpers`` package and their studies' packages (``compare``, ``after_training``, ...).
"""
import importlib.util
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def load_example(name):
    """Import ``examples/<name>.py`` by path and return the module."""
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
