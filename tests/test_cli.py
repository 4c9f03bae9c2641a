"""The command line as a user runs it: a real process, real oracles, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mybackprop as mb

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mybackprop", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_check_300_cases_passes_and_covers_the_whole_table(tmp_path):
    result = run("check", "--cases", "300", "--seed", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["verdicts"]["pass"] == 300
    for key, names in (("by_activation", mb.ACTIVATIONS), ("by_loss", mb.LOSSES),
                       ("by_reduction", mb.REDUCTIONS), ("by_dtype", mb.DTYPES)):
        assert set(summary[key]) == set(names), key
    assert len(read_jsonl(tmp_path / "run" / "cases.jsonl")) == 300
    assert "**PASS: 300 checked cases pass**" in (tmp_path / "run" / "report.md").read_text()


def test_broken_candidate_fails_on_the_affected_parameters(tmp_path):
    # float64: in float32 a saturated network can have true gradients (1e-137) below the dtype's
    # range, where any answer, right or N times too big, is 0. test_verdicts covers float32.
    result = run("check", "--impl", "tests/candidates.py:dw_not_averaged", "--cases", "30",
                 "--reductions", "mean,batch_mean", "--dtype", "float64",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "run" / "cases.jsonl")
    whole = 0
    for record in records:
        failing = {c["name"] for c in record["comparisons"] if not c["passed"]}
        weights = {f"dW{l}" for l in range(1, record["depth"] + 1)}
        if record["batch_size"] == 1:  # N = 1: not dividing by N is harmless
            assert record["verdict"] == "pass"
        elif record["verdict"] == "fail":  # only the weights: never db or dX
            assert failing and failing <= weights, failing
            whole += failing == weights
        else:  # a saturated network whose every gradient is below its tolerance: N x 0 is 0
            assert record["verdict"] == "pass"
            assert all(c["max_abs_err"] <= c["tolerance"] for c in record["comparisons"])
    # A layer behind saturated units can carry a gradient of exactly 0, which N times is still
    # right; in most cases every dW_l shows the mistake.
    assert whole >= 0.7 * sum(r["batch_size"] > 1 for r in records)
    # Each kind of mistake once, with its count and its first case (--verbose: every case).
    assert "fail, constant_factor: " in result.stdout and "first: case " in result.stdout


def test_same_seed_gives_the_same_cases(tmp_path):
    for name in ("a", "b"):
        assert run("check", "--cases", "5", "--seed", "7", "--quiet",
                   "--out", str(tmp_path / name)).returncode == 0
    configs = [[r["config"] for r in read_jsonl(tmp_path / name / "cases.jsonl")]
               for name in ("a", "b")]
    assert configs[0] == configs[1]
    other = run("check", "--cases", "5", "--seed", "8", "--quiet", "--out", str(tmp_path / "c"))
    assert other.returncode == 0
    assert [r["config"] for r in read_jsonl(tmp_path / "c" / "cases.jsonl")] != configs[0]


@pytest.mark.parametrize("args, message", [
    (["check", "--activations", "rleu"], "unknown activation 'rleu'"),
    (["check", "--losses", "mse,hinge"], "unknown loss 'hinge'"),
    (["check", "--impl", "no_such_module:backprop"], "no module named 'no_such_module'"),
    # found after the pool's workers have started: they are stopped, the error is still one line
    (["check", "--workers", "2", "--impl", "no_such_module:backprop"],
     "no module named 'no_such_module'"),
    (["check", "--workers", "0"], "--workers is 0"),
    (["check", "--impl", "tests/candidates.py:nope"], "has no attribute 'nope'"),
    (["check", "--impl", "backprop"], "is not MODULE:ATTR"),
    (["check", "--cases", "0"], "--cases is 0"),
    (["check", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["check", "--max-width", "0"], "max_width is 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_command_line_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_help_imports_neither_torch_nor_jax():
    code = ("import sys\nfrom mybackprop.cli import main\n"
            "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'jax', 'hypothesis', 'matplotlib', 'jinja2', "
            "'distributed') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert "--impl MODULE:ATTR" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("level", ["element", "vector"])
def test_each_built_in_level_passes_a_run(tmp_path, level):
    result = run("check", "--impl", f"mybackprop:{level}", "--cases", "40", "--seed", "4",
                 "--quiet", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["verdicts"]["pass"] == 40


def test_kink_mode_with_leaky_relu_names_the_convention_and_never_fails(tmp_path):
    result = run("check", "--activations", "leaky_relu", "--kinks", "hit", "--cases", "25",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "run" / "cases.jsonl")
    assert not [r for r in records if r["verdict"] not in ("pass", "oracle_disagreement")]
    disagreements = [r for r in records if r["verdict"] == "oracle_disagreement"]
    assert len(disagreements) >= 20
    for record in disagreements:  # the slope is drawn (the matrix level reads it)
        slope = record["config"]["architecture"].get("leaky_slope", 0.01)
        assert record["reason"].startswith(
            f"leaky_relu'(0) is a convention: torch takes {slope:g}, jax takes 1")


def test_list_shows_registered_candidates_and_oracles_with_versions():
    result = run("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    element = next(line for line in lines if line.strip().startswith("element "))
    assert "mybackprop:element" in element and "at most 5000 parameters" in element
    torch_line = next(line for line in lines if line.strip().startswith("torch "))
    assert "2.13.0" in torch_line


def test_impl_takes_a_registered_name(tmp_path):
    result = run("check", "--impl", "vector", "--cases", "3", "--quiet",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_jsonl(tmp_path / "run" / "cases.jsonl")[0]["candidate"] == "vector"


def test_a_folder_of_candidates_is_graded_in_one_run(tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "alice.py").write_text(
        "import mybackprop as mb\n\ndef backprop(problem):\n    return mb.vector(problem)\n")
    (submissions / "bob.py").write_text(
        "from candidates import dw_not_averaged as backprop\n")  # tests/ is on the path below
    (submissions / "carol.py").write_text("raise ImportError('half-written')\n")
    (submissions / "dave.py").write_text("def backprop(problem):\n    while True:\n        pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "mybackprop", "check", "--impl", f"{submissions}:backprop",
         "--cases", "3", "--reductions", "mean", "--dtype", "float64", "--time-limit", "0.5",
         "--batch", "2-64",  # bob's slip (dW times N) needs N > 1 to show
         "--quiet", "--out", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")})
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    by = {Path(name.split(":")[0]).stem: counts for name, counts in summary["by_candidate"].items()}
    assert by["alice"]["pass"] == 3 and by["bob"]["fail"] >= 1
    # bob's slip (dW times N) is invisible only where every dW is exactly 0 (a dead layer, a
    # one-unit softmax): N x 0 is 0
    for record in read_jsonl(tmp_path / "run" / "cases.jsonl"):
        if record["candidate"].endswith("bob.py:backprop") and record["verdict"] == "pass":
            assert all(c["max_abs_err"] == 0 for c in record["comparisons"]
                       if c["name"].startswith("dW")), record["architecture"]
    assert by["carol"]["error"] == 3 and by["dave"]["error"] == 3
    reasons = {r["candidate"]: r["reason"] for r in read_jsonl(tmp_path / "run" / "cases.jsonl")}
    assert "could not be loaded" in reasons[f"{submissions / 'carol.py'}:backprop"]
    assert reasons[f"{submissions / 'dave.py'}:backprop"].startswith("hung")
    assert "By candidate" in (tmp_path / "run" / "report.md").read_text()


def test_the_same_candidate_twice_is_a_usage_error():
    result = run("check", "--impl", "vector", "--impl", "vector")
    assert result.returncode == 2
    assert "--impl names 'vector' twice" in result.stderr


MISBEHAVING = {
    "raises": "raised ValueError: boom",
    "returns_none": "returned a NoneType, expected a dict",
    "wrong_length": " entries for ",  # "dW has 1 entries for 2 layers"
    "wrong_shape": "has shape",
    "wrong_dtype": "dtype float16, expected float64",
    "foreign_tensor": "dW1 is a Tensor that numpy cannot read",
    "nan": "is NaN or inf where the oracles are finite",
    "in_place": "changed its input X in place",
    "hangs": "hung: no answer within the time limit of 2 s",
    "prints": "printed 12 characters to stdout (first: 'loss is 0.5')",
    "sys_exit": "called sys.exit(3)",
    "os_exit": "ended the interpreter with exit code 7",
    "segfault": "killed the interpreter: SIGSEGV",
    "memory_hog": "ran out of memory (limit 4 GiB of address space)",
}


def test_every_misbehaving_candidate_is_an_error_with_its_reason_under_isolate(tmp_path):
    result = run("check", "--impl", "tests/misbehaving/:backprop", "--isolate",
                 "--time-limit", "2", "--cases", "2", "--dtype", "float64", "--quiet",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "run" / "cases.jsonl")
    assert len(records) == 2 * len(MISBEHAVING)  # the run went on through every crash
    for record in records:
        kind = Path(record["candidate"].split(":")[0]).stem
        assert record["verdict"] == "error", record
        assert MISBEHAVING[kind] in record["reason"], (kind, record["reason"])
        assert "\n" not in record["reason"]


def test_isolate_gives_the_same_verdicts_as_in_process_for_a_well_behaved_candidate(tmp_path):
    for mode in ("in_process", "isolated"):
        flags = ["--isolate"] if mode == "isolated" else []
        assert run("check", "--impl", "tests/candidates.py:dw_not_averaged", "--cases", "6",
                   "--quiet", "--out", str(tmp_path / mode), *flags).returncode == 1
    verdicts = [[(r["verdict"], r["reason"]) for r in read_jsonl(tmp_path / m / "cases.jsonl")]
                for m in ("in_process", "isolated")]
    assert verdicts[0] == verdicts[1]


def test_a_broken_candidate_on_400_cases_prints_each_mistake_once(tmp_path):
    result = run("check", "--impl", "mybackprop.zoo:tanh_missing_square", "--activations",
                 "tanh,relu", "--cases", "400", "--seed", "3", "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) < 60, result.stdout
    assert any(line.startswith("  ") and "fail, wrong_activation_derivative: " in line
               for line in lines)
    assert sum("smallest: " in line for line in lines) >= 1
    assert (tmp_path / "run" / "report.html").is_file()  # written without a second command
    # --verbose: every case that did not pass, as before
    verbose = run("check", "--impl", "mybackprop.zoo:tanh_missing_square", "--activations",
                  "tanh,relu", "--cases", "40", "--seed", "3", "--verbose", "--no-html",
                  "--out", str(tmp_path / "verbose"))
    failing = sum(r["verdict"] == "fail" for r in read_jsonl(tmp_path / "verbose" /
                                                              "cases.jsonl"))
    assert sum(line.startswith("case ") and ": fail [" in line
               for line in verbose.stdout.splitlines()) == failing
    assert not (tmp_path / "verbose" / "report.html").exists()


@pytest.mark.parametrize("candidate, said", [
    ("relu_derivative_one_at_zero", "where it takes relu'(0) = 1"),
    ("midpoints_at_kinks", "between the one-sided derivatives"),
])
def test_any_slope_between_the_one_sided_derivatives_is_a_convention_in_both_dtypes(
        tmp_path, candidate, said):
    """Under --kinks hit, relu'(0) = 1 (or any value between the one-sided derivatives, in each
    kinked function its own) is judged by the rounding bounds of the slope it takes, not by the
    reference's (where relu'(0) = 0 makes everything below the unit exactly 0): never a fail,
    in float32 or float64, and each such case says which convention it took."""
    result = run("check", "--impl", f"tests/candidates.py:{candidate}", "--kinks", "hit",
                 "--activations", "relu,leaky_relu,hardtanh,tanh,identity", "--cases", "120",
                 "--no-shrink", "--repro", "none", "--no-html", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "run" / "cases.jsonl")
    assert {r["dtype"] for r in records} == {"float32", "float64"}
    assert not [r for r in records if r["verdict"] not in ("pass", "oracle_disagreement")]
    noted = [r for r in records if "takes" in r["reason"]]
    assert len(noted) >= 30 and any(said in r["reason"] for r in noted)
    assert not [r["reason"] for r in records if r["verdict"] == "oracle_disagreement"
                and "the candidate takes" not in r["reason"]
                and not r["reason"].endswith(("agrees with torch", "agrees with jax"))]
