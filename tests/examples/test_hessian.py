"""examples/hessian.py: second derivatives through composed and fused batch norm agree and are right."""
import pytest

from .loader import load_example


@pytest.fixture(scope="module")
def hessian():
    return load_example("hessian")


def test_hvp_matches_finite_differences_and_fused_matches_composed(hessian, capsys):
    r = hessian.main(["--batch", "12", "--hidden", "6", "--seed", "3"])
    for name in ("composed", "fused"):
        assert r[name]["hvp_vs_fd"] < 1e-6          # H·v against differences of gradients
    assert r["hvp_fused_vs_composed"] < 1e-10       # same second derivatives, two graphs
    assert r["penalty_fused_vs_composed"] < 1e-10
    assert abs(r["fused"]["penalty_loss"] - r["composed"]["penalty_loss"]) < 1e-12
    out = capsys.readouterr().out
    assert "Hessian-vector product" in out and "composed" in out and "fused" in out


def test_hvp_is_not_trivially_zero(hessian):
    r = hessian.run(batch=10, hidden=5, seed=1)
    assert max(abs(h).max() for h in r["fused"]["hvp"]) > 1e-3


@pytest.mark.parametrize("args, message", [
    (["--batch", "1"], "argument --batch: expected an integer >= 2, got '1'"),
    (["--hidden", "0"], "argument --hidden: expected an integer >= 1"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0"),
])
def test_bad_arguments_exit_with_a_message(hessian, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        hessian.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sizes_too_big_for_memory_are_one_line(hessian, capsys):
    with pytest.raises(SystemExit) as exit_info:
        hessian.main(["--hidden", "3000000000"])
    assert exit_info.value.code == 2
    assert "--batch 32 --hidden 3000000000 needs" in capsys.readouterr().err
