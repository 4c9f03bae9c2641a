"""Shrinking in the CLI and the standalone repro scripts, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_cli import ROOT, read_jsonl, run


def test_a_failing_run_shrinks_each_diagnosis_and_writes_runnable_repros(tmp_path):
    result = run("check", "--impl", "mybackprop.zoo:tanh_missing_square", "--cases", "6",
                 "--seed", "3", "--activations", "tanh,relu", "--verbose",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "run" / "cases.jsonl")
    failing = [r for r in records if r["verdict"] == "fail"]
    assert failing and all(r["diagnosis"]["pattern"] == "wrong_activation_derivative"
                           for r in failing)
    # One diagnosis, so one shrink: on the first failure, to a smaller case, same pattern.
    shrunk = read_jsonl(tmp_path / "run" / "smallest.jsonl")
    assert len(shrunk) == 1 and shrunk[0]["case"] == failing[0]["case"]
    first = failing[0]
    parameters = sum(c["shape"][0] * (c["shape"][1] if len(c["shape"]) > 1 else 1)
                     for c in first["comparisons"] if c["name"][:2] in ("dW", "db"))
    assert shrunk[0]["parameters"] < parameters
    assert shrunk[0]["diagnosis"]["pattern"] == "wrong_activation_derivative"
    assert "smallest case that keeps this diagnosis" in result.stdout  # --verbose says so
    # By default only the first case of each kind of mistake and its smallest get a script.
    written = sorted(p.name for p in (tmp_path / "run" / "repro").iterdir())
    assert written == sorted(Path(shrunk[0][key]).name for key in ("first_repro", "repro"))

    # The repro runs with numpy and the candidate only, prints the discrepancy, exits 1.
    for path in (shrunk[0]["first_repro"], shrunk[0]["repro"]):
        script = tmp_path / "run" / path
        assert "import torch" not in script.read_text() and "import jax" not in script.read_text()
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "x tolerance" in done.stdout and "1 - tanh(z)" in done.stdout


def test_repro_all_writes_one_per_failing_case_and_none_writes_none(tmp_path):
    options = ["check", "--impl", "mybackprop.zoo:tanh_missing_square", "--cases", "6",
               "--seed", "3", "--activations", "tanh,relu", "--no-shrink"]
    run(*options, "--repro", "all", "--out", str(tmp_path / "all"))
    failing = [r for r in read_jsonl(tmp_path / "all" / "cases.jsonl") if r["verdict"] == "fail"]
    assert failing and all((tmp_path / "all" / r["repro"]).is_file() for r in failing)
    assert len(list((tmp_path / "all" / "repro").iterdir())) == len(failing)
    run(*options, "--repro", "none", "--out", str(tmp_path / "none"))
    assert not list((tmp_path / "none").glob("repro/*"))


def test_a_repro_exits_0_once_the_bug_is_fixed(tmp_path):
    buggy = tmp_path / "mine.py"
    buggy.write_text((ROOT / "examples" / "learner_sigmoid_mse.py").read_text().replace(
        "dL_da = 2 * (", "dL_da = 1 * ("))
    result = run("check", "--impl", f"{buggy}:backprop", "--cases", "2", "--seed", "1",
                 "--activations", "sigmoid", "--losses", "mse", "--no-shrink", "--repro", "all",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    record = next(r for r in read_jsonl(tmp_path / "run" / "cases.jsonl")
                  if r["verdict"] == "fail")
    assert not (tmp_path / "run" / "smallest.jsonl").exists()
    assert record["diagnosis"]["factor"].split(" = ")[0] == "1/2"
    script = tmp_path / "run" / record["repro"]
    assert subprocess.run([sys.executable, str(script)], capture_output=True,
                          timeout=120).returncode == 1
    buggy.write_text((ROOT / "examples" / "learner_sigmoid_mse.py").read_text())  # the fix
    fixed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=120)
    assert fixed.returncode == 0, fixed.stdout
    assert "the discrepancy is gone" in fixed.stdout
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["verdicts"]["fail"] >= 1


def test_each_group_of_a_kind_gets_its_own_smallest_case(tmp_path):
    """One kind of mistake in two verdicts (float16 products: fails, and errors where they
    overflow): each group is shrunk and shown with its own smallest case, not the other's."""
    result = run("check", "--impl", "mybackprop.zoo:weight_gradients_in_float16", "--cases",
                 "60", "--repro", "none", "--no-html", "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    shrunk = read_jsonl(tmp_path / "run" / "smallest.jsonl")
    groups = {(s["verdict"], s["kind"]) for s in shrunk}
    assert {("fail", "reduced_precision"), ("error", "reduced_precision")} <= groups, groups
    findings = json.loads((tmp_path / "run" / "summary.json").read_text())["findings"]
    by_verdict = {f["verdict"]: f["smallest"]["case"] for f in findings
                  if f["kind"] == "reduced_precision"}
    first = {s["verdict"]: s["case"] for s in shrunk if s["kind"] == "reduced_precision"}
    assert by_verdict == first and len(set(first.values())) == 2
