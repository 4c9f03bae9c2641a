"""The element, vector and matrix levels: registered like any plug-in, and each one breakable."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from helpers import LEVELS, assert_verdict, check, level_disagreements

import mybackprop as mb
from mybackprop import Architecture, Layer
from mybackprop.harness.cases import CaseConfig, build_problem
from mybackprop.harness.loading import load_candidate

# sigmoid'(a) instead of sigmoid'(z): the derivative evaluated at the activation.
SIGMOID_AT_A = dataclasses.replace(
    mb.ACTIVATIONS["sigmoid"], derivative=lambda z, a: mb.ACTIVATIONS["sigmoid"].derivative(
        a, mb.ACTIVATIONS["sigmoid"].forward(a)))


def sigmoid_problem(dtype="float64", activation="sigmoid", loss="mse"):
    arch = Architecture(3, (Layer(4, activation), Layer(2, "sigmoid")), loss, "mean")
    return build_problem(CaseConfig(arch, 5, dtype, 1.0, 1.0, seed=2))


@pytest.mark.parametrize("level", LEVELS)
def test_levels_load_through_the_public_plug_in_contract(level):
    loaded = load_candidate(f"mybackprop:{level}")
    assert loaded.function is LEVELS[level]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_breaking_one_levels_activation_derivative_makes_it_fail(both_oracles, level, dtype):
    broken = functools.partial(LEVELS[level], table={**mb.ACTIVATIONS, "sigmoid": SIGMOID_AT_A})
    problem = sigmoid_problem(dtype)
    outcome = check(broken, problem, both_oracles)
    assert_verdict(outcome, "fail")
    assert {c.name for c in outcome.failing} >= {"dW1", "dW2", "db2"}
    others = [name for name in LEVELS if name != level]
    assert level_disagreements(broken, LEVELS[others[0]], problem)
    assert not level_disagreements(LEVELS[others[0]], LEVELS[others[1]], problem)


@pytest.mark.parametrize("level", LEVELS)
def test_softmax_jacobian_and_cross_entropy_at_every_level(both_oracles, level):
    problem = sigmoid_problem(activation="softmax", loss="softmax_cross_entropy")
    assert_verdict(check(LEVELS[level], problem, both_oracles), "pass")


def test_element_level_declares_a_size_limit_and_larger_cases_are_skipped(both_oracles):
    width = 80  # 80 x 80 weights: more parameters than the element level takes
    arch = Architecture(width, (Layer(width, "tanh"),), "mse", "mean")
    problem = build_problem(CaseConfig(arch, 2, "float64", 1.0, 1.0, seed=0))
    outcome = check(mb.element, problem, both_oracles)
    assert_verdict(outcome, "skipped")
    assert f"over the declared limit of {mb.ELEMENT_MAX_PARAMETERS}" in outcome.reason


def test_element_level_uses_scalar_arithmetic_in_the_problems_dtype():
    problem = sigmoid_problem("float32")
    answer = mb.element(problem)
    assert all(g.dtype == np.float32 for g in answer["dW"])
    assert isinstance(answer["loss"], np.float32)
