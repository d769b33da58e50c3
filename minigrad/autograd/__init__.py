"""Autograd: the graph node and op base class (function.py) and the backward pass (engine.py)."""
