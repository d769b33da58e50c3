"""Tests for minigrad.autograd.graph (mg.graph): node order and counts, saved/retained bytes, render and to_dot.

The batch-norm graphs are built on a (4, 3) float64 input, so every byte count below can be
worked out by hand: an (N, C) array is 96 B, a (C,) or (1, C) one 24 B.
"""
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F


def bn_graph(fn, affine=True):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = mg.Tensor(1 + rng.standard_normal(3), requires_grad=True) if affine else None
    b = mg.Tensor(rng.standard_normal(3), requires_grad=True) if affine else None
    y, _, _ = fn(x, w, b)
    names = {"x": x, "weight": w, "bias": b} if affine else {"x": x}
    return y, names


def test_graph_is_exported():
    assert mg.graph.count_nodes is not None and callable(mg.graph.to_dot)


def test_nodes_are_in_topological_order_inputs_first():
    y, _ = bn_graph(F.batch_norm_composed)
    order = mg.graph.nodes(y)
    position = {id(ctx): i for i, ctx in enumerate(order)}
    for i, ctx in enumerate(order):
        for p in ctx.parents:
            if p is not None and p._ctx is not None:
                assert position[id(p._ctx)] < i, f"{ctx.fn.__name__} comes before its input"
    assert order[-1] is y.grad_fn


def test_node_counts_composed_against_fused():
    composed, _ = bn_graph(F.batch_norm_composed)
    fused, _ = bn_graph(F.batch_norm_fused)
    names = [ctx.fn.__name__ for ctx in mg.graph.nodes(composed)]
    assert sorted(names) == sorted(["Mean", "Sub", "Mul", "Mean", "Add", "Sqrt", "Div",
                                    "Reshape", "Mul", "Reshape", "Add"])
    assert mg.graph.count_nodes(composed) == 11
    assert mg.graph.count_nodes(fused) == 1
    assert mg.graph.count_nodes(bn_graph(F.batch_norm_composed, affine=False)[0]) == 7


def test_only_ops_on_inputs_that_require_grad_are_recorded():
    x = mg.Tensor(np.ones((4, 3)))               # no requires_grad: nothing is recorded
    y, _, _ = F.batch_norm_composed(x, None, None)
    assert mg.graph.count_nodes(y) == 0
    assert mg.graph.render(y).splitlines()[-1].startswith("0 ops, 1 leaf;")


def test_saved_bytes_batch_norm_by_hand():
    fused, _ = bn_graph(F.batch_norm_fused)
    composed, _ = bn_graph(F.batch_norm_composed)
    assert mg.graph.saved_bytes(fused) == 96 + 24 + 24          # x_hat, inv_std, weight
    assert mg.graph.saved_bytes(composed) == 96 + 24 + 96 + 24  # centred, sqrt, x_hat, weight (view)
    # kept alive: fused x_hat + inv_std; composed every intermediate (4 of (4, 3), 4 of (1, 3))
    assert mg.graph.retained_bytes(fused) == 96 + 24
    assert mg.graph.retained_bytes(composed) == 4 * 96 + 4 * 24


def test_saved_bytes_counts_a_buffer_once():
    x = mg.Tensor(np.ones(3), requires_grad=True)
    assert mg.graph.saved_bytes(x * x) == 24                   # saved twice, one buffer
    assert mg.graph.saved_bytes(x * x.reshape(3)) == 24        # a view of x is x's buffer
    assert mg.graph.retained_bytes(x * x) == 0                 # only the leaf and the output
    assert mg.graph.saved_bytes(x + x) == 0                    # Add saves nothing


def test_render_lists_every_tensor_with_inputs_and_saved():
    y, names = bn_graph(F.batch_norm_fused)
    lines = mg.graph.render(y, names=names).splitlines()
    assert len(lines) == 4 + 1                                 # 3 leaves, 1 op, summary
    op = next(line for line in lines if "BatchNormFused" in line)
    assert "(4, 3)" in op and "float64" in op
    assert re.search(r"<- x, weight, bias, const", op)        # eps is a constant input
    assert "saves new (4, 3), new (1, 3), weight (144 B)" in op
    assert {"leaf x", "leaf weight", "leaf bias"} <= {" ".join(line.split()[1:3]) for line in lines}
    assert lines[-1].startswith("1 op, 3 leaves; saved for backward 144 B")


