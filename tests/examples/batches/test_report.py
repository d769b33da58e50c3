"""examples/batches/report.py: the tables show mean (min-max) of what they are given, and every
sentence of the reading follows the numbers (a recovered share only above the noise)."""
import numpy as np
import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from batches import report  # noqa: E402

CONDITIONS = ((2, None), (32, None), (128, None), (None, 2))


def make(tests, gaps=None, seconds=None):
    """results from {norm: {condition: [test accuracy per seed]}}."""
    results = {}
    for norm, cells in tests.items():
        results[norm] = {}
        for c, accs in cells.items():
            results[norm][c] = [{"test": a, "train_mode": a + (gaps or {}).get((norm, c), 0.0),
                                 "gap": (gaps or {}).get((norm, c), 0.0), "steps": 290,
                                 "batch": 25.6 if c[1] else c[0],
                                 "seconds": (seconds or {}).get(c, 1.0)} for a in accs]
    return results


CONFIG = {"conditions": CONDITIONS, "seeds": (0, 1, 2), "n_test": 1000, "step": 128}
FLAT = {c: [0.80, 0.80, 0.80] for c in CONDITIONS}


def numbers(batch, renorm, slow=None):
    rows = {"batch": batch, "renorm": renorm, **({"renorm-0.01": slow} if slow else {})}
    return make({**rows, "group": FLAT, "layer": FLAT, "none": FLAT},
                gaps={("batch", (2, None)): -0.05, ("batch", (None, 2)): -0.03},
                seconds={(2, None): 2.0, (128, None): 0.1})


BATCH = {(2, None): [0.70, 0.71, 0.72], (32, None): [0.90, 0.91, 0.92], (128, None): [0.90, 0.91, 0.92],
         (None, 2): [0.80, 0.81, 0.82]}
RENORM = {(2, None): [0.85, 0.86, 0.87], (32, None): [0.90, 0.90, 0.90], (128, None): [0.91, 0.91, 0.91],
          (None, 2): [0.88, 0.88, 0.88]}


def test_tables_show_mean_and_range_per_cell():
    lines = report.tables(numbers(BATCH, RENORM), CONFIG)
    assert lines[0].startswith("| test accuracy, % (eval mode), seeds 0,1,2: mean (min-max) | b = 2 | b = 32 |")
    assert lines[0].endswith("| 2 classes per batch |")
    assert lines[2] == "| BatchNorm | 71.0 (70.0-72.0) | 91.0 (90.0-92.0) | 91.0 (90.0-92.0) | 81.0 (80.0-82.0) |"
    gap_rows = [line for line in lines if line.startswith("| BatchNorm |")]
    assert gap_rows[1] == "| BatchNorm | -5.0 (-5.0..-5.0) | +0.0 (+0.0..+0.0) | +0.0 (+0.0..+0.0) | -3.0 (-3.0..-3.0) |"
    assert gap_rows[2] == "| BatchNorm | 2.00 | 1.00 | 0.10 | 1.00 |"


def test_the_reading_follows_the_numbers():
    lines = report.reading(numbers(BATCH, RENORM), CONFIG)
    text = "\n".join(lines)
    # b = 2: BN 91 -> 71 (-20), BRN 86 (-5 against BN's 91): 75% recovered
    assert "against BatchNorm at b = 128 (91.0%): b = 2: BatchNorm -20.0, BatchRenorm -5.0 (75% of BatchNorm's " \
           "loss recovered)" in text
    assert "b = 32: BatchNorm -0.0, BatchRenorm -1.0;" in text or "b = 32: BatchNorm -0.0, BatchRenorm -1.0." in text
    # 2 classes against b = 32: BN 91 -> 81 (10), BRN 90 -> 88 (2): 80% recovered
    assert "2 classes per batch (about 26 samples each) against i.i.d. b = 32: BatchNorm loses 10.0 points, " \
           "BatchRenorm 2.0 (80% of BatchNorm's loss recovered); BatchNorm's training mode is -3.0 points" in text
    assert "BatchRenorm's training mode is at most 0.0 points (mean) from its eval mode in every condition (r and d " \
           "inside their final bounds" in text and "BatchNorm's gap reaches 5.0 points" in text
    assert "at most 0 of 1000 test samples" in text and "spread over seeds of up to 2.0 points" in text
    assert "BatchNorm's lead: BatchRenorm +0.0, GroupNorm (5 groups) +11.0" in text
    assert "batches of 2 takes 20x as long as in batches of 128 (BatchNorm): 64 forward and backward calls per " \
           "step instead of 1" in text


