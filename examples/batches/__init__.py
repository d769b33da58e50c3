"""The small-batch study's parts (examples/small_batches.py is its command line and training loop):
orders.py (which samples form each batch), score.py (test accuracy in both modes), report.py (the
tables and their reading against the papers) and figure.py (the committed figure)."""
