"""The finite-difference oracle: agrees with autograd within the error it reports, sees kinks,
and breaks ties between oracles where a derivative exists."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from helpers import LEVELS, as_candidate, assert_verdict, check
from hypothesis import given, settings
from mybackprop.oracles import finite_differences as fd_module
from mybackprop.oracles.finite_differences import FiniteDifferenceOracle

import mybackprop as mb
from mybackprop.harness.cases import CaseConfig, build_problem
from mybackprop.harness.contract import Supports, to_gradients
from mybackprop.harness.runner import Checker
from mybackprop.judging.tolerance import Tolerance, gradient_scales
from mybackprop.strategies import problems

FULL, DIRECTIONAL = FiniteDifferenceOracle(), FiniteDifferenceOracle(max_full=0)


def fd_disagreement(estimator, problem, gradients):
    allowed = Tolerance().allowed(gradient_scales(problem, "float64"), "float64")
    return estimator.estimate(problem).disagreement(gradients, allowed)


@pytest.mark.parametrize("estimator", [FULL, DIRECTIONAL], ids=["full", "directional"])
@settings(max_examples=40)
@given(problem=problems(activations=mb.SMOOTH_ACTIVATIONS, max_width=8, max_batch=16))
def test_agrees_with_pytorch_within_its_own_error_on_smooth_cases(torch_oracle, estimator,
                                                                  problem):
    estimate = estimator.estimate(problem)
    assert not estimate.kinked
    assert fd_disagreement(estimator, problem, torch_oracle.gradients(problem)) <= 1.0


@pytest.mark.parametrize("estimator", [FULL, DIRECTIONAL], ids=["full", "directional"])
def test_a_one_percent_error_in_the_largest_element_is_outside_its_error(torch_oracle, estimator):
    problem = next_problem(seed=4)
    gradients = torch_oracle.gradients(problem)
    largest = np.unravel_index(np.argmax(np.abs(gradients.dW[0])), gradients.dW[0].shape)
    gradients.dW[0][largest] *= 1.01
    assert fd_disagreement(estimator, problem, gradients) > 1.0


def test_directional_cost_does_not_grow_with_the_number_of_parameters(monkeypatch):
    calls = []
    counted = fd_module.forward
    monkeypatch.setattr(fd_module, "forward", lambda p: calls.append(1) or counted(p))
    evaluations = []
    for width in (4, 128):  # 20 and 16,900 parameters
        calls.clear()
        arch = mb.Architecture(width, (mb.Layer(width, "tanh"), mb.Layer(3, "sigmoid")))
        FiniteDifferenceOracle(max_full=0, n_directions=6).estimate(build(arch, seed=1))
        evaluations.append(len(calls))
    # Per direction: L(theta), then four evaluations per step tried (at most SHRINKS + 1).
    bound = 6 * (1 + 4 * (fd_module.SHRINKS + 1))
    assert all(6 * 5 <= n <= bound for n in evaluations), evaluations


def test_a_kink_is_seen_and_never_arbitrated():
    arch = mb.Architecture(3, (mb.Layer(4, "leaky_relu"), mb.Layer(2, "sigmoid")))
    estimate = FULL.estimate(build(arch, seed=2, kinks="hit"))
    assert estimate.kinked
    assert estimate.gradients is None  # nothing estimated: no derivative exists there


def test_finite_differences_break_a_tie_against_a_wrong_oracle(torch_oracle):
    # A third, wrong reference (sigmoid'(a) for sigmoid'(z)) disagrees with PyTorch; finite
    # differences side with PyTorch, and the candidate is judged against it.
    checker = Checker([torch_oracle, WrongOracle()], tie_breaker=FULL)
    outcome = checker.check(as_candidate(mb.matrix), next_problem(seed=4))
    assert_verdict(outcome, "pass")
    assert "finite differences side with torch" in outcome.reason
    assert outcome.reference == "torch"


class WrongOracle:
    name = "wrong"

    def describe(self):
        return {"version": "test", "settings": "sigmoid'(a) in place of sigmoid'(z)"}

    def gradients(self, problem):
        sigmoid = mb.ACTIVATIONS["sigmoid"]
        wrong = dataclasses.replace(
            sigmoid, derivative=lambda z, a: sigmoid.derivative(a, sigmoid.forward(a)))
        p = problem.as_float64()
        return to_gradients(mb.matrix(p, table={**mb.ACTIVATIONS, "sigmoid": wrong}), p,
                            Supports())


def build(arch, seed, kinks="avoid", dtype="float64", batch=6):
    return build_problem(CaseConfig(arch, batch, dtype, 1.0, 1.0, seed, kinks))


def next_problem(seed):
    arch = mb.Architecture(3, (mb.Layer(4, "tanh"), mb.Layer(2, "sigmoid")), "mse", "mean")
    return build(arch, seed)


@settings(max_examples=60)
@given(problem=problems(activations=("relu", "leaky_relu", "tanh"), kinks="hit"))
def test_kink_mode_never_fails_a_correct_level(both_oracles, problem):
    for level in LEVELS.values():
        outcome = Checker(both_oracles, tie_breaker=FULL).check(as_candidate(level), problem)
        assert outcome.verdict in ("pass", "oracle_disagreement"), outcome.message()
        if outcome.verdict == "oracle_disagreement":  # a kink's convention, named as one
            assert "is a convention: torch takes" in outcome.reason, outcome.reason
            if "leaky_relu'(0)" in outcome.reason:  # the slope is drawn: torch takes it
                assert (f"leaky_relu'(0) is a convention: torch takes "
                        f"{problem.leaky_slope:g}, jax takes 1") in outcome.reason


def test_a_candidate_taking_relu_prime_of_zero_as_one_is_a_convention_not_a_bug(both_oracles):
    relu = mb.ACTIVATIONS["relu"]
    at_zero_one = dataclasses.replace(relu, derivative=lambda z, a: (z >= 0).astype(z.dtype))
    candidate = functools.partial(mb.matrix, table={**mb.ACTIVATIONS, "relu": at_zero_one})
    arch = mb.Architecture(3, (mb.Layer(4, "relu"), mb.Layer(2, "identity")), "mse", "sum")
    problem = build(arch, seed=3, kinks="hit")
    outcome = check(candidate, problem, both_oracles)
    assert_verdict(outcome, "pass")
    assert "only at kinks, where it takes relu'(0) = 1: a convention, not a bug" in outcome.reason
    # Off the kinks the same candidate is simply right; a real bug at a kink still fails.
    assert_verdict(check(candidate, build(arch, seed=3), both_oracles), "pass")
    doubled = functools.partial(mb.matrix, table={**mb.ACTIVATIONS, "relu": dataclasses.replace(
        relu, derivative=lambda z, a: 2 * (z >= 0).astype(z.dtype))})
    assert_verdict(check(doubled, problem, both_oracles), "fail")