def test_no_share_is_claimed_below_the_noise_and_a_worse_renorm_is_called_so():
    small = {**BATCH, (2, None): [0.895, 0.90, 0.905]}           # BN loses 1 point: within the 2-point spread
    text = "\n".join(report.reading(numbers(small, RENORM), CONFIG))
    assert "b = 2: BatchNorm -1.0, BatchRenorm -5.0;" in text and "recovered)" not in text.split("\n")[0]
    worse = {**RENORM, (2, None): [0.60, 0.60, 0.60]}
    assert "b = 2: BatchNorm -20.0, BatchRenorm -31.0 (no better);" in report.reading(numbers(BATCH, worse), CONFIG)[0]
    better = {**RENORM, (2, None): [0.93, 0.93, 0.93]}
    assert "BatchRenorm +2.0 (all of BatchNorm's loss recovered)" in report.reading(numbers(BATCH, better), CONFIG)[0]
    clipped = numbers(BATCH, RENORM)
    clipped["renorm"][(2, None)][0]["gap"] = 0.03
    assert "(r or d still meet their bounds" in "\n".join(report.reading(clipped, CONFIG))


def test_each_batch_renorm_row_is_read_against_batch_norm():
    slow = {**RENORM, (2, None): [0.81, 0.81, 0.81], (None, 2): [0.85, 0.86, 0.87]}
    lines = report.reading(numbers(BATCH, RENORM, slow), CONFIG)
    assert "b = 2: BatchNorm -20.0, BatchRenorm -5.0 (75% of BatchNorm's loss recovered), BatchRenorm, momentum " \
           "0.01 -10.0 (50% of BatchNorm's loss recovered);" in lines[0]
    assert "BatchRenorm 2.0 (80% of BatchNorm's loss recovered), BatchRenorm, momentum 0.01 4.0 (60% of" in lines[1]
    table = report.tables(numbers(BATCH, RENORM, slow), CONFIG)
    assert table[4].startswith("| BatchRenorm, momentum 0.01 | 81.0 (81.0-81.0) |")


def test_rounding_noise_is_the_largest_within_seed_difference_of_the_per_sample_norms():
    group = {**FLAT, (2, None): [0.80, 0.803, 0.80]}
    results = make({"group": group, "layer": FLAT, "none": FLAT})
    assert report.rounding_noise(results, CONFIG) == pytest.approx(0.003)
    assert report.seed_spread(results, CONFIG) == pytest.approx(0.003)
    assert np.isclose(report.mean(results, "group", (2, None)), 0.801)
    by_seed = make({"group": {c: [0.80, 0.85, 0.90] for c in CONDITIONS}})   # seeds apart, conditions alike
    assert report.rounding_noise(by_seed, CONFIG) == 0 and report.seed_spread(by_seed, CONFIG) == pytest.approx(0.1)


def test_exactly_no_loss_is_all_recovered_and_rows_may_be_missing():
    assert report.recovered(0.2, 0.0, 0.01) == " (all of BatchNorm's loss recovered)"
    assert report.recovered(0.2, 0.05, 0.01) == " (75% of BatchNorm's loss recovered)"
    assert report.recovered(0.2, 0.2, 0.01) == " (no better)" and report.recovered(0.01, 0.0, 0.01) == ""
    lines = report.reading(make({"batch": BATCH, "group": FLAT, "none": FLAT}), CONFIG)   # no BatchRenorm row
    assert not any("BatchRenorm" in line for line in lines)
    assert lines[0].startswith("GroupNorm (5 groups), none: within a seed")
