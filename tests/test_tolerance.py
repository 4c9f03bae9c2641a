"""The tolerance judges a gradient by the size of what flowed into it, not by its own size."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import pytest
from helpers import assert_verdict, check
from hypothesis import given

import mybackprop as mb
from mybackprop import Architecture, Layer, Problem, SpecError
from mybackprop.judging.tolerance import Tolerance, gradient_scales
from mybackprop.strategies import problems

# dL/dW = 2 sum_n (w x_n - y_n) x_n with x = (1, 1): two terms of size ~2000 that cancel to -4e-9.
W, Y1, Y2 = 0.3, 0.3 + 1000.0 + 2e-9, 0.3 - 1000.0


def cancelling_problem() -> Problem:
    arch = Architecture(1, (Layer(1, "identity", bias=False),), "mse", "sum")
    return Problem(arch, [np.array([[W]])], [None], np.ones((2, 1)), np.array([[Y1], [Y2]]))


def exact_dw() -> float:
    return float(2 * ((Fraction(W) - Fraction(Y1)) + (Fraction(W) - Fraction(Y2))))


def perturbed(relative: float, problem: Problem) -> dict:
    answer = mb.matrix(problem)
    answer["dW"][0] = answer["dW"][0] * (1 + relative)
    return answer


def test_a_gradient_near_zero_by_cancellation_passes_when_correct(both_oracles):
    problem = cancelling_problem()
    assert exact_dw() == pytest.approx(-4e-9, rel=1e-3)  # ~1e-12 of the terms that cancelled
    outcome = check(mb.matrix, problem, both_oracles)
    assert_verdict(outcome, "pass")


@pytest.mark.parametrize("relative", [0.05, -0.05, 1.0])
def test_and_fails_when_perturbed_by_far_less_than_fixed_tolerances_allow(both_oracles,
                                                                          relative):
    problem = cancelling_problem()
    outcome = check(functools.partial(perturbed, relative), problem, both_oracles)
    assert_verdict(outcome, "fail")
    assert [c.name for c in outcome.failing] == ["dW1"]
    # gradcheck's defaults (|a - b| <= 1e-5 + 1e-3 |b|) would call every one of these right.
    error = abs(relative * exact_dw())
    assert error <= 1e-5 + 1e-3 * abs(exact_dw())


def test_tolerance_factor_overrides_per_dtype_and_rejects_nonsense():
    assert Tolerance.parse("float32=4").factor == {"float32": 4.0, "float64": 16.0}
    for text, message in (("float16=2", "the dtypes are float32, float64"),
                          ("float64=-1", "give a finite number > 0"),
                          ("float32=inf", "give a finite number > 0"),
                          ("float64", "is not DTYPE=NUMBER")):
        with pytest.raises(SpecError, match=message):
            Tolerance.parse(text)


def test_errors_are_reported_in_ulps_of_the_candidates_dtype(both_oracles):
    problem = cancelling_problem()
    outcome = check(functools.partial(perturbed, 1.0), problem, both_oracles)
    worst = outcome.failing[0]
    spacing = np.spacing(abs(worst.reference))
    assert worst.ulps == pytest.approx(abs(worst.candidate - worst.reference) / spacing)
    assert f"{worst.ulps:.3g} ulp" in outcome.message()


@given(problems())
def test_quadrature_propagation_is_never_looser_than_the_bound(problem):
    # sqrt(sum (x e)^2) <= sum |x| e term by term, and the rounding terms are shared, so the
    # quadrature variant (measured in bench/tolerance_models.py) only ever tightens.
    bound = gradient_scales(problem).tensors
    quadrature = gradient_scales(problem, propagation="quadrature").tensors
    for name, scale in bound.items():
        assert np.all(quadrature[name] <= scale * (1 + 1e-12)), name


def test_an_unknown_propagation_is_a_one_line_error():
    with pytest.raises(SpecError, match="unknown error propagation 'gaussian': choose one of "
                                        "bound, quadrature"):
        gradient_scales(cancelling_problem(), propagation="gaussian")


# Found by a 100,000-case sweep (seed 5, cases 35807 and 93452): silu at z = -709.85, just past
# where e^-z overflows in float64. torch computes sigmoid(z) = 1/(1 + e^-z) = 0 exactly, and so
# silu'(z) = 0 and dX = 0; the truth is ~ z e^z = -5e-306, which the matrix level gets. The
# underflow floor (k tiny) was too small for formulas that multiply the lost sigmoid by z.
UNDERFLOW_CASES = [
    {"architecture": {"input_width": 7, "layers": [
        {"width": 1, "activation": "silu", "bias": False},
        {"width": 4, "activation": "gelu", "bias": False}], "loss": "huber", "reduction": "mean"},
     "batch_size": 59, "dtype": "float64", "input_scale": 624.0137137395002,
     "output_scale": 1000.0, "seed": 3006890900, "kinks": "avoid"},
    {"architecture": {"input_width": 1, "layers": [
        {"width": 1, "activation": "silu", "bias": True},
        {"width": 14, "activation": "tanh", "bias": False},
        {"width": 6, "activation": "tanh", "bias": False}], "loss": "mse", "reduction": "mean"},
     "batch_size": 64, "dtype": "float64", "input_scale": 530.6318619285082,
     "output_scale": 1000.0, "seed": 1966815174, "kinks": "avoid"},
]


@pytest.mark.parametrize("config", UNDERFLOW_CASES, ids=["silu-gelu", "silu-tanh-tanh"])
def test_an_underflowed_sigmoid_times_z_is_rounding_not_a_bug(both_oracles, config):
    from mybackprop.harness.cases import CaseConfig, build_problem
    from mybackprop.zoo import sign_flipped

    problem = build_problem(CaseConfig.from_dict(config))
    z = problem.X @ problem.weights[0].T + (0 if problem.biases[0] is None else problem.biases[0])
    assert z.min() < -709.78  # e^-z overflows: torch's sigmoid(z) is exactly 0 there
    assert_verdict(check(mb.matrix, problem, both_oracles), "pass")
    assert_verdict(check(sign_flipped, problem, both_oracles), "fail")  # still sees a bug


def test_a_derivative_that_cancels_at_saturation_is_bounded_by_what_is_left():
    """sigmoid(50) rounds to 1 in float64 and a(1 - a) to exactly 0: the error of a correct
    a(1 - a) there is the distance left, sigmoid(-50) ~ 2e-22, not an ulp of 1 (the bound was
    2 ulps of 1, 1e6 times the derivative itself: a gradient through a unit saturated on one side
    could be off by any factor and pass). Likewise tanh's 1 - a^2."""
    from mybackprop import Architecture, Layer, Problem
    from mybackprop.judging.tolerance import UNIT_ROUNDOFF, forward_errors

    for activation, exact in (("sigmoid", lambda z: 1 / (1 + np.exp(z))),
                              ("tanh", lambda z: 4 * np.exp(-2 * z) / (1 + np.exp(-2 * z)) ** 2)):
        arch = Architecture(1, (Layer(3, activation, bias=False),), "mse", "sum")
        problem = Problem(arch, [np.array([[50.0], [0.5], [-3.0]])], [None],
                          np.ones((1, 1)), np.zeros((1, 3)))
        e = forward_errors(problem, ("float64",)).e_derivative[0][0, 0]  # units of u, per unit
        u = UNIT_ROUNDOFF["float64"]
        assert e[0] * u <= 8 * exact(50.0), (activation, e[0] * u, exact(50.0))
        # unsaturated units keep a bound of at least an ulp of the derivative itself
        derivative = forward_errors(problem, ("float64",)).derivative[0][0]
        assert e[1] >= 0.5 * derivative[1] and e[2] >= 0.5 * derivative[2]


