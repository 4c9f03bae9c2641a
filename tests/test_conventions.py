"""Declared conventions: the harness hands a candidate the problem in its own form and reads the
answer back, bit for bit; worked examples in three common styles pass with nothing but their
declaration, and their planted slips are diagnosed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mybackprop.oracles.torch_oracle import TorchOracle

import mybackprop as mb
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.contract import CandidateLoadError, Supports
from mybackprop.harness.conventions import Conventions, Handed
from mybackprop.harness.loading import candidate_of
from mybackprop.harness.runner import Checker

ROOT = Path(__file__).resolve().parent.parent
STYLES = Path(__file__).parent / "styles"
COMMAND = str(Path(sys.executable).parent / "mybackprop")

ALL = [Conventions(weights=w, layout=layout, bias_shape=b, targets=t, per_sample=s)
       for w, layout, b, t, s in itertools.product(
           ("(out, in)", "(in, out)"), ("rows", "columns", "flat"), ("(n,)", "(1, n)", "(n, 1)"),
           ("indices", "one_hot"), (False, True))
       if not (layout == "flat" and not s)]


def canonical(handed: Handed, conventions: Conventions) -> Any:
    """The canonical problem rebuilt from what a candidate was handed (the inverse conversions,
    written independently of the harness's), to run the matrix level on."""
    def back(a: np.ndarray) -> np.ndarray:  # contiguous, as the canonical arrays are
        if conventions.layout == "columns":
            return np.ascontiguousarray(a.T)
        return a.reshape(1, -1) if conventions.layout == "flat" else a

    arch = handed.architecture
    Y = handed.Y
    if arch.loss_spec.targets == "classes":
        Y = np.array([Y]) if isinstance(Y, int) else Y
        if conventions.targets == "one_hot":
            Y = back(Y).argmax(axis=1)
    else:
        Y = back(Y)
    weights = [np.ascontiguousarray(w.T) if conventions.weights == "(in, out)" else w
               for w in handed.weights]
    biases = [None if b is None else b.reshape(-1) for b in handed.biases]
    return mb.Problem(arch, weights, biases, back(handed.X), Y)


def test_conversions_are_bit_exact_both_ways():
    """Each convention's candidate undoes the conversion and runs the matrix level, then
    converts its answer into its own form: what comes back is the matrix level's answer on the
    canonical problem, bit for bit (per sample: each sample's, then the batch level)."""
    rng = np.random.default_rng(5)
    space = CaseSpace(max_depth=3, max_width=6, max_batch=5, l2=(0.0,))
    problems = [sample_problem(rng, space) for _ in range(12)]
    for conventions in ALL:
        def answer(handed: Handed, conventions: Conventions = conventions) -> dict[str, Any]:
            got = mb.matrix(canonical(handed, conventions))
            if conventions.per_sample:  # its own sample's cost: the sum of its terms
                got = mb.matrix(mb.Problem(dataclasses_replace_reduction(handed.architecture),
                                           *_arrays(canonical(handed, conventions))))
            return {"loss": got["loss"],
                    "dW": [g.T if conventions.weights == "(in, out)" else g for g in got["dW"]],
                    "db": [None if g is None else g.reshape(b.shape)
                           for g, b in zip(got["db"], handed.biases, strict=True)],
                    "dX": (got["dX"].T if conventions.layout == "columns" else
                           got["dX"].reshape(-1) if conventions.layout == "flat" else got["dX"])}

        answer.supports = Supports(conventions=conventions)  # type: ignore[attr-defined]
        function = candidate_of(answer).function
        for problem in problems:
            handed = Handed(problem, conventions, 0 if conventions.per_sample else None)
            assert (handed.loss, handed.l2, handed.l2_half, handed.l2_biases) == (
                problem.loss, problem.l2, problem.l2_half, problem.l2_biases)
            for mine, original in zip(handed.weights, problem.weights, strict=True):
                back = mine.T if conventions.weights == "(in, out)" else mine
                assert np.ascontiguousarray(back).tobytes() == original.tobytes(), conventions
            for mine, original in zip(handed.biases, problem.biases, strict=True):
                assert (mine is None) == (original is None)
                assert mine is None or mine.reshape(-1).tobytes() == original.tobytes()
            got, expected = function(problem), mb.matrix(problem)
            if conventions.per_sample:  # each sample exact; the batch level's own rounding,
                # which is relative to the tensor's size where the samples cancel in an element
                for g, e in zip(got["dW"], expected["dW"], strict=True):
                    rtol = 1e-5 if g.dtype == np.float32 else 1e-12
                    np.testing.assert_allclose(g, e, rtol=rtol,
                                               atol=rtol * float(np.abs(e).max()) + 1e-30)
                continue
            for key in ("dW", "db"):
                for g, e in zip(got[key], expected[key], strict=True):
                    assert (g is None) == (e is None)
                    assert g is None or g.tobytes() == np.ascontiguousarray(e).tobytes()
            assert got["dX"].tobytes() == expected["dX"].tobytes()


def dataclasses_replace_reduction(arch: mb.Architecture) -> mb.Architecture:
    import dataclasses
    return dataclasses.replace(arch, reduction="sum")


def _arrays(problem: mb.Problem) -> tuple[Any, ...]:
    return problem.weights, problem.biases, problem.X, problem.Y


def test_per_sample_batch_level_is_the_reductions():
    """A per-sample candidate returning each sample's exact gradient (the matrix level on that
    sample, summed over its terms) passes under every reduction, in both dtypes."""
    @mb.candidate(per_sample=True, layout="flat", returns_dX=True, leaky_slope=None,
                  elu_alpha=None)  # the matrix level reads them from the architecture
    def one_sample(p: Handed) -> dict[str, Any]:
        import dataclasses
        arch = dataclasses.replace(p.architecture, reduction="sum")
        Y = np.array([p.y]) if isinstance(p.y, int) else p.y.reshape(1, -1)
        got = mb.matrix(mb.Problem(arch, p.weights, p.biases, p.x.reshape(1, -1), Y))
        return {**got, "dX": got["dX"].reshape(-1)}

    checker = Checker([TorchOracle()])
    rng = np.random.default_rng(2)
    space = CaseSpace(max_depth=3, max_width=8, max_batch=9, l2=(0.0,), max_output_log10_scale=1,
                      input_log10_scale=(-1.0, 1.0))
    verdicts = [checker.check(candidate_of(one_sample), sample_problem(rng, space)).verdict
                for _ in range(60)]
    assert verdicts.count("pass") == 60, verdicts


def test_messages_name_tensors_in_the_candidates_shapes():
    @mb.candidate(weights="(in, out)", bias_shape="(1, n)", returns_dX=False)
    def canonical_shapes(p: Handed) -> dict[str, Any]:  # forgot its own convention
        return {"loss": 0.0, "dW": [w.T for w in p.weights],
                "db": [None if b is None else b for b in p.biases]}

    arch = mb.Architecture(3, (mb.Layer(4, "tanh"),), "mse", "mean")
    problem = mb.Problem(arch, [np.ones((4, 3))], [np.zeros(4)], np.ones((2, 3)),
                         np.zeros((2, 4)))
    outcome = Checker([TorchOracle()]).check(candidate_of(canonical_shapes), problem)
    assert outcome.verdict == "error"
    assert outcome.reason == "dW1 has shape (4, 3), expected (3, 4) (weights (in, out))"

    @mb.candidate(weights="(in, out)", layout="columns", returns_dX=False)
    def changes_its_input(p: Handed) -> dict[str, Any]:
        p.weights[0][0, 0] += 1
        return {"loss": 0.0, "dW": [np.zeros_like(w) for w in p.weights], "db": [None]}

    problem = mb.Problem(mb.Architecture(3, (mb.Layer(4, "tanh", bias=False),), "mse", "mean"),
                         [np.ones((4, 3))], [None], np.ones((2, 3)), np.zeros((2, 4)))
    outcome = Checker([TorchOracle()]).check(candidate_of(changes_its_input), problem)
    assert (outcome.verdict, outcome.reason) == ("error", "changed its input W1 in place")


def test_a_failing_element_is_named_by_the_candidates_index():
    @mb.candidate(weights="(in, out)", layout="columns", returns_dX=False)
    def off_at_one_weight(p: Handed) -> dict[str, Any]:
        right = mb.matrix(canonical(p, Conventions(weights="(in, out)", layout="columns")))
        dW = [g.T.copy() for g in right["dW"]]
        dW[0][2, 1] += 1.0  # its own (in, out) index: input 2, unit 1
        return {"loss": right["loss"], "dW": dW, "db": [b.reshape(-1, 1) for b in right["db"]]}

    arch = mb.Architecture(3, (mb.Layer(2, "tanh"),), "mse", "sum")
    rng = np.random.default_rng(0)
    problem = mb.Problem(arch, [rng.standard_normal((2, 3))], [rng.standard_normal(2)],
                         rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))
    outcome = Checker([TorchOracle()]).check(candidate_of(off_at_one_weight), problem)
    assert outcome.verdict == "fail"
    assert "dW1[2, 1]" in outcome.message()
    record = outcome.to_record()
    dW1 = next(c for c in record["comparisons"] if c["name"] == "dW1")
    assert dW1["shape"] == [3, 2] and dW1["worst_index"] == [2, 1]


