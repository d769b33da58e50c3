"""minigrad.autograd: the graph and the backward pass, and tools that look at or check them.

    function.py   Context (a graph node) and Function.apply (run an op, record it)
    engine.py     topological order, backward, un-broadcasting, accumulation, grad()
    hooks.py      tensor hooks (run by the engine) and the handles that remove them
    anomaly.py    detect_anomaly's checks (NaN/Inf, the line that created an op)
    graph.py      render / to_dot / count_nodes / saved_bytes: look at a graph
    gradcheck.py  gradcheck / gradgradcheck against finite differences
"""
