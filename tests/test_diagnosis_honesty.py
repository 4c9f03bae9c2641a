"""A named cause is a promise (issue 24, item 4): a pattern is named only where no other
explanation fits the case as well, and a wrong loss value does not hide a gradient slip."""

from __future__ import annotations

import numpy as np
from helpers import check

import mybackprop as mb
from mybackprop import Architecture, Layer
from mybackprop.harness.cases import CaseConfig, build_problem


def _problem(widths, activations, loss="mse", reduction="mean", batch=5, seed=3,
             dtype="float64"):
    layers = tuple(Layer(w, a) for w, a in zip(widths[1:], activations, strict=True))
    return build_problem(CaseConfig(Architecture(widths[0], layers, loss, reduction), batch,
                                    dtype, 1.0, 1.0, seed))


def reversed_layers(problem):
    """dW and db in reverse layer order: in a 4-3-4 network dW2's shape is dW1's transposed."""
    answer = mb.matrix(problem)
    answer["dW"], answer["db"] = answer["dW"][::-1], answer["db"][::-1]
    return answer


def whole_gradient_times_n(problem):
    """Every gradient, weights and biases, summed over the batch instead of averaged."""
    answer = mb.matrix(problem)
    n = problem.batch_size
    return {"loss": answer["loss"], "dW": [n * w for w in answer["dW"]],
            "db": [None if b is None else n * b for b in answer["db"]], "dX": n * answer["dX"]}


def transposed_weights(problem):
    answer = mb.matrix(problem)
    answer["dW"] = [w.T for w in answer["dW"]]
    return answer


def loss_and_softmax_wrong(problem):
    """Two mistakes: the loss value halved, and softmax's Jacobian taken element-wise."""
    import dataclasses

    from mybackprop.spec.table import ACTIVATIONS

    arch = problem.architecture
    table = {name: arch.activation_spec(name) for name in ACTIVATIONS}
    table["softmax"] = dataclasses.replace(
        table["softmax"], vjp=lambda z, a, g: g * a * (1 - a))
    answer = mb.matrix(problem, table=table)
    answer["loss"] = answer["loss"] / 2
    return answer


def test_a_shape_two_mistakes_explain_is_never_named_as_one(both_oracles):
    problem = _problem((4, 3, 4), ("tanh", "identity"))
    outcome = check(reversed_layers, problem, both_oracles)
    assert outcome.verdict == "error" and outcome.diagnosis is not None
    assert outcome.diagnosis.pattern == "unknown", outcome.message()
    assert "either it is transposed, or the gradients are in another layer's place" in \
        outcome.diagnosis.summary
    # where the shape says one thing only, it is named
    outcome = check(transposed_weights, _problem((4, 3, 2), ("tanh", "identity")), both_oracles)
    assert outcome.diagnosis.pattern == "transposed", outcome.message()


def test_the_whole_gradient_scaled_is_not_called_a_bias_reduction(both_oracles):
    outcome = check(whole_gradient_times_n, _problem((3, 4, 2), ("tanh", "identity")),
                    both_oracles)
    assert outcome.verdict == "fail" and outcome.diagnosis.pattern == "constant_factor", \
        outcome.message()
    assert outcome.diagnosis.summary.startswith("the whole gradient is N times"), \
        outcome.message()


def test_a_wrong_loss_value_does_not_hide_a_gradient_slip(both_oracles):
    problem = _problem((3, 4, 3), ("tanh", "softmax"), loss="categorical_cross_entropy")
    outcome = check(loss_and_softmax_wrong, problem, both_oracles)
    assert outcome.verdict == "fail"
    diagnosis = outcome.diagnosis
    assert diagnosis.pattern == "softmax_elementwise", outcome.message()
    assert "and the loss value is wrong too" in diagnosis.summary
    assert "loss" in diagnosis.parameters


def raises_in_backward(problem):
    """A course-style helper with the classic slip: delta @ A where delta.T @ A belongs."""
    return _backward(np.ones((problem.batch_size, problem.weights[0].shape[0])), problem.X)


def _backward(delta, A):
    return delta @ A  # should be delta.T @ A


