"""The activation/loss table is right, stable, and validation fails in one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from mybackprop import ACTIVATIONS, LOSSES, Architecture, Layer, Problem, SpecError
from mybackprop.spec.table import ACTIVATION_TABLE, LOSS_TABLE

Z = np.linspace(-6, 6, 49) + 0.0123  # off every kink


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("act", ACTIVATION_TABLE, ids=lambda a: a.name)
def test_activation_derivative_matches_finite_difference(act):
    z = Z.reshape(7, 7)
    a = act.forward(z)
    if act.elementwise:
        np.testing.assert_allclose(act.derivative(z, a), central_difference(act.forward, z),
                                   rtol=1e-6, atol=1e-8)
        fd2 = central_difference(lambda x: act.derivative(x, act.forward(x)), z)
        np.testing.assert_allclose(act.second_derivative(z, a), fd2, rtol=1e-5, atol=1e-7)
    else:  # the Jacobian, column by column, and the vjp agrees with it
        jac = act.derivative(z, a)
        for j in range(z.shape[1]):
            e = np.zeros_like(z)
            e[:, j] = 1.0
            np.testing.assert_allclose(jac[:, :, j], central_difference(
                lambda t, e=e: act.forward(z + t * e), 0.0), rtol=1e-6, atol=1e-8)
        g = np.random.default_rng(0).standard_normal(z.shape)
        np.testing.assert_allclose(act.backward(z, a, g), np.einsum("ni,nij->nj", g, jac))


@pytest.mark.parametrize("act", ACTIVATION_TABLE, ids=lambda a: a.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_is_finite_and_keeps_dtype_at_huge_inputs(act, dtype):
    z = np.array([[-1e4, -800.0, -90.0, 0.5, 90.0, 800.0, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        a = act.forward(z)
        d = act.derivative(z, a)
    assert a.dtype == dtype and d.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))


@pytest.mark.parametrize("loss", LOSS_TABLE, ids=lambda s: s.name)
def test_loss_derivative_matches_finite_difference(loss):
    rng = np.random.default_rng(1)
    y_hat = rng.standard_normal((5, 3)) * 2
    if loss.output is not None:  # a loss on probabilities takes its output layer's
        y_hat = ACTIVATIONS[loss.output].forward(y_hat)
    y = {"classes": rng.integers(0, 3, 5), "probabilities": rng.uniform(0, 1, (5, 3)),
         "dense": rng.standard_normal((5, 3))}[loss.targets]
    fd = np.zeros_like(y_hat)
    for idx in np.ndindex(*y_hat.shape):
        e = np.zeros_like(y_hat)
        e[idx] = 1.0
        fd[idx] = central_difference(lambda t, e=e: loss.terms(y_hat + t * e, y).sum(), 0.0)
    np.testing.assert_allclose(loss.derivative(y_hat, y), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss", [x for x in LOSS_TABLE if x.output is None],
                         ids=lambda s: s.name)
def test_loss_is_finite_at_logits_that_overflow_a_naive_exp(loss):
    y_hat = np.array([[1e4, -1e4], [-800.0, 800.0]], dtype=np.float32)
    y = {"classes": np.array([1, 0]), "probabilities": np.full((2, 2), 0.5, np.float32),
         "dense": np.zeros((2, 2), np.float32)}[loss.targets]
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        assert np.all(np.isfinite(loss.terms(y_hat, y)))
        assert np.all(np.isfinite(loss.derivative(y_hat, y)))


@pytest.mark.parametrize("loss", [x for x in LOSS_TABLE if x.output is not None],
                         ids=lambda s: s.name)
def test_a_loss_on_probabilities_is_finite_where_it_is_called_sound(loss):
    """Inside its soundness limit, in float32, the formula on probabilities is finite; at
    logits that overflow a naive exp it is past the limit, which says why."""
    rng = np.random.default_rng(3)
    y = {"classes": rng.integers(0, 3, 50), "probabilities": rng.uniform(0, 1, (50, 3))}
    for scale in (1.0, 10.0, 100.0, 1000.0):
        z = (rng.standard_normal((50, 3)) * scale).astype(np.float32)
        ratio, why = loss.soundness(z, "float32")
        if ratio > 1:
            assert "float32" in why
            continue
        p = ACTIVATIONS[loss.output].forward(z)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            assert np.all(np.isfinite(loss.terms(p, y[loss.targets].astype(np.float32)
                                                 if loss.targets != "classes" else y["classes"])))
            assert np.all(np.isfinite(loss.derivative(p, y[loss.targets])))
    assert loss.soundness(np.array([[1e4, -1e4, 0.0]]), "float32")[0] > 1


def test_every_kinked_activation_records_each_frameworks_convention():
    for act in ACTIVATION_TABLE:
        for kink in act.kinks:
            assert set(kink.conventions) == {"torch", "jax"}, act.name
            assert kink.left != kink.right, act.name


def _problem(arch=None, **override):
    arch = arch or Architecture(3, (Layer(4, "tanh"), Layer(2, "identity")), "mse", "mean")
    rng = np.random.default_rng(0)
    fields = {
        "weights": [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))],
        "biases": [np.zeros(4), np.zeros(2)],
        "X": rng.standard_normal((5, 3)),
        "Y": rng.standard_normal((5, 2)),
    }
    fields.update(override)
    return Problem(arch, **fields)


def _ce_arch():
    return Architecture(3, (Layer(4, "tanh"), Layer(2, "identity")), "softmax_cross_entropy")


@pytest.mark.parametrize("make, message", [
    (lambda: Architecture(3, (Layer(0, "relu"),)), "layer 1 has width 0"),
    (lambda: Architecture(0, (Layer(2, "relu"),)), "the input has width 0"),
    (lambda: Architecture(3, (Layer(2, "rleu"),)), "unknown activation 'rleu' (did you mean"),
    (lambda: Architecture(3, (Layer(2, "relu"),), loss="mae"), "unknown loss 'mae'"),
    (lambda: Architecture(3, (Layer(2, "relu"),), reduction="avg"), "unknown reduction 'avg'"),
    (lambda: Architecture(3, ()), "no layers"),
    (lambda: _problem(Y=np.zeros((5, 3))), "Y has shape (5, 3), expected (5, 2)"),
    (lambda: _problem(_ce_arch(), Y=np.array([0, 1, 2, 0, 1])), "class index 2 outside [0, 2)"),
    (lambda: _problem(_ce_arch(), Y=np.zeros((5, 2))), "integer class indices of shape (5,)"),
    (lambda: _problem(X=np.zeros((5, 3), np.float16)), "X has dtype float16: use float32 or"),
    (lambda: _problem(X=np.full((5, 3), np.nan)), "X contains NaN or inf"),
    (lambda: _problem(weights=[np.full((4, 3), np.inf), np.zeros((2, 4))]), "W1 contains NaN"),
    (lambda: _problem(weights=[np.zeros((3, 4)), np.zeros((2, 4))]),
     "W1 has shape (3, 4), expected (4, 3)"),
    (lambda: _problem(biases=[np.zeros(4), None]), "b2 is None"),
    (lambda: _problem(weights=[np.zeros((4, 3))], biases=[np.zeros(4)]), "1 weights and 1 bias"),
    (lambda: _problem(X=np.zeros((5, 3), np.float32)), "W1 has dtype float64 but X has float32"),
    (lambda: _problem(X=np.zeros((0, 3))), "the batch is empty"),
])
def test_invalid_input_is_one_line_naming_the_problem(make, message):
    with pytest.raises(SpecError) as info:
        make()
    text = str(info.value)
    assert message in text
    assert "\n" not in text and ":" in text  # one line: the problem, then the fix


def test_tables_hold_every_name_of_the_design():
    assert set(ACTIVATIONS) == {"identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus",
                                "elu", "gelu", "silu", "softmax",
                                "gelu_tanh", "selu", "hardtanh"}  # variants real code uses
    assert set(LOSSES) == {"mse", "softmax_cross_entropy", "binary_cross_entropy_with_logits",
                           "huber",  # and the conventions real code uses (issue 22)
                           "half_mse", "categorical_cross_entropy", "binary_cross_entropy", "l1",
                           "multiclass_hinge"}
