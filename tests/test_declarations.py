"""A candidate's declaration is what the run checks: its cases are drawn from it, a run that
checks nothing never passes, a refusal is a skip, and --impl imports the way Python does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import SUITE_TESTS

import mybackprop as mb
from mybackprop.harness.cases import CaseConfig, CaseSpace, sample_config
from mybackprop.harness.contract import Supports
from mybackprop.spec.problem import Architecture, Layer, SpecError

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
LEARNERS = Path(__file__).parent / "learners"
COMMAND = str(Path(sys.executable).parent / "mybackprop")  # the console script, as users run it


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]


def test_the_readme_example_checks_its_declared_space(tmp_path):
    code = re.search(r"```python\n(# my_backprop.py.*?)```", (ROOT / "README.md").read_text(),
                     re.S).group(1)
    (tmp_path / "my_backprop.py").write_text(code)
    result = run("check", "--impl", "my_backprop.py:backprop", "--cases", "500", "--out", "run",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["verdicts"]["pass"] == 500 and summary["verdicts"]["skipped"] == 0
    assert summary["status"]["headline"] == "PASS: 500 checked cases pass"
    assert {a for r in records(tmp_path / "run") for a in r["activations"]} == {"sigmoid"}


def test_options_that_leave_a_candidate_nothing_are_one_line_naming_both(tmp_path):
    result = run("check", "--impl", f"{LEARNERS / 'two_layer.py'}:backprop",
                 "--losses", "mse,huber", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "the run draws losses mse, huber" in result.stderr
    assert "declares softmax_cross_entropy: nothing checked" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_candidate_that_refuses_everything_checked_nothing_and_never_passes(tmp_path):
    result = run("check", "--impl", f"{LEARNERS / 'refuses.py'}:everything", "--cases", "20",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOTHING CHECKED" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"]["status"] == "nothing_checked"
    assert summary["verdicts"]["skipped"] == 20
    assert "NOTHING CHECKED" in (tmp_path / "run" / "report.md").read_text().splitlines()[2]
    reasons = {r["reason"] for r in records(tmp_path / "run")}
    assert reasons == {"refused: only the MNIST network, 784-100-10"}
    assert not list((tmp_path / "run").glob("repro/*.py"))  # a refusal has no repro script


def test_a_refusal_is_a_skip_and_the_rest_is_checked(tmp_path):
    result = run("check", "--impl", f"{LEARNERS / 'refuses.py'}:deep_networks", "--cases", "40",
                 "--out", str(tmp_path / "run"))
    by_verdict = {}
    for record in records(tmp_path / "run"):
        by_verdict.setdefault(record["verdict"], []).append(record)
    assert set(by_verdict) == {"pass", "skipped"}, result.stdout
    assert all(r["depth"] == 1 for r in by_verdict["pass"])
    assert {r["reason"] for r in by_verdict["skipped"]} == {
        "refused: raised NotImplementedError: more than one layer"}
    assert result.returncode == 0  # what was checked passed; "mostly skipped" is said
    assert "Mostly skipped" in result.stdout


def test_a_fixed_two_layer_network_is_checked_as_declared_and_its_bug_diagnosed(tmp_path):
    good = run("check", "--impl", f"{LEARNERS / 'two_layer.py'}:backprop", "--cases", "100",
               "--out", str(tmp_path / "good"))
    assert good.returncode == 0, good.stdout + good.stderr
    verdicts = {r["verdict"] for r in records(tmp_path / "good")}
    assert verdicts == {"pass"}  # no error from a network it was not written for, no skip
    for record in records(tmp_path / "good"):
        layers = record["config"]["architecture"]["layers"]
        assert [layer["activation"] for layer in layers] == ["relu", "identity"]
        assert all(layer["bias"] for layer in layers)
    bad = run("check", "--impl", f"{LEARNERS / 'two_layer.py'}:buggy", "--cases", "60",
              "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1
    failing = [r for r in records(tmp_path / "bad") if r["verdict"] != "pass"]
    assert failing and {r["verdict"] for r in failing} == {"fail"}
    assert {r["diagnosis"]["pattern"] for r in failing} == {"constant_factor"}
    assert all("dW1" in r["diagnosis"]["summary"] for r in failing)


def test_the_fixed_network_under_pytest(pytester):
    result = pytester.runpytest_subprocess("--impl", f"{LEARNERS / 'two_layer.py'}:buggy",
                                           "-k", "test_mixed_networks", "--mybackprop-examples",
                                           "10", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=len(mb.LOSSES) - 1)  # it declares one loss
    result.stdout.fnmatch_lines(["*diagnosis (constant_factor): dW1 is 1/N times*"])
    good = pytester.runpytest_subprocess("--impl", f"{LEARNERS / 'two_layer.py'}:backprop",
                                         "--mybackprop-examples", "10", "-p", "no:cacheprovider")
    good.assert_outcomes(passed=8, skipped=SUITE_TESTS - 8)


def test_impl_imports_as_python_does(tmp_path):
    folder = tmp_path / "homework"
    folder.mkdir()
    (folder / "layers.py").write_text("from mybackprop import matrix as backward\n")
    (folder / "net.py").write_text("from layers import backward\n\n"
                                   "def backprop(problem):\n    return backward(problem)\n")
    for cwd, impl in ((tmp_path, "homework/net.py:backprop"), (folder, "net:backprop")):
        result = run("check", "--impl", impl, "--cases", "5", "--out", str(tmp_path / impl[:3]),
                     cwd=cwd)
        assert result.returncode == 0, result.stderr
    missing = run("check", "--impl", "nowhere:backprop", cwd=folder)
    assert missing.returncode == 2
    assert f"no module named 'nowhere' in {folder}" in missing.stderr


@pytest.mark.parametrize("source, message", [
    ("def backprop(X, Y, weights, biases):\n    pass\n",
     "backprop(X, Y, weights, biases) cannot be called with one argument: a candidate is called"
     " as candidate(problem)"),
    ("class backprop:\n    def __init__(self, sizes):\n        pass\n", "is a class"),
])
def test_a_wrong_signature_is_one_line_before_any_case(tmp_path, source, message):
    (tmp_path / "net.py").write_text(source)
    result = run("check", "--impl", "net.py:backprop", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_architecture_options_draw_what_they_say(tmp_path):
    result = run("check", "--cases", "60", "--depth", "2-3", "--bias", "always",
                 "--hidden-activations", "relu,tanh", "--output-activations", "identity",
                 "--batch", "4-8", "--width", "3-5", "--space", "ordinary",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    for record in records(tmp_path / "run"):
        layers = record["config"]["architecture"]["layers"]
        assert 3 <= record["config"]["architecture"]["input_width"] <= 5
        assert all(3 <= layer["width"] <= 5 for layer in layers)
        assert 2 <= len(layers) <= 3 and 4 <= record["batch_size"] <= 8
        assert all(layer["bias"] for layer in layers)
        assert {layer["activation"] for layer in layers[:-1]} <= {"relu", "tanh"}
        assert layers[-1]["activation"] == "identity"
        assert 0.1 <= record["config"]["input_scale"] <= 10
        assert record["config"]["output_scale"] == 1.0
    run_file = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_file["space"]["input_log10_scale"] == [-1.0, 1.0]
    resumed = run("check", "--cases", "60", "--depth", "2-3", "--bias", "always",
                  "--hidden-activations", "relu,tanh", "--output-activations", "identity",
                  "--batch", "4-8", "--width", "3-5", "--out", str(tmp_path / "run"),
                  "--resume")
    assert resumed.returncode == 2 and "other settings (space)" in resumed.stderr


def test_exact_widths_and_a_declared_batch_range():
    space = Supports(widths=(4, 8, 3), batch=(2, 5), bias=False).within(CaseSpace())
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = sample_config(rng, space)
        assert config.architecture.widths == (4, 8, 3) and 2 <= config.batch_size <= 5
        assert not any(layer.bias for layer in config.architecture.layers)


def test_within_keeps_only_what_both_sides_allow():
    space = CaseSpace(activations=("relu", "tanh", "identity"), max_depth=4)
    supports = Supports(hidden_activations={"relu"}, output_activations={"identity", "softmax"},
                        depth=(2, 6), max_batch=10, dtypes={"float64"})
    mine = supports.within(space, "net")
    assert mine.hidden == ("relu",) and mine.output == ("identity",)
    assert mine.depths() == (2, 4) and mine.max_batch == 10 and mine.dtypes == ("float64",)
    # a candidate that takes everything (a penalty and any parameter too): the run's
    assert Supports(l2=None, l2_half=None, l2_biases=None, leaky_slope=None,
                    elu_alpha=None).within(space) == space
    # one that declares nothing has the table's slope and alpha: only those are drawn for it
    plain = Supports().within(space)
    assert (plain.leaky_slope, plain.elu_alpha) == ((0.01,), (1.0,))
    assert Supports(leaky_slope=0.2).within(space).leaky_slope == (0.2,)
    with pytest.raises(SpecError, match="the run draws leaky_slope 0.1 and net declares 0.2: "
                                        r"nothing checked; draw it \(--leaky-slope\)"):
        Supports(leaky_slope=0.2).within(
            CaseSpace(activations=("leaky_relu",), leaky_slope=(0.1,)), "net")
    with pytest.raises(SpecError, match="the run draws output activations relu, tanh, "
                                        "identity and net declares softmax"):
        Supports(output_activations={"softmax"}).within(space, "net")
    with pytest.raises(SpecError, match="nothing checked"):
        Supports(depth=5).within(space, "net")


def old_sample_config(rng: np.random.Generator, space: CaseSpace) -> CaseConfig:
    """The draw as it was before the architecture fields existed (the code of that commit)."""
    def choice(options):
        return options[int(rng.integers(len(options)))]

    depth = int(rng.integers(1, space.max_depth + 1))
    layers = tuple(Layer(int(rng.integers(1, space.max_width + 1)), choice(space.activations),
                         bool(rng.integers(2))) for _ in range(depth))
    arch = Architecture(int(rng.integers(1, space.max_width + 1)), layers,
                        choice(space.losses), choice(space.reductions))
    lo, hi = space.input_log10_scale
    return CaseConfig(arch, int(rng.integers(1, space.max_batch + 1)), choice(space.dtypes),
                      float(10 ** rng.uniform(lo, hi)),
                      float(10 ** rng.integers(0, space.max_output_log10_scale + 1)),
                      int(rng.integers(2**32)), space.kinks)


# The losses, the penalty and the activations' parameters added since change the default
# space's draws; a space of what existed then (the losses of that time, no penalty, the fixed
# slope and alpha) still draws exactly what it drew.
THEN = {"losses": ("mse", "softmax_cross_entropy", "binary_cross_entropy_with_logits", "huber"),
        "l2": (0.0,), "leaky_slope": (0.01,), "elu_alpha": (1.0,)}


@pytest.mark.parametrize("space", [CaseSpace(**THEN), CaseSpace(
    activations=("relu", "tanh"), max_depth=2, dtypes=("float32",), **THEN)])
def test_the_default_architecture_fields_draw_what_was_drawn_before(space):
    new, old = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(300):
        assert sample_config(new, space) == old_sample_config(old, space)


def test_the_api_says_nothing_checked_too(tmp_path):
    checked = mb.check(f"{LEARNERS / 'refuses.py'}:everything", cases=5, quiet=True,
                       out=tmp_path / "run")
    assert checked.status == "nothing_checked" and checked.failed == 0
