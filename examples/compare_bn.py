"""Compare the fused and the composed batch norm: gradients, numerics and cost, side by side.

    python3 examples/compare_bn.py                      # 4x3, 64x128, 256x1024 in float32
    python3 examples/compare_bn.py 32x16x8 --dtype both --no-affine --json /tmp/cmp.json

The measurements live in minigrad/compare.py (importable, returning plain dicts); the table
in minigrad/compare_report.py. PyTorch, when installed, adds a column of its own.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minigrad.compare import main  # noqa: E402

if __name__ == "__main__":
    main()