def test_render_composed_shows_the_shared_input():
    y, names = bn_graph(F.batch_norm_composed)
    text = mg.graph.render(y, names=names)
    square = next(line for line in text.splitlines() if re.search(r"\bMul\b.*saves (\d+), \1 ", line))
    assert "(96 B)" in square                                  # centred * centred: one buffer
    assert text.splitlines()[-1].startswith("11 ops, 3 leaves; saved for backward 240 B")


def parse_dot(text):
    nodes = dict(re.findall(r'^\s+(t\d+) \[label="((?:[^"\\]|\\.)*)"', text, re.M))
    edges = re.findall(r"^\s+(t\d+) -> (t\d+);$", text, re.M)
    return nodes, edges


def test_to_dot_structure():
    y, names = bn_graph(F.batch_norm_composed)
    text = mg.graph.to_dot(y, names=names)
    assert text.startswith('digraph "minigrad" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}") == 2                # the graph and its key
    nodes, edges = parse_dot(text)
    tensors = mg.graph.tensors(y)
    assert len(nodes) == len(tensors) == 11 + 3
    assert sum(label.startswith(("x\\n", "weight\\n", "bias\\n")) for label in nodes.values()) == 3
    expected = sum(p is not None for t in tensors if t._ctx for p in t._ctx.parents)
    assert len(edges) == expected
    assert all(a in nodes and b in nodes for a, b in edges)
    sources = {a for a, _ in edges}
    assert sum(n not in sources for n in nodes) == 1          # only the output feeds nothing


def test_to_dot_draws_a_reused_input_twice_and_escapes_names():
    x = mg.Tensor(np.ones(2), requires_grad=True)
    text = mg.graph.to_dot(x * x, names={'say "x"': x})
    nodes, edges = parse_dot(text)
    assert edges == [("t0", "t1"), ("t0", "t1")]
    assert nodes["t0"] == 'say \\"x\\"\\n(2,) float64'
    assert nodes["t1"] == "Mul\\n(2,) float64"


def test_a_released_graph_cannot_be_walked():
    y, _ = bn_graph(F.batch_norm_fused)
    y.backward(np.ones(y.shape))
    for look in (mg.graph.render, mg.graph.to_dot, mg.graph.count_nodes, mg.graph.saved_bytes):
        with pytest.raises(RuntimeError, match="the graph behind this tensor was freed by backward.*"
                                               "retain_graph=True") as info:
            look(y)
        assert "second time" not in str(info.value)


def test_to_image_draws_with_dot_or_says_what_is_missing(tmp_path, monkeypatch):
    import shutil
    y, _ = bn_graph(F.batch_norm_fused)
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        mg.graph.to_image(y, tmp_path / "g.jpg")
    if shutil.which("dot"):
        path = mg.graph.to_image(y, tmp_path / "g.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"BatchNormFused" in mg.graph.to_image(y, tmp_path / "g.svg").read_bytes()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        mg.graph.to_image(y, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_render_aligns_its_columns():
    y, names = bn_graph(F.batch_norm_composed)
    lines = mg.graph.render(y, names).splitlines()[:-1]    # the last line is the summary
    ops = [line for line in lines if "<- " in line]
    assert len({line.index("<- ") for line in ops}) == 1      # the inputs column lines up
    shapes = [re.search(r"\(\d[\d, ]*\)", line).start() for line in lines]
    assert len(set(shapes)) == 1                             # and so does the shape column


def dashed(text):
    """(source, target) of each saved-for-backward edge."""
    return re.findall(r"^\s+(\w+) -> (t\d+) \[style=dashed", text, re.M)


def test_to_dot_draws_what_each_op_saved():
    """Fused: x_hat (4, 3) and inv_std (1, 3) are new arrays, drawn as notes with their bytes;
    weight is a leaf's data, drawn as an edge from the leaf. Composed: everything it saves is some
    tensor's data (or a view of it), so no note, and one dashed edge per op and saved buffer."""
    y, names = bn_graph(F.batch_norm_fused)
    text = mg.graph.to_dot(y, names=names, key=False)
    nodes, _ = parse_dot(text)
    leaves = {label.split("\\n")[0]: node for node, label in nodes.items()}
    notes = dict(re.findall(r'^\s+(s\d+) \[label="([^"]*)"', text, re.M))
    assert sorted(notes.values()) == ["saved (1, 3) float64\\n24 B", "saved (4, 3) float64\\n96 B"]
    output = leaves["BatchNormFused"]
    assert sorted(dashed(text)) == sorted([(leaves["weight"], output), *((n, output) for n in notes)])
    composed, names = bn_graph(F.batch_norm_composed)
    text = mg.graph.to_dot(composed, names=names, key=False)
    assert "shape=note" not in text
    nodes, _ = parse_dot(text)
    contexts = {node: t._ctx for node, t in zip(sorted(nodes, key=lambda n: int(n[1:])), mg.graph.tensors(composed))}
    per_op = {}
    for source, target in dashed(text):
        assert source in nodes                                  # from a tensor, not a note
        per_op[target] = per_op.get(target, 0) + 1
    expected = {node: len({id(np.asarray(a).base if np.asarray(a).base is not None else a)
                           for a in ctx.saved_tensors if isinstance(a, np.ndarray)})
                for node, ctx in contexts.items() if ctx is not None and ctx.saved_tensors}
    assert per_op == expected and sum(expected.values()) >= 4
    plain = mg.graph.to_dot(composed, names=names, saved=False, key=False)
    assert dashed(plain) == [] and parse_dot(plain) == parse_dot(text)


def test_to_dot_shades_the_output_and_boxes_the_leaves():
    y, names = bn_graph(F.batch_norm_composed)
    text = mg.graph.to_dot(y, names=names, key=False)
    styles = dict(re.findall(r'^\s+(t\d+) \[label="(?:[^"\\]|\\.)*", ([^\]]*)\];$', text, re.M))
    tensors = mg.graph.tensors(y)
    assert [n for n, a in styles.items() if "lightyellow" in a] == [f"t{len(tensors) - 1}"]
    leaves = {f"t{i}" for i, t in enumerate(tensors) if t._ctx is None}
    assert {n for n, a in styles.items() if a.startswith("shape=box")} == leaves and len(leaves) == 3


def test_to_dot_title_and_key():
    y, names = bn_graph(F.batch_norm_fused)
    text = mg.graph.to_dot(y, names=names, title='batch norm, "fused"\n1 op')
    assert 'graph [label="batch norm, \\"fused\\"\\n1 op", labelloc=t' in text
    assert "subgraph cluster_key {" in text and 'label="key"' in text
    for part in ("key_leaf", "key_op", "key_out", "key_note", "key_note -> key_op"):
        assert part in text
    assert re.search(r"^\s+t\d+ -> key_leaf \[style=invis\];$", text, re.M)    # the key under the output
    bare = mg.graph.to_dot(y, names=names, key=False)
    assert "graph [label" not in bare and "key_" not in bare


def test_to_image_passes_title_saved_and_key_to_dot(tmp_path, monkeypatch):
    import shutil
    import subprocess
    y, names = bn_graph(F.batch_norm_fused)
    seen = {}
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(subprocess, "run", lambda cmd, input, check: seen.update(cmd=cmd, text=input.decode()))
    assert mg.graph.to_image(y, tmp_path / "g.svg", names=names, title="T") == tmp_path / "g.svg"
    assert seen["cmd"] == ["/usr/bin/dot", "-Tsvg", "-o", str(tmp_path / "g.svg")]
    assert seen["text"] == mg.graph.to_dot(y, names, "T")
    mg.graph.to_image(y, tmp_path / "g.png", names=names, saved=False, key=False)
    assert seen["text"] == mg.graph.to_dot(y, names, None, saved=False, key=False)


def test_to_image_fails_loudly_when_dot_fails(tmp_path, monkeypatch):
    import shutil
    import subprocess
    y, _ = bn_graph(F.batch_norm_fused)
    monkeypatch.setattr(shutil, "which", lambda name: "/bin/false")   # a dot that exits 1
    with pytest.raises(subprocess.CalledProcessError):
        mg.graph.to_image(y, tmp_path / "g.png")
