"""The mutant zoo: every classic bug is detected, localized and diagnosed from the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mybackprop import zoo
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.runner import Checker, Outcome

CASES_PER_MUTANT = 4
def live_cases(name: str, count: int, seed: int = 0) -> list[tuple[object, zoo.Expected]]:
    """`count` live problems: ordinary networks, except for the naive softmax, which goes wrong
    only at large logits and so gets the default space."""
    space = {} if name == "naive_softmax_cross_entropy" else zoo.MODERATE
    found = list(zoo.live_cases(name, count, seed, max_draws=500, **space))
    assert len(found) == count, f"{name}: fewer than {count} live cases in 500 draws"
    return found


def assert_diagnosed(outcome: Outcome, expected: zoo.Expected) -> None:
    detected, localized, diagnosed = zoo.score(outcome, expected)
    assert detected and localized and diagnosed, (outcome.message(), expected)
    assert not outcome.diagnosis.summary.startswith("the diagnosis raised"), outcome.message()


def test_the_zoo_has_at_least_fifteen_bugs_and_every_pattern_is_known():
    from mybackprop.diagnosis.diagnose import PATTERNS

    assert len(zoo.ZOO) >= 15
    assert {pattern for _, pattern, _ in zoo.ZOO.values()} <= set(PATTERNS) - {"unknown"}


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_each_mutant_is_detected_localized_and_diagnosed(name, both_oracles):
    checker = Checker(both_oracles)
    candidate = load_candidate(f"mybackprop.zoo:{name}")
    for problem, expected in live_cases(name, CASES_PER_MUTANT):
        assert_diagnosed(checker.check(candidate, problem), expected)


@pytest.mark.parametrize(("name", "step"), [
    ("forward_without_output_bias", "forward pass: Z_{L} = "),
    ("tanh_missing_square", "the activation derivative of layer {tanh} (tanh): it computes "
                            "1 - tanh(z)"),
    ("bias_mean", "the bias reduction of layer {bias}"),
])
def test_intermediates_name_the_step_that_breaks(name, step, both_oracles):
    checker = Checker(both_oracles)
    candidate = load_candidate(f"mybackprop.zoo:{name}")
    for problem, expected in live_cases(name, 2, seed=1):
        outcome = checker.check(candidate, problem)
        top_tanh = max((l for l, a in enumerate(problem.activations, 1) if a == "tanh"),
                       default=0)
        want = step.format(L=problem.architecture.depth, tanh=top_tanh, bias=expected.layer)
        assert outcome.diagnosis.step.startswith(want), outcome.message()


def test_a_correct_answer_is_never_given_a_pattern(both_oracles):
    checker = Checker(both_oracles)
    candidate = load_candidate("mybackprop:matrix")
    rng = np.random.default_rng(5)
    for _ in range(20):
        outcome = checker.check(candidate, sample_problem(rng, CaseSpace(max_depth=3)))
        assert outcome.verdict == "pass" and outcome.diagnosis is None, outcome.message()
