"""minigrad.data: bundled data sets, a seeded split and a batch iterator (plain numpy arrays).

    loader.py     DataLoader (reshuffled per epoch, resumable), train_val_split (stratified)
    sampler.py    DistributedSampler: each rank's shard of the indices, for several processes
    digits.py     load_digits: the bundled 8x8 handwritten digits (1797 images)
    mnist1d.py    load_mnist1d: the bundled MNIST-1D signals (4000 + 1000, length 40)
    idx.py        read_idx / load_mnist: MNIST's IDX files from a local folder
    synthetic.py  make_spirals
Nothing here touches Tensor or autograd, and nothing is ever downloaded.
"""
from .digits import load_digits
from .idx import load_mnist, read_idx
from .loader import DataLoader, train_val_split
from .mnist1d import load_mnist1d
from .sampler import DistributedSampler
from .synthetic import make_spirals

__all__ = ["DataLoader", "DistributedSampler", "load_digits", "load_mnist", "load_mnist1d", "make_spirals",
           "read_idx", "train_val_split"]