def test_an_error_raised_in_the_candidate_is_placed_in_its_own_code(both_oracles):
    problem = _problem((3, 4, 2), ("tanh", "identity"), batch=6)
    outcome = check(raises_in_backward, problem, both_oracles)
    assert outcome.verdict == "error" and outcome.diagnosis is not None
    assert outcome.diagnosis.pattern == "raised", outcome.message()
    summary = outcome.diagnosis.summary
    assert summary.startswith("_backward raised ValueError: matmul: "), summary
    assert ", at test_diagnosis_honesty.py line " in summary, summary
    assert "return delta @ A" in summary and "delta (6, 4), A (6, 3)" in summary, summary


def test_gradients_in_reverse_layer_order_are_named_so(both_oracles):
    """Where every layer has the same shape the contract cannot tell; the values can."""
    problem = _problem((3, 3, 3, 3), ("tanh", "sigmoid", "identity"))
    outcome = check(reversed_layers, problem, both_oracles)
    assert outcome.verdict == "fail", outcome.message()
    assert outcome.diagnosis.pattern == "reversed_layers", outcome.message()
    assert outcome.diagnosis.summary.startswith("the gradients are in reverse layer order")


def weights_in_half_precision(problem):
    """dW1 pushed through float16 (scaled past its 65,504 limit): inf, while the loss is fine."""
    answer = mb.matrix(problem)
    w = answer["dW"][0]
    with np.errstate(over="ignore"):
        answer["dW"][0] = (w.astype(np.float16) * np.float16(6e4)).astype(w.dtype) / 6e4
    return answer


def test_overflow_is_never_blamed_on_a_finite_loss(both_oracles):
    layers = (Layer(4, "relu"), Layer(3, "identity"))
    problem = build_problem(CaseConfig(Architecture(3, layers, "softmax_cross_entropy", "sum"),
                                       6, "float32", 10.0, 1000.0, 5))
    outcome = check(weights_in_half_precision, problem, both_oracles)
    assert outcome.verdict == "error" and outcome.diagnosis.pattern == "overflow", \
        outcome.message()
    summary = outcome.diagnosis.summary
    assert "while the loss value is finite" in summary and "the loss overflows" not in summary, \
        summary
    assert "relu" not in summary  # a relu layer has no exp to overflow


def weights_through_float16(problem):
    """Every dW computed in float16: cast before the product, cast back after."""
    answer = mb.matrix(problem)
    answer["dW"] = [w.astype(np.float16).astype(w.dtype) for w in answer["dW"]]
    return answer


def weights_slightly_off(problem):
    """Every dW moved by a few parts in a thousand, at random: no narrower type does that."""
    answer = mb.matrix(problem)
    rng = np.random.default_rng(0)
    answer["dW"] = [(w * (1 + 3e-3 * rng.standard_normal(w.shape))).astype(w.dtype)
                    for w in answer["dW"]]
    return answer


def test_weights_computed_in_float16_are_named_so_and_noise_is_not(both_oracles):
    for dtype in ("float32", "float64"):
        problem = _problem((4, 5, 3), ("tanh", "identity"), batch=8, dtype=dtype)
        outcome = check(weights_through_float16, problem, both_oracles)
        assert outcome.verdict == "fail", outcome.message()
        assert outcome.diagnosis.pattern == "reduced_precision", outcome.message()
        assert outcome.diagnosis.summary.startswith("dW1, dW2 are computed in float16")
        outcome = check(weights_slightly_off, problem, both_oracles)
        assert outcome.verdict == "fail", outcome.message()
        assert outcome.diagnosis.pattern != "reduced_precision", outcome.message()


def _float16_products(problem, layers=None):
    """dW_l = Delta_l^T A_(l-1) computed in float16 for the given layers (None: every one),
    from the right Deltas: inf where its terms pass 65,504."""
    answer = mb.matrix(problem)
    spec = problem.architecture.activation_spec
    A, Z = [problem.X], []
    for W, b, name in zip(problem.weights, problem.biases, problem.activations, strict=True):
        Z.append(A[-1] @ W.T + (0 if b is None else b))
        A.append(spec(name).forward(Z[-1]))
    g = 2 * (A[-1] - problem.Y)  # mse summed
    for l in reversed(range(len(Z))):
        delta = spec(problem.activations[l]).backward(Z[l], A[l + 1], g)
        if layers is None or l in layers:
            with np.errstate(over="ignore", invalid="ignore"):
                answer["dW"][l] = (delta.T.astype(np.float16) @ A[l].astype(np.float16)
                                   ).astype(A[l].dtype)
        g = delta @ problem.weights[l]
    return answer


