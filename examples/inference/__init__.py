"""The moving-average study's report and figures (run examples/bn_inference.py, which measures).

    report.py   labels, the per-epoch tables, the overview and the summary computed from them
    figures.py  accuracy per epoch, the EMA against population statistics, accuracy by batch size
"""
