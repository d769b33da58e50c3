"""Look at the graph behind a tensor: its nodes, what they save, as text or as Graphviz DOT.

A node is a Context (``tensor.grad_fn``): one op applied to parent Tensors. Only ops with an
input that requires grad are recorded, so make the inputs you care about require grad. The
walk reuses the engine's ``topological_order``; nothing here changes the graph. After a
``backward()`` without ``retain_graph`` the graph is released and cannot be walked.
"""
import numpy as np

from .engine import topological_order


def tensors(tensor):
    """Every Tensor in the graph behind ``tensor`` (leaves and op outputs), inputs first."""
    try:
        return topological_order([tensor])[::-1]  # the engine's order is the backward order
    except RuntimeError:                          # a node whose links backward released
        raise RuntimeError("the graph behind this tensor was freed by backward(); to look at it "
                           "afterwards, pass retain_graph=True to backward()") from None


def nodes(tensor):
    """The Contexts (graph nodes) behind ``tensor`` in topological order, inputs first."""
    return [t._ctx for t in tensors(tensor) if t._ctx is not None]


def count_nodes(tensor):
    """How many ops the forward recorded to produce ``tensor``."""
    return len(nodes(tensor))


def _owner(array):
    """The array that owns the memory (a view's base), so views of one buffer count once."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _saved_arrays(ctx):
    """The arrays a node saved for backward (None entries, e.g. an absent weight, skipped)."""
    return [a for a in (ctx.saved_tensors or ()) if isinstance(a, np.ndarray)]


def saved_bytes(tensor):
    """Bytes of the arrays the graph's nodes saved for backward (``ctx.saved_tensors``).

    Counted: each distinct buffer once, at its owner's size (``a`` and ``a.reshape(...)`` are
    one buffer; an array saved by two nodes counts once). Also counted: saved arrays that are
    an input's or an intermediate's data, which the graph holds anyway (see ``retained_bytes``).
    """
    owners = {id(o): o for ctx in nodes(tensor) for o in map(_owner, _saved_arrays(ctx))}
    return sum(o.nbytes for o in owners.values())


def retained_bytes(tensor):
    """Bytes the graph keeps alive until backward, beyond the leaves and ``tensor`` itself.

    A node holds its parent Tensors (``ctx.parents``), so every intermediate result stays in
    memory, whether or not its backward needs it, plus whatever was saved. Counted: distinct
    buffers of saved arrays and of intermediate outputs; not counted: leaf inputs and the
    output, which the caller holds anyway.
    """
    everything = tensors(tensor)
    held = {id(_owner(t.data)) for t in everything if t._ctx is None or t is tensor}
    owners = {id(_owner(t.data)): _owner(t.data) for t in everything if t._ctx is not None}
    owners.update((id(o), o) for ctx in nodes(tensor) for o in map(_owner, _saved_arrays(ctx)))
    return sum(o.nbytes for key, o in owners.items() if key not in held)


def _numbered(tensor, names):
    """(all tensors inputs first, {id(tensor): label}, {id(buffer owner): label}) for printing.

    A tensor's label is its name from ``names`` if it has one, else its index in the order.
    """
    everything = tensors(tensor)
    by_id = {id(t): name for name, t in (names or {}).items()}
    labels, buffers = {}, {}
    for i, t in enumerate(everything):
        labels[id(t)] = by_id.get(id(t), str(i))
        buffers.setdefault(id(_owner(t.data)), labels[id(t)])
    return everything, labels, buffers


def _shape(t):
    return "(" + ", ".join(map(str, t.shape)) + ("," if t.ndim == 1 else "") + ")"


def render(tensor, names=None):
    """The graph as text, one line per tensor in topological order (inputs first).

    ``names`` maps a name to a Tensor (like torchviz's ``params``) to label leaves. Each op line:
    index, op, output shape and dtype, its inputs (``const`` for an input that needs no grad),
    and what it saved for backward: an index where the saved array is that tensor's data (or a
    view of it; held by the graph anyway), a shape where it is a new array, and the bytes.
    """
    everything, labels, buffers = _numbered(tensor, names)
    rows = []
    for i, t in enumerate(everything):
        ctx = t._ctx
        if ctx is None:
            name = "" if labels[id(t)] == str(i) else labels[id(t)]
            rows.append((str(i), "leaf " + name, _shape(t), str(t.dtype), "", ""))
            continue
        inputs = ", ".join("const" if p is None else labels[id(p)] for p in ctx.parents)
        saved = _saved_arrays(ctx)
        what = [buffers.get(id(_owner(a)), "new " + _shape(a)) for a in saved]
        size = sum({id(_owner(a)): _owner(a).nbytes for a in saved}.values())
        rows.append((str(i), ctx.fn.__name__, _shape(t), str(t.dtype), "<- " + inputs,
                     f"saves {', '.join(what)} ({size} B)" if saved else ""))
    widths = [max(map(len, column)) for column in zip(*rows)][:-1]    # the last column unpadded
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    lines = [line.rstrip() for line in lines]
    ops = count_nodes(tensor)
    leaves = len(everything) - ops
    lines.append(f"{ops} op{'s' * (ops != 1)}, {leaves} lea{'ves' if leaves != 1 else 'f'}; saved for "
                 f"backward {saved_bytes(tensor)} B; kept alive until backward {retained_bytes(tensor)} B "
                 f"(saved + intermediates, beyond the leaves and the output)")
    return "\n".join(lines)


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(tensor, names=None, title=None, saved=True, key=True):
    """The graph as Graphviz DOT text: ``dot -Tsvg graph.dot > graph.svg`` draws it.

    One node per leaf (a box, named from ``names`` if given) and per op (an ellipse; the output
    is shaded), labelled with shape and dtype, and one edge from each input to the op that uses
    it (two if it is used twice, as in x * x). Inputs that need no grad (constants) are not
    drawn. With ``saved``, what each op saved for backward is drawn too, as dashed red edges: from
    the tensor whose data (or a view of it) was saved, or from a note for a new array (its shape,
    dtype and bytes; one note per buffer, however many ops saved it). ``title`` is drawn above
    the graph (a newline in it starts a new line); ``key`` adds a legend of the shapes and edges
    under it. Produced as plain text: graphviz is needed only to draw it.
    """
    everything, labels, _ = _numbered(tensor, names)
    ids = {id(t): f"t{i}" for i, t in enumerate(everything)}
    lines = ['digraph "minigrad" {', '  node [fontname="monospace"];', '  edge [fontname="sans-serif", fontsize=11];']
    if title is not None:                          # a "\n" in the title starts a new line
        text = "\\n".join(_escape(line) for line in title.split("\n"))
        lines.append(f'  graph [label="{text}", labelloc=t, fontsize=18, fontname="sans-serif"];')
    for i, t in enumerate(everything):
        if t._ctx is None:
            head = "leaf" if labels[id(t)] == str(i) else labels[id(t)]
            attrs = "shape=box, style=filled, fillcolor=lightblue"
        else:
            head = t._ctx.fn.__name__
            attrs = "shape=ellipse" + (", style=filled, fillcolor=lightyellow" if t is tensor else "")
        label = _escape(head) + "\\n" + _escape(f"{_shape(t)} {t.dtype}")  # \n: a DOT line break
        lines.append(f'  {ids[id(t)]} [label="{label}", {attrs}];')
    for t in everything:
        for p in (t._ctx.parents if t._ctx is not None else ()):
            if p is not None:
                lines.append(f"  {ids[id(p)]} -> {ids[id(t)]};")
    if saved:
        lines += _saved_lines(everything, ids)
    if key:                                        # below the output, so the image stays narrow
        lines += _KEY + [f"  {ids[id(tensor)]} -> key_leaf [style=invis];"]
    lines.append("}")
    return "\n".join(lines)


def _saved_lines(everything, ids):
    """DOT lines for what each op saved: a dashed edge from the tensor that holds the buffer, or
    from a note node (s0, s1, ...) for an array no tensor holds."""
    holders = {}                                   # buffer owner -> the first tensor node holding it
    for t in everything:
        holders.setdefault(id(_owner(t.data)), ids[id(t)])
    notes, lines = {}, []
    for t in everything:
        if t._ctx is None:
            continue
        for owner in {id(o): o for o in map(_owner, _saved_arrays(t._ctx))}.values():
            source = holders.get(id(owner))
            if source is None:
                if id(owner) not in notes:
                    notes[id(owner)] = f"s{len(notes)}"
                    text = _escape(f"saved {_shape(owner)} {owner.dtype}") + "\\n" + f"{owner.nbytes} B"
                    lines.append(f'  {notes[id(owner)]} [label="{text}", shape=note, style=filled, '
                                 f'fillcolor="#fde2e2", color="#c0392b", fontsize=11];')
                source = notes[id(owner)]
            lines.append(f'  {source} -> {ids[id(t)]} [style=dashed, color="#c0392b", arrowhead=odot];')
    return lines


# The key drawn under the graph: the node shapes and the two kinds of edge.
_KEY = ['  subgraph cluster_key {', '    label="key"; fontname="sans-serif"; style=rounded; color=gray;',
        '    key_leaf [label="leaf tensor\\n(shape) dtype", shape=box, style=filled, fillcolor=lightblue];',
        '    key_op [label="op: its output\\n(shape) dtype", shape=ellipse];',
        '    key_out [label="the output", shape=ellipse, style=filled, fillcolor=lightyellow];',
        '    key_note [label="a new array\\n(no tensor\'s data)", shape=note, style=filled, '
        'fillcolor="#fde2e2", color="#c0392b", fontsize=11];',
        '    key_leaf -> key_op [label=" input"];',
        '    key_note -> key_op [label=" saved for backward\\n (from a note or\\n a tensor\'s data)", style=dashed, '
        'color="#c0392b", arrowhead=odot];',
        '    key_op -> key_out [label=" input"];',
        '  }']


def to_image(tensor, path, names=None, title=None, saved=True, key=True):
    """Draw the graph behind ``tensor`` into ``path`` (.png, .svg or .pdf) with Graphviz's ``dot``:
    ``to_dot``'s drawing, with its ``title`` above, what each op saved, and the key.

    Needs the ``dot`` program (Debian/Ubuntu: ``apt-get install graphviz``); without it a
    RuntimeError says so before anything is written. Returns ``path``.
    """
    import os
    import shutil
    import subprocess
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"to_image: the path must end in .png, .svg or .pdf, got {os.fspath(path)!r}")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("to_image needs Graphviz's `dot` program (apt-get install graphviz); "
                           "mg.graph.to_dot(tensor) gives the text without it")
    text = to_dot(tensor, names, title, saved, key)
    subprocess.run([dot, f"-T{fmt}", "-o", os.fspath(path)], input=text.encode(), check=True)
    return path