def product_in_float16(problem):
    """dW1 alone computed in float16."""
    return _float16_products(problem, (0,))


def every_product_in_float16(problem):
    """Every dW computed in float16."""
    return _float16_products(problem)


def test_a_weight_gradient_that_overflows_float16_is_placed_in_its_product(both_oracles):
    layers = (Layer(4, "relu"), Layer(3, "identity"))
    problem = build_problem(CaseConfig(Architecture(3, layers, "mse", "sum"),
                                       6, "float32", 300.0, 1.0, 5))
    outcome = check(product_in_float16, problem, both_oracles)
    assert outcome.verdict == "error" and outcome.diagnosis is not None, outcome.message()
    assert outcome.diagnosis.pattern == "reduced_precision", outcome.message()
    assert "past float16's largest number (65504)" in outcome.diagnosis.summary
    assert outcome.diagnosis.parameters == ("dW1",)


def clipped_derivative_only(problem):
    """The loss right, its derivative taken at probabilities clipped to [1e-7, 1]."""
    from mybackprop.spec.table import LOSSES

    loss = LOSSES[problem.loss]
    answer = mb.matrix(problem)
    A = [problem.X]
    for W, b, name in zip(problem.weights, problem.biases, problem.activations, strict=True):
        z = A[-1] @ W.T + (0 if b is None else b)
        A.append(problem.architecture.activation_spec(name).forward(z))
    g = loss.derivative(np.clip(A[-1], 1e-7, 1), problem.Y) / problem.batch_size
    for l in reversed(range(len(problem.weights))):
        f = problem.architecture.activation_spec(problem.activations[l])
        z = A[l] @ problem.weights[l].T + (0 if problem.biases[l] is None else problem.biases[l])
        delta = f.backward(z, A[l + 1], g)
        answer["dW"][l] = delta.T @ A[l]
        answer["db"][l] = None if problem.biases[l] is None else delta.sum(axis=0)
        g = delta @ problem.weights[l]
    answer["dX"] = g
    return answer


def test_a_clip_in_the_derivative_alone_is_named_from_the_gradients(both_oracles):
    layers = (Layer(4, "tanh"), Layer(3, "softmax"))
    problem = build_problem(CaseConfig(Architecture(3, layers, "categorical_cross_entropy",
                                                    "batch_mean"), 6, "float64", 3.0, 100.0, 5))
    from mybackprop.levels.matrix import forward
    assert np.min(forward(problem.float64()).a[-1]) < 1e-7  # the clip moves something
    outcome = check(clipped_derivative_only, problem, both_oracles)
    assert outcome.verdict == "fail", outcome.message()
    assert outcome.diagnosis.pattern == "probability_clipped", outcome.message()
    assert outcome.diagnosis.summary.startswith(
        "the loss's derivative is that of probabilities clipped to [1e-07, 1] (the loss value "
        "is right), the derivative taken at the clipped probabilities: "), outcome.message()



def test_an_overflow_below_a_finite_dx_is_not_blamed_on_an_activation(both_oracles):
    """softplus at |Z| in the hundreds, where exp overflows float32, without biases: only the
    weight gradients overflow, and a finite dX shows every Delta finite, so the overflow is in
    the products, not in softplus (which the candidate computes stably)."""
    layers = (Layer(4, "softplus", bias=False), Layer(3, "identity", bias=False))
    problem = build_problem(CaseConfig(Architecture(3, layers, "mse", "sum"),
                                       6, "float32", 300.0, 1.0, 5))
    outcome = check(every_product_in_float16, problem, both_oracles)
    assert outcome.verdict == "error" and outcome.reason.endswith("; dX is finite"), \
        outcome.message()
    assert outcome.diagnosis.pattern == "reduced_precision", outcome.message()
    assert "softplus" not in outcome.diagnosis.summary
