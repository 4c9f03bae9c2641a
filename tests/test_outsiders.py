"""Buggy candidates that are not in the zoo (tests/outsiders/, written from the README's contract
alone: one sample at a time with loops, or one batch with samples as columns): each is
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
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_outside_bug_is_detected_and_never_misdiagnosed(name, both_oracles):
    candidate = load_candidate(f"tests/outsiders/{name}")
    space = candidate.supports.within(CaseSpace(
        max_depth=3, max_batch=8, input_log10_scale=(-1.0, 1.0), max_output_log10_scale=0,
        losses=("mse",)))
    checker = Checker(both_oracles)
    rng = np.random.default_rng(0)
    outcomes = [checker.check(candidate, sample_problem(rng, space)) for _ in range(12)]
    bad = [o for o in outcomes if o.verdict != "pass"]
    assert len(bad) >= 4, [o.message() for o in outcomes]
    for outcome in bad:
        pattern = outcome.diagnosis.pattern if outcome.diagnosis else None
        assert pattern == EXPECTED[name], outcome.message()
        if pattern == "unknown":
            assert outcome.diagnosis.evidence and outcome.diagnosis.layer is not None
