"""The batch-norm comparison tool, an application on top of minigrad (run examples/compare_bn.py).

    cases.py         the measurements of one case: agreement, truth, numerics, cost
    numbers.py       differences, relative errors, medians, strict JSON
    report.py        a case in words: the tables and the verdict
    second_order.py  Hessian-vector products: fused, composed, and a naive fused op
    folding.py       batch norm folded into the Linear/Conv before it: equal in eval, cost
    layers.py        BatchRenorm, GroupNorm, LayerNorm: fused vs composed (and torch), cost
    torch_column.py  the optional PyTorch column (torch imported lazily)
"""
