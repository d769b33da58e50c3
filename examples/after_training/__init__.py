"""The parts of the after-training study (run examples/bn_after_training.py): each module holds a
part's measurement (part_*), its table (print_*), the conclusion computed from the table's numbers
(*_conclusion) and its figure (plot_*, FIGURE, figure_setup).

    estimators.py   the EMA against recomputed population statistics (paper, pooled), by batch size
    average.py      averaging two checkpoints of one run, with averaged or recalibrated statistics
    small_batch.py  training with batches of 2 to 128: which statistics at inference
    finetune.py     fine-tuning on shifted data with BN updating, frozen, recalibrated and frozen
    fold.py         nn.utils.fold_batch_norm: exact in eval mode, what it saves
    shared.py       what several parts use: fit, recalibrated, test_accuracy, subset, captions
"""
