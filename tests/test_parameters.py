"""Activation parameters: leaky_relu's slope and elu's alpha, declared fixed by a candidate or
drawn for one that reads them, in the table, both oracles, kink mode, records and diagnosis."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import LEVELS, as_candidate

import mybackprop as mb
from mybackprop.harness.cases import CaseConfig, CaseSpace, build_problem, problem_from_config
from mybackprop.harness.contract import CandidateLoadError, Supports
from mybackprop.harness.runner import Checker
from mybackprop.judging.kinks import units_on_kinks
from mybackprop.spec.problem import SpecError
from mybackprop.spec.table import PARAMETER_TABLE, PARAMETERS, parameterized

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "mybackprop")
VARIANTS = [(p.activation, p.name, v) for p in PARAMETER_TABLE for v in p.drawn]
Z = np.linspace(-6, 6, 49).reshape(7, 7) + 0.0123  # off every kink


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name, parameter, value", VARIANTS, ids=lambda v: str(v))
def test_each_value_is_its_own_entry_with_right_derivatives_and_kinks(name, parameter, value):
    f = parameterized(name, value)
    assert (f.name, f.parameter, f.value) == (name, parameter, value)
    assert parameterized(name, value) is f  # one object per value
    a = f.forward(Z)
    np.testing.assert_allclose(f.derivative(Z, a), central_difference(f.forward, Z),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(f.second_derivative(Z, a), central_difference(
        lambda x: f.derivative(x, f.forward(x)), Z), rtol=1e-5, atol=1e-7)
    # the kink's one-sided slopes are the formula's, and the frameworks' are recorded
    for kink in f.kinks:
        h = 1e-7
        left = (f.forward(np.array([kink.at])) - f.forward(np.array([kink.at - h]))) / h
        right = (f.forward(np.array([kink.at + h])) - f.forward(np.array([kink.at]))) / h
        assert (left[0], right[0]) == pytest.approx((kink.left, kink.right), rel=1e-6)
        assert set(kink.conventions) == {"torch", "jax"} and kink.left != kink.right
    # elu is smooth at 0 only where alpha is 1
    assert bool(f.kinks) == (name == "leaky_relu" or value != 1.0)


def test_the_frameworks_take_the_recorded_slope_at_every_kink():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    for name, _, value in VARIANTS:
        f = parameterized(name, value)
        for kink in f.kinks:
            z = torch.tensor(kink.at, dtype=torch.float64, requires_grad=True)
            f.torch(torch, z).backward()
            assert float(z.grad) == pytest.approx(kink.conventions["torch"])
            got = jax.grad(lambda x, f=f, v=value: f.jax_with(jax, x, True, v))(kink.at)
            assert float(got) == pytest.approx(kink.conventions["jax"])


def test_bad_values_are_one_line_errors():
    layers = (mb.Layer(3, "leaky_relu"), mb.Layer(1, "identity"))
    with pytest.raises(SpecError, match=r"^leaky_slope is -0.1: leaky_relu's slope below zero "
                                        r"is a number from 0 to 10$"):
        mb.Architecture(2, layers, leaky_slope=-0.1)
    with pytest.raises(SpecError, match=r"^leaky_slope is 1e\+30: .* from 0 to 10$"):
        CaseSpace(leaky_slope=(0.01, 1e30))  # every float32 case would overflow
    with pytest.raises(SpecError, match="elu_alpha is nan"):
        mb.Architecture(2, layers, elu_alpha=float("nan"))
    with pytest.raises(CandidateLoadError, match=r"supports leaky_slope is '0.2': .* or None "
                                                 r"\(any, read problem.leaky_slope\)"):
        Supports.coerce({"leaky_slope": "0.2"})
    with pytest.raises(SpecError, match="no elu_alpha values to draw from"):
        CaseSpace(elu_alpha=())
    result = subprocess.run([COMMAND, "check", "--leaky-slope", "0.1,abc"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--leaky-slope '0.1,abc' is not a list of numbers, e.g. 0.01,0.2" in result.stderr


def test_records_carry_a_value_off_the_default_and_rebuild_the_same_case():
    arch = mb.Architecture(3, (mb.Layer(4, "leaky_relu"), mb.Layer(4, "elu"),
                               mb.Layer(2, "identity")), leaky_slope=0.2)
    assert arch.describe() == "3-4(leaky_relu 0.2)-4(elu)-2(identity) mse/mean"
    assert arch.to_dict()["leaky_slope"] == 0.2 and "elu_alpha" not in arch.to_dict()
    assert arch.parameters == {"leaky_slope": 0.2, "elu_alpha": 1.0}
    assert mb.Architecture.from_dict(arch.to_dict()) == arch
    problem = build_problem(CaseConfig(arch, 5, "float32", 1.0, 1.0, seed=7))
    again = problem_from_config(json.loads(json.dumps(problem.meta["config"])))
    assert again.architecture == arch and again.leaky_slope == 0.2
    assert all(a.tobytes() == b.tobytes() for a, b in zip(problem.arrays(), again.arrays(),
                                                          strict=True))
    # a network without the activation carries no value: its records read as before
    plain = mb.Architecture(3, (mb.Layer(2, "tanh"),))
    assert plain.parameters == {} and "leaky_slope" not in plain.to_dict()


def test_a_run_draws_each_value_only_for_a_candidate_that_reads_it():
    rng = np.random.default_rng(0)
    space = CaseSpace(activations=("leaky_relu", "elu"), max_depth=2)
    drawn = {(c.architecture.leaky_slope, c.architecture.elu_alpha)
             for c in (mb.harness.cases.sample_config(rng, space) for _ in range(300))}
    assert {s for s, _ in drawn} == set(PARAMETERS["leaky_slope"].drawn)
    assert {a for _, a in drawn} == set(PARAMETERS["elu_alpha"].drawn)
    fixed = Supports(leaky_slope=0.3).within(space)
    archs = [mb.harness.cases.sample_config(rng, fixed).architecture for _ in range(50)]
    assert {a.leaky_slope for a in archs if "leaky_slope" in a.parameters} == {0.3}
    # a problem off the declared value is skipped, saying why
    problem = build_problem(CaseConfig(mb.Architecture(2, (mb.Layer(2, "leaky_relu"),),
                                                       leaky_slope=0.1), 3, "float64", 1.0, 1.0,
                                       seed=1))
    assert Supports(leaky_slope=0.3).reason_to_skip(problem) == \
        "leaky_slope 0.1, not the declared 0.3"
    assert Supports(leaky_slope=None).reason_to_skip(problem) is None


@pytest.mark.parametrize("kinks", ["avoid", "hit"])
def test_every_level_passes_at_every_value_against_both_oracles(both_oracles, kinks):
    """Each level reads the value from the problem; the oracles spell it (torch as a closure,
    JAX as data of one compiled function); on a kink any framework's convention passes."""
    checker = Checker(both_oracles)
    seen = set()
    for seed in range(24):
        slope = PARAMETERS["leaky_slope"].drawn[seed % 4]
        alpha = PARAMETERS["elu_alpha"].drawn[seed % 3]
        arch = mb.Architecture(3, (mb.Layer(5, "leaky_relu"), mb.Layer(4, "elu"),
                                   mb.Layer(2, "identity")), "mse", "mean", leaky_slope=slope,
                               elu_alpha=alpha)
        problem = build_problem(CaseConfig(arch, 6, ("float32", "float64")[seed % 2], 1.0, 1.0,
                                           seed=seed, kinks=kinks))
        if kinks == "hit":
            on = units_on_kinks(problem)
            assert on["leaky_relu", 0.0] > 0 and (on["elu", 0.0] > 0) == (alpha != 1.0)
        for name, level in LEVELS.items():
            outcome = checker.check(as_candidate(level, name, leaky_slope=None, elu_alpha=None),
                                    problem)
            allowed = ("pass",) if kinks == "avoid" else ("pass", "oracle_disagreement")
            assert outcome.verdict in allowed, outcome.message()
            if outcome.verdict == "oracle_disagreement":  # torch's slope at 0 is the value
                assert f"torch takes {slope:g}, jax takes 1" in outcome.reason
        seen.add((slope, alpha))
    assert len(seen) == 12


