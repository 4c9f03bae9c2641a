"""float32 bounds measured at the case's input by stochastic arithmetic (judging/stochastic.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_verdict, check

import mybackprop as mb
from mybackprop import Architecture, Layer, Problem, problem_from_config
from mybackprop.judging import stochastic
from mybackprop.judging.tolerance import Tolerance, gradient_scales

DEEP = {"architecture": {"input_width": 12, "layers": [
    {"width": 16, "activation": "tanh"}, {"width": 16, "activation": "tanh"},
    {"width": 16, "activation": "tanh"}, {"width": 16, "activation": "tanh"},
    {"width": 4, "activation": "identity"}], "loss": "mse", "reduction": "mean"},
    "batch_size": 32, "dtype": "float32", "input_scale": 1.0, "output_scale": 1.0, "seed": 7}


def allowed(problem: Problem, measured: bool) -> dict[str, np.ndarray]:
    return Tolerance().allowed(gradient_scales(problem, measured=measured), "float32").tensors


def test_through_layers_the_measured_bound_is_far_tighter_and_catches_what_the_linear_missed(
        both_oracles):
    problem = problem_from_config(DEEP)
    measured, linear = allowed(problem, True), allowed(problem, False)
    assert all(np.all(measured[n] <= linear[n]) for n in linear)
    ratio = np.concatenate([(measured[n] / linear[n]).ravel() for n in linear])
    assert np.median(ratio) < 0.1, np.median(ratio)
    for level in (mb.element, mb.vector, mb.matrix):  # correct float32, three summation orders
        assert_verdict(check(level, problem, both_oracles), "pass")

    # An element where a 3e-4 relative error is inside the linear bound, but outside the measured
    reference = mb.matrix(problem.as_float64())["dW"][0]
    eps = 3e-4
    caught = (measured["dW1"] < 0.5 * eps * np.abs(reference)) & \
        (linear["dW1"] > 2 * eps * np.abs(reference))
    assert caught.any()
    index = np.unravel_index(np.argmax(caught), caught.shape)

    def injected(p):
        answer = mb.matrix(p)
        answer["dW"][0][index] *= np.float32(1 + eps)
        return answer

    outcome = check(injected, problem, both_oracles)
    assert_verdict(outcome, "fail")
    assert [c.name for c in outcome.failing] == ["dW1"]


def test_the_measurement_is_a_function_of_the_case_alone():
    problem = problem_from_config(DEEP)
    first = stochastic.spread(problem, "float32")
    again = stochastic.spread(problem_from_config(DEEP).copy(), "float32")
    assert first.keys() == again.keys()
    assert all(np.array_equal(first[n], again[n]) for n in first)


@pytest.mark.parametrize("batch", [1, 64])
def test_identical_rows_err_alike_as_real_rounding_does(both_oracles, batch):
    """A batch of one sample repeated: a real computation makes the same rounding error in every
    row, and the batch sum adds them up (batch times one), where independent draws would let
    them cancel (sqrt(batch) times one) and fail correct code."""
    arch = Architecture(3, (Layer(5, "sigmoid"), Layer(2, "identity")), "mse", "sum")
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=(5, 3)).astype(np.float32),
               rng.normal(size=(2, 5)).astype(np.float32)]
    biases = [rng.normal(size=5).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    X = np.repeat(rng.normal(size=(1, 3)).astype(np.float32), batch, axis=0)
    Y = np.repeat(rng.normal(size=(1, 2)).astype(np.float32), batch, axis=0)
    problem = Problem(arch, weights, biases, X, Y)
    for level in (mb.element, mb.vector, mb.matrix):
        assert_verdict(check(level, problem, both_oracles), "pass")
    if batch > 1:
        one = Problem(arch, weights, biases, X[:1], Y[:1])
        grown = stochastic.spread(problem, "float32")["db1"] / \
            stochastic.spread(one, "float32")["db1"]
        assert np.all(grown > batch / 4), grown  # about batch; sqrt(batch) = 8 is the other
