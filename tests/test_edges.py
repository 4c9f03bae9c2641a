"""Named edge cases: saturation, large logits, kinks, conventions the oracles must get right."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_verdict, check
from hypothesis import given

import mybackprop as mb
from mybackprop import Architecture, Layer, Problem
from mybackprop.harness.cases import (
    CaseConfig,
    CaseSpace,
    KinkUnavoidable,
    build_problem,
    on_kink,
    placed_on_kinks,
)
from mybackprop.spec.problem import validate
from mybackprop.strategies import case_configs, problem_or_reject


def one_layer(activation, z, loss="mse", dtype=np.float64, y=None):
    """A 1-1 network whose pre-activations are exactly z (W = 1, no bias)."""
    z = np.asarray(z, dtype=dtype).reshape(-1, 1)
    arch = Architecture(1, (Layer(1, activation, bias=False),), loss, "sum")
    if y is None:
        y = np.zeros(len(z), np.int64) if loss == "softmax_cross_entropy" else np.zeros_like(z)
    return Problem(arch, [np.ones((1, 1), dtype)], [None], z, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_softmax_cross_entropy(both_oracles, dtype):
    arch = Architecture(2, (Layer(3, "identity"),), "softmax_cross_entropy", "mean")
    X = np.array([[1e4, -1e4], [800.0, 3.0]], dtype)
    problem = Problem(arch, [np.eye(3, 2, dtype=dtype)], [np.zeros(3, dtype)], X,
                      np.array([1, 2]))
    assert_verdict(check(mb.matrix, problem, both_oracles), "pass")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus", "silu", "gelu", "elu"])
def test_saturation(both_oracles, activation, dtype):
    problem = one_layer(activation, [-100.0, -30.0, -9.0, 9.0, 30.0, 100.0], dtype=dtype)
    assert_verdict(check(mb.matrix, problem, both_oracles), "pass")


def test_softplus_has_no_threshold_switch(torch_oracle, jax_oracle):
    # torch.nn.functional.softplus returns z itself above 20; the design's softplus never does.
    z = 25.0
    softplus, sigmoid = np.logaddexp(z, 0.0), 1 / (1 + np.exp(-z))
    for oracle in (torch_oracle, jax_oracle):
        g = oracle.gradients(one_layer("softplus", [z]))  # loss (a - 0)^2, dL/dz = 2 a f'(z)
        assert g.loss == pytest.approx(softplus**2, rel=1e-15)
        assert g.dX[0, 0] == pytest.approx(2 * softplus * sigmoid, rel=1e-14)
        assert g.dX[0, 0] != pytest.approx(2 * z, rel=1e-12)  # what the threshold would give


def test_jax_gelu_is_the_exact_erf_form(jax_oracle):
    # The tanh approximation differs from the erf form by ~1e-4 near z = 2.
    from math import erf, exp, pi, sqrt
    z = 2.0
    gelu = z * 0.5 * (1 + erf(z / sqrt(2)))
    gelu_prime = 0.5 * (1 + erf(z / sqrt(2))) + z * exp(-z * z / 2) / sqrt(2 * pi)
    g = jax_oracle.gradients(one_layer("gelu", [z]))  # loss gelu(z)^2
    assert g.loss == pytest.approx(gelu**2, rel=1e-14)
    assert g.dX[0, 0] == pytest.approx(2 * gelu * gelu_prime, rel=1e-14)


def test_relu_exact_kink_conventions_agree(torch_oracle, jax_oracle):
    # relu'(0) is 0 in both frameworks; the table records it.
    problem = one_layer("relu", [0.0, 1.0], y=np.full((2, 1), -1.0))
    assert torch_oracle.gradients(problem).dX[0, 0] == 0.0
    assert jax_oracle.gradients(problem).dX[0, 0] == 0.0
    assert mb.ACTIVATIONS["relu"].kinks[0].conventions == {"torch": 0.0, "jax": 0.0}


def test_leaky_relu_kink_conventions_differ_as_recorded(torch_oracle, jax_oracle):
    problem = one_layer("leaky_relu", [0.0], y=np.full((1, 1), -1.0))
    kink = mb.ACTIVATIONS["leaky_relu"].kinks[0]
    # dL/dz = 2 (a - y) f'(0) with a = 0, y = -1.
    assert torch_oracle.gradients(problem).dX[0, 0] == 2 * kink.conventions["torch"]
    assert jax_oracle.gradients(problem).dX[0, 0] == 2 * kink.conventions["jax"]


def test_dead_relu_feeding_relu_without_bias_is_unavoidable_kink():
    arch = Architecture(1, (Layer(1, "relu", bias=False), Layer(1, "relu", bias=False)), "mse")
    config = CaseConfig(arch, batch_size=64, dtype="float64", input_scale=1.0,
                        output_scale=1.0, seed=3)
    with pytest.raises(KinkUnavoidable):
        build_problem(config)


def test_same_config_gives_the_same_arrays():
    arch = Architecture(3, (Layer(4, "tanh"), Layer(2, "sigmoid")), "mse")
    config = CaseConfig(arch, batch_size=5, dtype="float32", input_scale=10.0,
                        output_scale=1.0, seed=11)
    a, b = build_problem(config), build_problem(config)
    for x, y in zip(a.arrays(), b.arrays(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.dtype == np.float32


@given(config=case_configs(CaseSpace(kinks="avoid")) | case_configs(CaseSpace(kinks="hit")))
def test_drawn_problems_pass_the_checks_they_skip(config):
    """The case generator builds problems without validate() (valid by construction): every
    drawn one must pass it, in both kink modes, at every scale and dtype."""
    problem = problem_or_reject(config)
    validate(problem)
    assert problem.dtype == np.dtype(config.dtype)
    assert problem.meta["config"] == config.to_dict()


@given(config=case_configs(CaseSpace(activations=("relu", "leaky_relu"), kinks="hit")))
def test_the_kink_check_finds_placed_units_with_and_without_a_kept_forward_pass(config):
    """Kink mode puts a unit of every layer exactly on its kink: the check finds it, both on
    the drawn problem (whose forward pass the draw kept) and on a fresh copy (computed anew,
    stopping at the first such layer), and finds nothing once the placed units are exempt."""
    problem = problem_or_reject(config)
    placed = placed_on_kinks(problem)
    assert placed
    for one in (problem, problem.copy()):
        assert on_kink(one)
        assert not on_kink(one, exempt=placed, placed=True)  # and the loss terms put on one
