"""bn_distributed.py's parts: report.py (table, conclusions, figure)."""