@pytest.mark.parametrize("declared, message", [
    ({"weights": "(in,out)"}, "weights is '(in,out)': choose one of (in, out), (out, in)"),
    ({"layout": "flat"}, "layout 'flat' (one sample as a vector) needs per_sample=True"),
    ({"per_sample": True, "l2": None}, "per_sample with an L2 penalty"),
])
def test_a_bad_convention_is_one_line(declared, message):
    with pytest.raises(CandidateLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Supports.coerce(declared)


EXAMPLES = [
    ("per_sample_columns.py:backprop", "derivative_at_activation"),
    ("course_in_out.py:two_layer_net", "penalty"),
    ("columns_bce.py:model_backward", "bias_reduction"),
    ("layer_objects.py:train_step", "wrong_activation_derivative"),
]


@pytest.mark.parametrize("example, slip", EXAMPLES)
def test_worked_example_passes_and_its_twin_is_diagnosed(tmp_path, example, slip):
    """Each style passes 500 cases with nothing but its declaration; its planted slip is
    diagnosed as that slip wherever a pattern is named."""
    right = subprocess.run([COMMAND, "check", "--impl", example, "--cases", "500", "--out",
                            str(tmp_path / "right"), "--no-html", "--quiet"], cwd=STYLES,
                           capture_output=True, text=True, timeout=600)
    assert right.returncode == 0, right.stdout + right.stderr
    summary = json.loads((tmp_path / "right" / "summary.json").read_text())
    assert summary["verdicts"]["pass"] == 500 == sum(summary["verdicts"].values())
    buggy = example.replace(".py", "_buggy.py")
    wrong = subprocess.run([COMMAND, "check", "--impl", buggy, "--cases", "200", "--out",
                            str(tmp_path / "wrong"), "--no-html", "--quiet", "--repro", "none"],
                           cwd=STYLES, capture_output=True, text=True, timeout=600)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    records = [json.loads(line) for line in (tmp_path / "wrong" / "cases.jsonl").open()]
    patterns = [r["diagnosis"]["pattern"] for r in records if r["verdict"] == "fail"]
    assert patterns.count(slip) >= 0.9 * len(patterns) > 0, patterns
    assert set(patterns) <= {slip, "unknown"}, set(patterns)


UPCASTER = '''
import mybackprop


def backprop(problem):  # computes in float64 whatever it is given, then rounds
    answer = mybackprop.matrix(problem.as_float64())
    cast = problem.dtype
    return {"loss": answer["loss"], "dW": [g.astype(cast) for g in answer["dW"]],
            "db": [None if g is None else g.astype(cast) for g in answer["db"]],
            "dX": answer["dX"].astype(cast)}
'''


def test_a_candidate_computing_in_float64_is_told_so(tmp_path):
    """Its float32 answers pass (they are more accurate than float32 can be), with a note
    saying they test float64 arithmetic; float32 arithmetic (the matrix level) gets none."""
    (tmp_path / "upcaster.py").write_text(UPCASTER)
    result = subprocess.run([COMMAND, "check", "--impl", "upcaster.py:backprop", "--impl",
                             "mybackprop:matrix", "--cases", "200", "--l2", "0",
                             "--leaky-slope", "0.01", "--elu-alpha", "1", "--out",
                             str(tmp_path / "run"), "--no-html"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads((tmp_path / "run" / "summary.json").read_text())["status"]
    mine, native = (status["by_candidate"][n] for n in ("upcaster.py:backprop",
                                                         "mybackprop:matrix"))
    assert mine["float32_checked"] == native["float32_checked"] > 50
    assert mine["upcast"] >= 0.8 * mine["float32_checked"] and native["upcast"] == 0
    assert "note: computes in float64: in " in result.stdout
    assert "its float32 checks test float64 arithmetic" in (tmp_path / "run" / "report.md"
                                                             ).read_text()


def test_clipped_probabilities_are_named_for_what_they_are(tmp_path):
    """The course style with its probabilities clipped to [1e-12, 1] before the log (a guard
    many write): where some probability is below 1e-12 the clip changes the loss, and the
    diagnosis says so instead of 'the forward pass is wrong'."""
    source = (STYLES / "course_in_out.py").read_text()
    clipped = source.replace(
        "probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)",
        "probs = np.clip(np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True), "
        "1e-12, 1.0)")
    assert clipped != source
    (tmp_path / "clipped.py").write_text(clipped)
    result = subprocess.run([COMMAND, "check", "--impl", "clipped.py:two_layer_net", "--cases",
                             "200", "--out", str(tmp_path / "run"), "--no-html", "--quiet",
                             "--repro", "none"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "cases.jsonl").open()]
    failed = [r["diagnosis"] for r in records if r["verdict"] == "fail"]
    patterns = [d["pattern"] for d in failed]
    assert patterns.count("probability_clipped") >= 0.9 * len(patterns) > 0, patterns
    assert set(patterns) <= {"probability_clipped", "unknown"}, set(patterns)
    named = next(d["summary"] for d in failed if d["pattern"] == "probability_clipped")
    assert "of probabilities clipped to [1e-12, 1]" in named