def test_the_stacked_oracles_group_cases_by_value(torch_oracle, jax_oracle):
    """Many problems in one stacked call, the same network at different values: each answer
    is its own value's (the matrix level in float64)."""
    problems = []
    for seed in range(16):
        arch = mb.Architecture(4, (mb.Layer(6, "leaky_relu"), mb.Layer(5, "elu"),
                                   mb.Layer(3, "identity")),
                               leaky_slope=PARAMETERS["leaky_slope"].drawn[seed % 4],
                               elu_alpha=PARAMETERS["elu_alpha"].drawn[seed % 3])
        problems.append(build_problem(CaseConfig(arch, 8, "float64", 1.0, 1.0, seed=seed)))
    for oracle in (torch_oracle, jax_oracle):
        for problem, got in zip(problems, oracle.gradients_many(problems), strict=True):
            expected = mb.matrix(problem)
            for g, e in zip(got.dW, expected["dW"], strict=True):
                np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_code_written_for_another_value_is_told_to_declare_it(both_oracles):
    """A candidate that hard-codes 0.2 and declares nothing: every failure says which value it
    computes with and how to declare it; declared, it passes."""
    def book(problem):
        moved = dataclasses.replace(problem.architecture, leaky_slope=0.2)
        return mb.matrix(mb.Problem(moved, problem.weights, problem.biases, problem.X,
                                    problem.Y))

    checker = Checker(both_oracles)
    rng = np.random.default_rng(3)
    space = CaseSpace(activations=("leaky_relu", "tanh"), max_depth=3, l2=(0.0,),
                      losses=("mse", "softmax_cross_entropy"), leaky_slope=(0.01,))
    verdicts = []
    for _ in range(40):
        problem = mb.harness.cases.sample_problem(rng, space)
        outcome = checker.check(as_candidate(book, "book"), problem)
        verdicts.append(outcome.verdict)
        if "leaky_relu" in problem.activations and outcome.verdict == "fail":
            assert outcome.diagnosis.pattern == "activation_parameter", outcome.message()
            assert outcome.diagnosis.summary.startswith(
                "it computes leaky_relu with leaky_slope 0.2 where the problem's is 0.01: if "
                "the code is written for that value, declare leaky_slope=0.2 in @candidate")
        elif "leaky_relu" not in problem.activations:
            assert outcome.verdict == "pass"
    assert verdicts.count("fail") >= 15
    declared = as_candidate(book, "book", leaky_slope=0.2)
    for _ in range(20):
        problem = mb.harness.cases.sample_problem(rng, declared.supports.within(space.__class__(
            **{**vars(space), "leaky_slope": None})))
        assert checker.check(declared, problem).verdict == "pass"


def test_a_repro_script_carries_the_value(tmp_path):
    """The zoo's slope-ignoring mutant at a drawn slope: its repro script rebuilds the case with
    that slope and still shows the failure."""
    result = subprocess.run([COMMAND, "check", "--impl", "mybackprop.zoo:leaky_relu_slope_ignored",
                             "--activations", "leaky_relu,identity", "--leaky-slope", "0.3",
                             "--cases", "10", "--out", str(tmp_path / "run"), "--no-html"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "activation_parameter: it computes leaky_relu with leaky_slope 0.01 where the " \
           "problem's is 0.3" in result.stdout
    scripts = sorted((tmp_path / "run" / "repro").iterdir())
    assert scripts
    text = scripts[0].read_text()
    assert "PARAMETERS = {'leaky_slope': 0.3, 'elu_alpha': 1.0}" in text
    done = subprocess.run([sys.executable, str(scripts[0])], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 1 and "activation_parameter" not in done.stdout.split("\n")[0]
    assert "leaky_slope 0.01 where the problem's is 0.3" in done.stdout
