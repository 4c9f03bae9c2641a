"""mybackprop diff: what changed between two runs of the same cases."""

from __future__ import annotations

from pathlib import Path

from test_cli import ROOT, read_jsonl, run

LEARNER = (ROOT / "examples" / "learner_sigmoid_mse.py").read_text()


def check(tmp_path, source: str, name: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    folder = tmp_path / f"run-{name}"
    run("check", "--impl", f"{path}:backprop", "--cases", "6", "--seed", "2", "--activations",
        "sigmoid", "--losses", "mse", "--no-shrink", "--quiet", "--out", str(folder))
    return str(folder)


def failures(folder: str) -> int:
    return sum(r["verdict"] == "fail" for r in read_jsonl(Path(folder) / "cases.jsonl"))


def test_a_run_against_itself_is_empty_and_a_fix_shows_as_fixed(tmp_path):
    buggy = check(tmp_path, LEARNER.replace("dL_da = 2 * (", "dL_da = 1 * ("), "v1")
    fixed = check(tmp_path, LEARNER, "v2")

    same = run("diff", buggy, buggy)
    assert same.returncode == 0 and same.stdout.strip() == "no differences", same.stdout

    failing = failures(buggy)
    assert failing >= 3  # a case can hide the bug (a gradient below what float32 resolves)
    forward = run("diff", buggy, fixed)  # v1.py and v2.py: one candidate each, matched
    assert forward.returncode == 1
    assert f"fixed ({failing}):" in forward.stdout and "fail -> pass" in forward.stdout
    assert "new failures" not in forward.stdout

    backward = run("diff", fixed, buggy)
    assert f"new failures ({failing}):" in backward.stdout
    assert "the 2 of d/dyhat (yhat - y)^2 = 2 (yhat - y) is missing" in backward.stdout


def test_a_changed_diagnosis_and_a_missing_folder(tmp_path):
    half = check(tmp_path, LEARNER.replace("dL_da = 2 * (", "dL_da = 1 * ("), "half")
    flipped = check(tmp_path, LEARNER.replace("dL_da = 2 * (", "dL_da = -2 * ("), "flipped")
    result = run("diff", half, flipped)
    assert f"changed diagnoses ({min(failures(half), failures(flipped))}):" in result.stdout
    assert "constant_factor (1/2) -> constant_factor (-1)" in result.stdout
    missing = run("diff", half, str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "has no cases.jsonl: give a run folder" in missing.stderr
