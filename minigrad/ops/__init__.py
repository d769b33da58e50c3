"""Primitive ops, one Function subclass each, grouped by family (see each module's docstring)."""