def test_a_sigmoid_saturated_low_is_judged_by_an_ulp_of_its_value_not_of_1():
    """1 / (1 + e^-z) is right to an ulp of sigmoid(z) however small it is, and so is a(1 - a):
    at z = -50 (sigmoid 2e-22) the bound is an ulp of the value plus what z's own rounding (50
    ulps of it) moves it by, where (1 + tanh(z/2)) / 2, judged so only for candidates measured
    to compute it (harness/formulation.py), needs an ulp of 1."""
    from mybackprop import Architecture, Layer, Problem
    from mybackprop.judging.tolerance import UNIT_ROUNDOFF, forward_errors

    arch = Architecture(1, (Layer(1, "sigmoid", bias=False),), "mse", "sum")  # z = -50 exactly
    problem = Problem(arch, [np.array([[-50.0]])], [None], np.ones((1, 1)), np.zeros((1, 1)))
    value = 1 / (1 + np.exp(50.0))
    u = UNIT_ROUNDOFF["float64"]
    for loose, least, most in ((frozenset(), value, 64 * value),
                               (frozenset({"sigmoid"}), 1.0, 2.0)):
        fwd = forward_errors(problem, ("float64",), loose=loose)
        e_value, e_derivative = fwd.e_a[1][0, 0, 0], fwd.e_derivative[0][0, 0, 0]
        assert least <= e_value <= most and least <= e_derivative <= most, (
            loose, e_value * u, e_derivative * u)
