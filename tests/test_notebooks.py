"""The tutorial notebooks run top to bottom, and their committed outputs are a fresh run's.

Each notebook is executed once per session in a fresh kernel (notebooks/run.py, one BLAS thread);
every code cell's text output must equal the committed one, so a notebook edited without
re-running `python notebooks/run.py` fails here. Cells tagged "nondeterministic" (timings) are
exempt from the comparison, not from running. Key outputs are checked by name below.
"""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("nbclient", reason='the notebook runner is in the test extra: pip install -e ".[test]"')
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
spec = importlib.util.spec_from_file_location("notebook_runner", ROOT / "notebooks" / "run.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def text_of(cell):
    """A code cell's text outputs: printed streams and plain-text results, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append("".join(out["text"]))
        elif out["output_type"] in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "image/png" not in data:
                parts.append("".join(data.get("text/plain", "")))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def executed(request):
    import nbformat
    committed = nbformat.read(request.param, as_version=4)
    fresh, _ = runner.execute(request.param)
    return committed, fresh


def code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_there_are_tutorials():
    assert {p.name[:2] for p in NOTEBOOKS} >= {"01", "02", "03"}


def test_committed_outputs_are_a_fresh_runs(executed):
    committed, fresh = executed
    for i, (old, new) in enumerate(zip(code_cells(committed), code_cells(fresh))):
        assert old.source == new.source
        if "nondeterministic" in old.metadata.get("tags", []):
            continue
        assert text_of(old) == text_of(new), (
            f"code cell {i} prints something else than its committed output: re-run "
            f"`python notebooks/run.py`\n--- committed\n{text_of(old)}\n--- fresh\n{text_of(new)}")


def test_every_cell_ran_and_none_failed(executed):
    _, fresh = executed
    for i, cell in enumerate(code_cells(fresh)):
        assert cell.execution_count is not None, f"code cell {i} did not run"
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert not errors, f"code cell {i} raised {errors[0]['ename']}: {errors[0]['evalue']}"


def test_committed_with_outputs(executed):
    committed, _ = executed
    assert all(c.execution_count is not None for c in code_cells(committed))
    assert sum(bool(c.outputs) for c in code_cells(committed)) >= len(code_cells(committed)) // 2


# What each tutorial must show, found in a fresh run's outputs (the lesson, not just "it ran").
KEY_OUTPUTS = {
    "01_autograd.ipynb": ["dL/da: by hand   6.0   engine   6.0",
                          "not written yet",                                     # the exercise cell
                          "gradgradcheck: its second derivatives match too",     # the solution
                          "GradcheckError: gradcheck: input 0",                  # the wrong backward
                          "RuntimeError: create_graph through Softplus",         # an unrebuilt intermediate
                          "second derivative equals σ(1 - σ): True"],            # rebuild_saved
    "02_batchnorm.ipynb": ["not written yet",
                           "gradcheck: your backward matches finite differences",
                           "composed: 11 ops",
                           "training mode: Expected more than 1 value per channel"],
    "03_cnn_mnist1d.ipynb": ["ops recorded by an eval forward: 29 -> 8",
                             "float64 logits, original vs folded: ",
                             "in training mode: fuse_conv_bn_eval: fusion is for evaluation only"],
}


def test_key_outputs(executed, request):
    _, fresh = executed
    name = request.node.callspec.id
    printed = "\n".join(text_of(c) for c in code_cells(fresh))
    missing = [key for key in KEY_OUTPUTS[name] if key not in printed]
    assert not missing, f"{name} no longer shows: {missing}"


def test_cnn_tutorial_trains_with_batch_norm_above_the_plain_cnn(executed, request):
    if request.node.callspec.id != "03_cnn_mnist1d.ipynb":
        pytest.skip("the CNN tutorial only")
    printed = "\n".join(text_of(c) for c in code_cells(executed[1]))
    plain = float(printed.split("CNN (ours, no batch norm)")[1].split()[0])
    with_bn = float(printed.split("CNN + BatchNorm1d (ours)")[1].split()[0])
    assert with_bn > 0.93 and with_bn > plain
