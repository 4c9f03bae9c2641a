"""Every case ends in exactly one verdict, with a one-line reason a person can act on."""

from __future__ import annotations

import numpy as np
import pytest
from candidates import (
    changes_weights_in_place,
    chatty,
    drops_a_layer,
    dw_not_averaged,
    exits,
    float64_always,
    forgets_dx,
    hangs,
    intermediates_of_the_wrong_shape,
    nan_gradient,
    raises,
    returns_none,
    returns_strings,
    returns_tensors_that_require_grad,
    returns_torch_tensors,
    sigmoid_mse_only,
    transposed_dw,
    with_intermediates,
    without_dx,
)
from helpers import assert_verdict, check

from mybackprop import Architecture, Layer, Problem
from mybackprop.harness.cases import CaseConfig, build_problem


def make_problem(dtype="float32", activations=("tanh", "sigmoid"), loss="mse", reduction="mean",
                 batch=7, seed=5):
    layers = tuple(Layer(w, a) for w, a in zip((4, 3), activations, strict=True))
    config = CaseConfig(Architecture(3, layers, loss, reduction), batch, dtype, 1.0, 1.0, seed)
    return build_problem(config)


@pytest.mark.parametrize("function, reason", [
    (raises, "raised ValueError: boom"),
    (returns_none, "returned a NoneType, expected a dict"),
    (drops_a_layer, "dW has 1 entries for 2 layers"),
    (transposed_dw, "dW1 has shape (3, 4), expected (4, 3)"),
    (float64_always, "dW1 has dtype float64, expected float32"),
    (nan_gradient, "dW1[0, 0] is NaN or inf where the oracles are finite"),
    (changes_weights_in_place, "changed its input W1 in place"),
    (exits, "called sys.exit(3)"),
    (forgets_dx, "returned no dX: return it, or declare returns_dX=False"),
    (returns_tensors_that_require_grad, "dW1 is a Tensor that numpy cannot read"),
    (returns_strings, "dX has dtype <U12: return real numbers"),
])
def test_misbehaving_candidate_is_an_error_with_its_reason(both_oracles, function, reason):
    problem = make_problem()
    before = [a.copy() for a in problem.arrays()]
    outcome = check(function, problem, both_oracles)
    assert_verdict(outcome, "error")
    assert reason in outcome.reason and "\n" not in outcome.reason
    for original, now in zip(before, problem.arrays(), strict=True):  # the oracles' copy is intact
        np.testing.assert_array_equal(original, now)


def test_printing_to_stdout_is_an_error_and_the_output_is_kept_out_of_ours(both_oracles,
                                                                           capsys):
    outcome = check(chatty, make_problem(), both_oracles)
    assert_verdict(outcome, "error")
    assert outcome.reason == ("printed 38 characters to stdout "
                              "(first: 'debug output the harness must swallow')")
    assert capsys.readouterr().out == ""


def test_unsupported_case_is_skipped_with_the_reason(both_oracles):
    outcome = check(sigmoid_mse_only, make_problem(), both_oracles)
    assert_verdict(outcome, "skipped")
    assert outcome.reason == "activation tanh not supported"
    supported = make_problem(activations=("sigmoid", "sigmoid"))
    assert_verdict(check(sigmoid_mse_only, supported, both_oracles), "pass")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "batch_mean"])
def test_dw_not_divided_by_batch_fails_on_exactly_the_dw_tensors(both_oracles, dtype, reduction):
    outcome = check(dw_not_averaged, make_problem(dtype, reduction=reduction), both_oracles)
    assert_verdict(outcome, "fail")
    assert [c.name for c in outcome.failing] == ["dW1", "dW2"]
    worst = outcome.failing[0]
    assert worst.candidate == pytest.approx(7 * worst.reference, rel=1e-5)  # off by N = 7
    assert outcome.message().splitlines()[1].startswith("  dW1[")


def test_dw_not_divided_by_batch_is_right_for_a_sum(both_oracles):
    assert_verdict(check(dw_not_averaged, make_problem(reduction="sum"), both_oracles), "pass")


def test_a_tiny_relative_error_in_one_float64_element_fails(both_oracles):
    import mybackprop as mb

    def off_by_1e_10(problem):
        answer = mb.matrix(problem)
        answer["dW"][1][0, 0] *= 1 + 1e-10
        return answer

    outcome = check(off_by_1e_10, make_problem("float64"), both_oracles)
    assert_verdict(outcome, "fail")
    assert [c.name for c in outcome.failing] == ["dW2"]
    assert outcome.failing[0].worst_index == (0, 0)


def test_oracles_disagreeing_on_the_leaky_relu_kink_is_not_a_fail(both_oracles):
    import mybackprop as mb

    arch = Architecture(1, (Layer(1, "leaky_relu", bias=False),), "mse", "sum")
    problem = Problem(arch, [np.ones((1, 1))], [None], np.zeros((1, 1)), -np.ones((1, 1)))
    assert_verdict(check(mb.matrix, problem, both_oracles), "oracle_disagreement")


def test_candidate_declaring_no_dx_is_judged_without_it(both_oracles):
    outcome = check(without_dx, make_problem(), both_oracles)
    assert_verdict(outcome, "pass")
    assert "dX" not in {c.name for c in outcome.comparisons}


def test_a_hanging_candidate_is_stopped_at_the_time_limit(both_oracles):
    from helpers import as_candidate

    from mybackprop.harness.runner import Checker

    outcome = Checker(both_oracles, time_limit=0.5).check(as_candidate(hangs), make_problem())
    assert_verdict(outcome, "error")
    assert outcome.reason == "hung: no answer within the time limit of 0.5 s"


def test_foreign_arrays_numpy_can_read_are_taken(both_oracles):
    assert_verdict(check(returns_torch_tensors, make_problem(), both_oracles), "pass")


def test_declared_intermediates_are_taken_and_their_shapes_checked(both_oracles):
    problem = make_problem()
    assert_verdict(check(with_intermediates, problem, both_oracles), "pass")
    outcome = check(intermediates_of_the_wrong_shape, problem, both_oracles)
    assert_verdict(outcome, "error")
    assert outcome.reason == "A1 has shape (4, 7), expected (7, 4)"
