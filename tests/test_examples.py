"""The worked examples in examples/ run and pass, as the README promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import SUITE_TESTS

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def check(impl: str, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "mybackprop", "check", "--impl", impl,
                             "--quiet", "--out", str(out), *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    summary = json.loads((out / "summary.json").read_text()) if result.returncode < 2 else {}
    return result, summary


def test_the_learners_sigmoid_mse_backprop_passes_what_it_declares(tmp_path):
    result, summary = check("examples/learner_sigmoid_mse.py:backprop", tmp_path / "run",
                            "--activations", "sigmoid", "--losses", "mse", "--cases", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["verdicts"]["pass"] == 60


def test_the_learners_backprop_is_checked_on_what_it_declares(tmp_path):
    result, summary = check("examples/learner_sigmoid_mse.py:backprop", tmp_path / "run",
                            "--cases", "40")
    assert result.returncode == 0
    assert summary["verdicts"]["pass"] == 40  # all 40 drawn from sigmoid x mse, none skipped
    assert set(summary["by_activation"]) == {"sigmoid"} and set(summary["by_loss"]) == {"mse"}


def test_autograd_through_the_adapter_passes(tmp_path):
    result, summary = check("examples/autograd_adapter.py:backprop", tmp_path / "run",
                            "--cases", "150", "--seed", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = summary["verdicts"]
    assert verdicts["fail"] == verdicts["error"] == 0
    assert verdicts["pass"] >= 100  # gelu is not declared: those cases are skipped
    assert set(summary["by_activation"]) - {"gelu"} == {
        a for a, counts in summary["by_activation"].items() if counts["pass"]}


def test_the_learners_backprop_under_pytest_impl(pytester):
    result = pytester.runpytest_subprocess(
        "--impl", str(ROOT / "examples" / "learner_sigmoid_mse.py") + ":backprop",
        "--mybackprop-examples", "10", "-p", "no:cacheprovider")
    # sigmoid x mse, mixed networks of sigmoid under mse, large logits and the smallest network
    # in both dtypes; everything else is declared unsupported and skipped.
    result.assert_outcomes(passed=6, skipped=SUITE_TESTS - 6)


def test_the_readme_example_is_complete_and_passes(tmp_path, pytester):
    import re

    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(# my_backprop.py.*?)```", readme, re.S).group(1)
    (tmp_path / "my_backprop.py").write_text(code)
    result, summary = check(f"{tmp_path / 'my_backprop.py'}:backprop", tmp_path / "run",
                            "--activations", "sigmoid", "--losses", "mse", "--cases", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["verdicts"]["pass"] == 30
    suite = pytester.runpytest_subprocess("--impl", f"{tmp_path / 'my_backprop.py'}:backprop",
                                          "--mybackprop-examples", "5", "-p", "no:cacheprovider")
    suite.assert_outcomes(passed=6, skipped=SUITE_TESTS - 6)
