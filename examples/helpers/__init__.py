"""What the examples share, one module per job. Importing this package first pins BLAS to one
thread (threads.py) before numpy loads, so every example starts with ``import helpers``.

    threads.py   one BLAS thread unless --threads N: the one place it is set, and why
    cli.py       argument types, the --threads flag, checks before any work (outputs, memory)
    models.py    the data splits, the MLP and the CNNs, optimizers, the cosine schedule
    runs.py      one training run's record: table, metrics file, checkpoints, resume, bar
    progress.py  progress bars: one per run, a batch bar only for long epochs
    plots.py     matplotlib, one figure width, ONE figure saver, training curves
    bn_stats.py  batch-norm layers and the gap between two models' running statistics
    ranks.py     several processes (mpiexec): rank 0 alone prints and writes, every rank exits alike
"""
from . import threads  # noqa: F401  (first: before anything imports numpy)
