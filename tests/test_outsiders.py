"""Buggy candidates that are not in the zoo (tests/outsiders/, written from the README's contract
alone: one sample at a time with loops, one batch with samples as columns, or a learner's class
with caches on self, (in, out) weights, half the squared error and an L2 penalty): each is
detected, and its diagnosis is the right pattern, or "unknown" with evidence when it is a bug
no pattern describes. Never a wrong pattern."""

from __future__ import annotations

import numpy as np
import pytest

from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.runner import Checker

EXPECTED = {
    "per_sample_loops.py:gelu_without_pdf": "wrong_activation_derivative",
    "per_sample_loops.py:bias_times_n": "bias_reduction",
    # its loss is divided by the same N: one factor, in the loss and every gradient
    "per_sample_loops.py:sum_divides_by_n": "constant_factor",
    "per_sample_loops.py:clipped_gradient": "unknown",
    "per_sample_loops.py:outer_own_layer": "raised",  # numpy raises on the shapes: at its line
    "column_batch.py:tanh_no_square": "wrong_activation_derivative",
    # where widths differ the shapes already say it (an error, its diagnosis from the shapes)
    "column_batch.py:dw_from_output": "shifted_layer",
    "column_batch.py:db_first_sample": "unknown",  # no pattern describes it: said so
    "learner_class.py:penalty_doubled": "penalty",
    "learner_class.py:relu_mask_from_dout": "unknown",  # placed at layer 1's relu, not named
    "learner_class.py:sigmoid_derivative_of_z": "wrong_activation_derivative",
    # the hidden output taken for dW1's input: numpy raises at that line where the shapes
    # differ (placed there), where the layers are square the values say it, and where the
    # hidden layer has one unit the product broadcasts into every row: no pattern replays that
    "learner_class.py:cache_overwritten": {"raised", "shifted_layer", "unknown"},
}
SPACE = {"max_depth": 3, "max_batch": 8, "input_log10_scale": (-1.0, 1.0),
         "max_output_log10_scale": 0, "losses": ("mse", "half_mse"), "l2": None}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_outside_bug_is_detected_and_never_misdiagnosed(name, both_oracles):
    candidate = load_candidate(f"tests/outsiders/{name}")
    space = candidate.supports.within(CaseSpace(**SPACE))
    checker = Checker(both_oracles)
    rng = np.random.default_rng(0)
    outcomes = [checker.check(candidate, sample_problem(rng, space)) for _ in range(12)]
    bad = [o for o in outcomes if o.verdict != "pass"]
    assert len(bad) >= 4, [o.message() for o in outcomes]
    for outcome in bad:
        pattern = outcome.diagnosis.pattern if outcome.diagnosis else None
        expected = EXPECTED[name]
        assert pattern in (expected if isinstance(expected, set) else {expected}), \
            outcome.message()
        if pattern == "unknown":
            assert outcome.diagnosis.evidence and outcome.diagnosis.layer is not None


def test_the_learner_class_without_its_bug_passes(both_oracles):
    candidate = load_candidate("tests/outsiders/learner_class.py:right")
    space = candidate.supports.within(CaseSpace(**SPACE))
    checker = Checker(both_oracles)
    rng = np.random.default_rng(0)
    outcomes = [checker.check(candidate, sample_problem(rng, space)) for _ in range(12)]
    assert all(o.verdict == "pass" for o in outcomes), [o.message() for o in outcomes]
