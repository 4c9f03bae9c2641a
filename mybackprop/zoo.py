"""A zoo of classic backprop bugs, each a working candidate with exactly one mistake.

    mybackprop check --impl mybackprop.zoo:batch_sum --cases 50

Every mutant is the same small batch backprop (`_backprop`, written like a learner's, from the
public contract) with one step replaced by a slip people really make. Each says, in `EXPECTED`,
which pattern the diagnosis must find, in which layers and tensors, and on which problems the
slip changes the answer at all (`live`: summing instead of averaging is invisible when N = 1).
`tests/test_zoo.py` holds mybackprop to those expectations; `bench/zoo.py` prints the rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mybackprop.harness.runner import FAILING
from mybackprop.levels.matrix import matrix  # the right answer, that a slip is measured against
from mybackprop.spec.problem import Gradients
from mybackprop.spec.table import (
    ACTIVATIONS,
    GELU_C,
    GELU_K,
    LOSSES,
    PARAMETERS,
    REDUCTIONS,
    SELU_SCALE,
    parameterized,
)

Array = np.ndarray


def _entries(problem: Any, parameters: dict[str, float] | None = None) -> list[Any]:
    """Each layer's table entry, with the parameter values the problem says (the attributes
    the contract promises: a repro script's problem has them too) or `parameters`."""
    entries = []
    for name in problem.activations:
        parameter = ACTIVATIONS[name].parameter
        entries.append(ACTIVATIONS[name] if parameter is None else parameterized(
            name, (parameters or {}).get(parameter, getattr(problem, parameter))))
    return entries


def _backprop(problem: Any, *, loss_derivative: Callable[[Array, Array], Array] | None = None,
              divisor: Callable[[int, int], float] | None = None,
              derivative: Callable[[str, Array, Array], Array | None] = lambda f, z, a: None,
              softmax_diagonal: bool = False,
              weight_gradient: Callable[[Array, list[Array], int], Array] | None = None,
              bias_gradient: Callable[[Array], Array] = lambda delta: delta.sum(axis=0),
              forward_bias: Callable[[int, int], bool] = lambda l, depth: True,
              naive_softmax_loss: bool = False, zero_dx: bool = False,
              intermediates: bool = False,
              penalty_gradient: Callable[[float, Array], Array] = lambda c, W: 2 * c * W,
              parameters: dict[str, float] | None = None,
              layer_derivative: Callable[[int, list[Any], Array], Array | None] = (
                  lambda l, specs, z: None),
              propagate: Callable[[Array, Array], Array] = lambda delta, W: delta @ W,
              probability_clip: float | None = None, reverse_layers: bool = False
              ) -> dict[str, Any]:
    """Loss and gradients of the batch; each keyword replaces one step with a slip."""
    weights, biases, X, Y = problem.weights, problem.biases, problem.X, problem.Y
    depth = len(weights)
    loss = LOSSES[problem.loss]
    A, Z = [X], []
    specs = _entries(problem, parameters)  # with the problem's leaky slope, elu alpha
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        z = A[-1] @ W.T
        if b is not None and forward_bias(l, depth):
            z = z + b
        Z.append(z)
        A.append(specs[l].forward(z))
    y_hat = A[-1]
    n_terms = 1 if loss.per_sample else y_hat.shape[1]
    right_divisor = REDUCTIONS[problem.reduction].divisor(len(X), n_terms)
    if naive_softmax_loss:  # exp of the raw logits: no max subtracted
        with np.errstate(all="ignore"):
            e = np.exp(y_hat)
            p = e / e.sum(axis=1, keepdims=True)
            terms = -np.log(p[np.arange(len(Y)), Y])
            d_terms = p - np.eye(y_hat.shape[1], dtype=y_hat.dtype)[Y]
    else:
        # np.clip(p, eps, 1 - eps) before the log, in the value and the derivative alike
        p = y_hat if probability_clip is None else np.clip(
            y_hat, probability_clip, 1 - probability_clip if loss.output == "sigmoid" else 1)
        terms = loss.terms(p, Y)
        d_terms = (loss_derivative or loss.derivative)(p, Y)
    value = terms.sum() / right_divisor
    G = d_terms / (divisor(len(X), n_terms) if divisor else right_divisor)
    dW: list[Array] = [np.empty(0)] * depth
    db: list[Array | None] = [None] * depth
    deltas: list[Array] = [np.empty(0)] * depth
    for l in reversed(range(depth)):
        name, f = problem.activations[l], specs[l]
        slipped = derivative(name, Z[l], A[l + 1])
        if slipped is None:
            slipped = layer_derivative(l, specs, Z[l])
        if slipped is not None:
            delta = G * slipped
        elif name == "softmax" and softmax_diagonal:
            delta = G * A[l + 1] * (1 - A[l + 1])
        else:
            delta = f.backward(Z[l], A[l + 1], G)
        deltas[l] = delta
        dW[l] = weight_gradient(delta, A, l) if weight_gradient else delta.T @ A[l]
        if biases[l] is not None:
            db[l] = bias_gradient(delta)
        G = propagate(delta, weights[l]) if l > 0 else delta @ weights[l]
    if problem.l2:  # + c sum W^2 (c = l2, or l2/2 in the half form), whose gradient is 2 c W
        c = problem.l2 / 2 if problem.l2_half else problem.l2
        penalised = [*weights, *(b for b in biases if b is not None and problem.l2_biases)]
        value = value + c * sum(np.sum(p * p) for p in penalised)
        dW = [g + penalty_gradient(c, W).astype(g.dtype) for g, W in zip(dW, weights, strict=True)]
        if problem.l2_biases:
            db = [None if g is None else g + penalty_gradient(c, b).astype(g.dtype)
                  for g, b in zip(db, biases, strict=True)]
    if reverse_layers:  # lists built from the output down, never reversed
        dW, db = dW[::-1], db[::-1]
    answer = {"loss": value, "dW": dW, "db": db, "dX": np.zeros_like(G) if zero_dx else G}
    if intermediates:
        answer["intermediates"] = {"Z": Z, "A": A[1:], "delta": deltas}
    return answer


@dataclass(frozen=True)
class Expected:
    """What the diagnosis must say about a mutant on one problem. The tensors and the layer come
    from the slip's own effect: those whose float64 value it changes, and the highest layer among
    them (0: only dX; None: only the loss), the first a check meets coming back from the output.
    """

    pattern: str
    factor: str
    tensors: frozenset[str]
    layer: int | None


# name -> (function, pattern, factor); filled by @_mutant
ZOO: dict[str, tuple[Callable[[Any], Any], str, str]] = {}


def _mutant(pattern: str, factor: str = "",
            **supports: Any) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def register(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # every mutant reads the activations' parameters from the problem unless it says
        function.supports = {"leaky_slope": None, "elu_alpha": None,  # type: ignore[attr-defined]
                             **supports}
        ZOO[function.__name__] = (function, pattern, factor)
        return function
    return register


AVERAGING = {"reductions": {"mean", "batch_mean"}}
ELEMENTWISE_LOSSES = {"mse", "binary_cross_entropy_with_logits", "huber"}


@_mutant("constant_factor", "N", **AVERAGING)
def batch_sum(problem: Any) -> dict[str, Any]:
    """dL/dYhat is not divided by N: the batch is summed where the loss averages."""
    return _backprop(problem, divisor=lambda n, terms: terms if problem.reduction == "mean"
                     and terms > 1 else 1)


@_mutant("constant_factor", "1/N", **AVERAGING)
def batch_mean_twice(problem: Any) -> dict[str, Any]:
    """Divides by N, then (dW = mean over samples) divides by N again."""
    return _backprop(problem, divisor=lambda n, terms: n * REDUCTIONS[
        problem.reduction].divisor(n, terms))


@_mutant("constant_factor", "1/2", losses={"mse"})
def mse_missing_two(problem: Any) -> dict[str, Any]:
    """d/dyhat (yhat - y)^2 written as (yhat - y)."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: y_hat - y)


@_mutant("constant_factor", "-1")
def sign_flipped(problem: Any) -> dict[str, Any]:
    """The loss derivative with target and output swapped: the gradient of -L."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: -LOSSES[problem.loss].derivative(
        y_hat, y))


@_mutant("constant_factor", "n_out", reductions={"mean"}, losses=ELEMENTWISE_LOSSES)
def mean_over_samples_only(problem: Any) -> dict[str, Any]:
    """'mean' divides by N only, not by the N x n_out elements it averages."""
    return _backprop(problem, divisor=lambda n, terms: n)


@_mutant("transposed")
def transposed_dw(problem: Any) -> dict[str, Any]:
    """dW_l = A_(l-1)^T Delta_l: inputs by outputs."""
    return _backprop(problem, weight_gradient=lambda delta, A, l: A[l].T @ delta)


@_mutant("zero_gradient")
def zero_bias_gradient(problem: Any) -> dict[str, Any]:
    """db is left at its initial zeros."""
    return _backprop(problem, bias_gradient=lambda delta: np.zeros(delta.shape[1], delta.dtype))


@_mutant("bias_reduction", "1/N", returns_intermediates=True)
def bias_mean(problem: Any) -> dict[str, Any]:
    """db_l = Delta_l averaged over samples, though Delta already carries the 1/N."""
    return _backprop(problem, bias_gradient=lambda delta: delta.mean(axis=0),
                     intermediates=True)


@_mutant("bias_reduction")
def bias_not_reduced(problem: Any) -> dict[str, Any]:
    """db_l = Delta_l, one row per sample, never summed."""
    return _backprop(problem, bias_gradient=lambda delta: delta)


SQUASHING = {"sigmoid", "tanh"}


@_mutant("derivative_at_activation")
def derivative_at_activation(problem: Any) -> dict[str, Any]:
    """sigmoid'(a) and tanh'(a) where sigmoid'(z) and tanh'(z) belong."""
    def slip(name: str, z: Array, a: Array) -> Array | None:
        f = ACTIVATIONS[name]
        return f.derivative(a, f.forward(a)) if name in SQUASHING else None  # no parameters
    return _backprop(problem, derivative=slip)


@_mutant("wrong_activation_derivative", returns_intermediates=True)
def tanh_missing_square(problem: Any) -> dict[str, Any]:
    """tanh'(z) written 1 - tanh(z)."""
    return _backprop(problem, derivative=lambda f, z, a: 1 - a if f == "tanh" else None,
                     intermediates=True)


@_mutant("wrong_activation_derivative")
def leaky_relu_as_relu(problem: Any) -> dict[str, Any]:
    """leaky_relu's derivative with relu's 0 below zero instead of the slope."""
    return _backprop(problem, derivative=lambda f, z, a: (z > 0).astype(z.dtype)
                     if f == "leaky_relu" else None)


@_mutant("wrong_activation_derivative")
def leaky_relu_slope_hard_coded(problem: Any) -> dict[str, Any]:
    """leaky_relu's forward with the problem's slope, its backward with 0.01 hard-coded (a
    LeakyReLU(alpha) class whose backward forgot self.alpha)."""
    return _backprop(problem, derivative=lambda f, z, a: np.where(z > 0, 1.0, 0.01).astype(
        z.dtype) if f == "leaky_relu" else None)


@_mutant("activation_parameter")
def leaky_relu_slope_ignored(problem: Any) -> dict[str, Any]:
    """leaky_relu with the slope 0.01 hard-coded, forward and backward, whatever the problem's
    leaky_slope (a candidate that reads the other parameters and forgot this one)."""
    return _backprop(problem, parameters={"leaky_slope": 0.01})


@_mutant("wrong_activation_derivative")
def elu_derivative_alpha_one(problem: Any) -> dict[str, Any]:
    """elu's derivative below zero written a + 1, right only for alpha = 1 (a + alpha)."""
    return _backprop(problem, derivative=lambda f, z, a: np.where(z > 0, 1.0, a + 1).astype(
        z.dtype) if f == "elu" else None)


@_mutant("wrong_activation_derivative")
def silu_without_product_rule(problem: Any) -> dict[str, Any]:
    """silu'(z) = sigmoid(z), forgetting z sigmoid'(z)."""
    sigmoid = ACTIVATIONS["sigmoid"].forward
    return _backprop(problem, derivative=lambda f, z, a: sigmoid(z) if f == "silu" else None)


@_mutant("wrong_activation_derivative", activations={"tanh", "relu", "identity", "sigmoid"})
def tanh_derivative_from_sigmoid(problem: Any) -> dict[str, Any]:
    """tanh's layers use sigmoid's derivative: the wrong helper called."""
    sigmoid = ACTIVATIONS["sigmoid"]
    return _backprop(problem, derivative=lambda f, z, a: sigmoid.derivative(
        z, sigmoid.forward(z)) if f == "tanh" else None)


@_mutant("shifted_layer", activations={"tanh", "sigmoid", "relu", "softplus"})
def derivative_of_the_layer_above(problem: Any) -> dict[str, Any]:
    """Each layer's delta uses the derivative of the activation of the layer above it (the
    output layer its own): act[l + 1] where act[l] belongs."""
    def above(l: int, specs: list[Any], z: Array) -> Array | None:
        if l + 1 >= len(specs) or specs[l + 1].name == specs[l].name:
            return None
        return specs[l + 1].derivative(z, specs[l + 1].forward(z))
    return _backprop(problem, layer_derivative=above)


@_mutant("wrong_activation_derivative",
         activations={"tanh", "sigmoid", "softplus", "silu", "gelu", "elu", "identity"})
def hidden_derivatives_missing(problem: Any) -> dict[str, Any]:
    """No activation derivative in the hidden layers, whichever their activation: Delta_l =
    dL/dA_l (the output layer's delta written out by hand, right)."""
    def missing(l: int, specs: list[Any], z: Array) -> Array | None:
        return np.ones_like(z) if l < len(specs) - 1 else None
    return _backprop(problem, layer_derivative=missing)


@_mutant("propagation", width=(3, 4))
def propagation_without_weights(problem: Any) -> dict[str, Any]:
    """The gradient passed to the layer below as Delta_l, without W_l, where the widths allow
    it (elsewhere the product is there: a shape error would say so first)."""
    return _backprop(problem, propagate=lambda delta, W: delta if W.shape[0] == W.shape[1]
                     else delta @ W)


@_mutant("wrong_activation_derivative")
def relu_step_missing(problem: Any) -> dict[str, Any]:
    """relu's derivative forgotten: Delta = dL/dA, as if relu were the identity."""
    return _backprop(problem, derivative=lambda f, z, a: np.ones_like(z) if f == "relu" else None)


@_mutant("softmax_elementwise")
def softmax_diagonal(problem: Any) -> dict[str, Any]:
    """softmax's vjp as g * a (1 - a): only the Jacobian's diagonal."""
    return _backprop(problem, softmax_diagonal=True)


@_mutant("shifted_layer")
def dw_off_by_one(problem: Any) -> dict[str, Any]:
    """dW_l = Delta_l^T A_l: the activation of the same layer, not the one below."""
    return _backprop(problem, weight_gradient=lambda delta, A, l: delta.T @ A[l + 1])


@_mutant("forward_wrong", returns_intermediates=True)
def forward_without_output_bias(problem: Any) -> dict[str, Any]:
    """The output layer's bias is left out of the forward pass (the backward uses it)."""
    return _backprop(problem, forward_bias=lambda l, depth: l < depth - 1, intermediates=True)


@_mutant("overflow", losses={"softmax_cross_entropy"})
def naive_softmax_cross_entropy(problem: Any) -> dict[str, Any]:
    """softmax as exp(yhat) / sum exp(yhat), with no max subtracted: inf / inf at large logits."""
    return _backprop(problem, naive_softmax_loss=True)


@_mutant("wrong_loss_derivative", losses={"binary_cross_entropy_with_logits"})
def bce_logits_as_probabilities(problem: Any) -> dict[str, Any]:
    """d/dyhat of BCE-with-logits written yhat - y, as if yhat were already sigmoid(yhat)."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: y_hat - y)


@_mutant("wrong_loss_derivative", losses={"huber"})
def huber_unclipped(problem: Any) -> dict[str, Any]:
    """huber's derivative without the clip to [-1, 1]: the squared part everywhere."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: y_hat - y)


@_mutant("wrong_activation_derivative")
def hardtanh_as_identity(problem: Any) -> dict[str, Any]:
    """hardtanh's derivative taken as 1 everywhere, the clip forgotten."""
    return _backprop(problem, derivative=lambda f, z, a: np.ones_like(z)
                     if f == "hardtanh" else None)


@_mutant("wrong_activation_derivative")
def selu_without_scale(problem: Any) -> dict[str, Any]:
    """selu's derivative written as elu's: the scale 1.0507 left out."""
    selu = ACTIVATIONS["selu"]
    return _backprop(problem, derivative=lambda f, z, a: selu.derivative(z, a) / SELU_SCALE
                     if f == "selu" else None)


@_mutant("wrong_activation_derivative")
def gelu_tanh_without_inner_chain(problem: Any) -> dict[str, Any]:
    """gelu_tanh's derivative with the inner polynomial's derivative taken as the constant."""
    def slip(f: str, z: Array, a: Array) -> Array | None:
        if f != "gelu_tanh":
            return None
        t = np.tanh(GELU_K * (z + GELU_C * z ** 3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_K
    return _backprop(problem, derivative=slip)


@_mutant("constant_factor", "2", losses={"half_mse"})
def half_mse_with_two(problem: Any) -> dict[str, Any]:
    """½ (yhat - y)^2 differentiated as if the ½ were not there: 2 (yhat - y)."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: 2 * (y_hat - y))


@_mutant("wrong_loss_derivative", losses={"categorical_cross_entropy"})
def cross_entropy_fused_twice(problem: Any) -> dict[str, Any]:
    """p - y (dL/dz of softmax and cross-entropy together) used as dL/dp, then the softmax's
    Jacobian applied again."""
    return _backprop(problem, loss_derivative=lambda p, y: p - np.eye(p.shape[1], dtype=p.dtype)[y])


@_mutant("wrong_loss_derivative", losses={"binary_cross_entropy"})
def binary_cross_entropy_fused_twice(problem: Any) -> dict[str, Any]:
    """p - y (dL/dz of sigmoid and cross-entropy together) used as dL/dp, then multiplied by
    sigmoid' again."""
    return _backprop(problem, loss_derivative=lambda p, y: p - y)


@_mutant("wrong_loss_derivative", losses={"l1"})
def l1_as_difference(problem: Any) -> dict[str, Any]:
    """d|yhat - y|/dyhat written yhat - y, the squared error's, where sign(yhat - y) belongs."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: y_hat - y)


@_mutant("wrong_loss_derivative", losses={"multiclass_hinge"})
def hinge_counts_own_margin(problem: Any) -> dict[str, Any]:
    """The target class's own margin (always 1 > 0) counted among the active ones."""
    return _backprop(problem, loss_derivative=lambda y_hat, y: LOSSES["multiclass_hinge"]
                     .derivative(y_hat, y) - np.eye(y_hat.shape[1], dtype=y_hat.dtype)[y])


@_mutant("penalty", l2=None, l2_half=None, l2_biases=None)
def penalty_half_gradient(problem: Any) -> dict[str, Any]:
    """The penalty's gradient written l2 W whatever the form: right for ½ l2 ΣW², half of
    what l2 ΣW² needs."""
    return _backprop(problem, penalty_gradient=lambda c, W: 2 * c * W if problem.l2_half
                     else c * W)


@_mutant("zero_gradient")
def dx_not_propagated(problem: Any) -> dict[str, Any]:
    """The backward loop stops at layer 1: dX is returned as zeros."""
    return _backprop(problem, zero_dx=True)


@_mutant("constant_factor", "1/N", reductions={"sum"})
def mean_gradient_of_a_sum(problem: Any) -> dict[str, Any]:
    """The loss sums over the batch; its gradient is averaged (divided by N) all the same."""
    return _backprop(problem, divisor=lambda n, terms: n)


@_mutant("reversed_layers", width=(3, 3), bias=True)
def gradients_reversed(problem: Any) -> dict[str, Any]:
    """dW and db appended from the output layer down and returned without reversing, in a
    network whose layers all have one shape and a bias (else the shapes give it away)."""
    return _backprop(problem, reverse_layers=True)


@_mutant("reduced_precision")
def weight_gradients_in_float16(problem: Any) -> dict[str, Any]:
    """dW_l = Delta_l^T A_(l-1) computed in float16 (to save memory), then cast back."""
    def in_float16(delta: Array, A: list[Array], l: int) -> Array:
        with np.errstate(over="ignore", invalid="ignore"):
            return (delta.T.astype(np.float16) @ A[l].astype(np.float16)).astype(delta.dtype)
    return _backprop(problem, weight_gradient=in_float16)


@_mutant("probability_clipped", losses={"categorical_cross_entropy", "binary_cross_entropy"})
def probabilities_clipped(problem: Any) -> dict[str, Any]:
    """p clipped to [1e-7, 1 - 1e-7] before the log (Keras' epsilon), in the loss and in its
    derivative: right wherever every probability is inside."""
    return _backprop(problem, probability_clip=1e-7)


# Ordinary networks: inputs 0.1 to 10, logits at the hidden scale (bench/zoo.py's other space
# is CaseSpace's default, where many networks saturate).
MODERATE = {"input_log10_scale": (-1.0, 1.0), "max_output_log10_scale": 0}


def live_cases(name: str, count: int, seed: int = 0, max_draws: int = 3000,
               **space: Any) -> Iterator[tuple[Any, Expected]]:
    """Up to `count` random problems, from what the mutant declares (depth <= 3; `space` sets
    CaseSpace's other ranges), on which its slip changes the answer, with their expectations."""
    from mybackprop.harness.cases import CaseSpace, sample_problem

    function = ZOO[name][0]
    supports = {key: tuple(sorted(value)) for key, value in function.supports.items()
                if key in ("activations", "losses", "reductions")}
    # no L2 penalty unless the mutant declares one (then any, as the run draws them); the
    # activations' parameters as it declares them (None: drawn)
    penalties = {"l2": None} if "l2" in function.supports else {"l2": (0.0,)}
    for key in PARAMETERS:
        declared = function.supports[key]
        penalties[key] = None if declared is None else (declared,)
    if "width" in function.supports:  # a mutant live only in some widths (square layers)
        supports["min_width"], supports["max_width"] = function.supports["width"]
    if "bias" in function.supports:
        supports["bias"] = function.supports["bias"]
    case_space = CaseSpace(**{"max_depth": 3, **penalties, **supports, **space})
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(max_draws):
        problem = sample_problem(rng, case_space)
        expected = expectations(name, problem)
        if expected is not None:
            yield problem, expected
            found += 1
            if found == count:
                return


def expectations(name: str, problem: Any) -> Expected | None:
    """What the diagnosis must say about this mutant on this problem; None where the slip does
    not change the answer (summing instead of averaging when N = 1, tanh's derivative in a
    network without tanh, a naive softmax at small logits), so nothing could detect it."""
    function, pattern, factor = ZOO[name]
    changed = changed_tensors(function, problem)
    if not changed:
        return None
    layers = [0 if name == "dX" else int(name[2:]) for name in changed if name != "loss"]
    if pattern == "transposed":  # a shape error: the shape alone names the mistake, unless
        widths = problem.architecture.widths  # it is another layer's shape too
        shapes = {(widths[l], widths[l - 1]) for l in range(1, len(widths))}
        # the first tensor of the wrong shape is the one the error names
        first = next((l for l in range(1, len(widths)) if widths[l] != widths[l - 1]), None)
        if first is not None and (widths[first - 1], widths[first]) in shapes:
            pattern = "unknown"  # "transposed, or another layer's gradient": both are said
    return Expected(pattern, factor, frozenset(changed), max(layers) if layers else None)


def score(outcome: Any, expected: Expected) -> tuple[bool, bool, bool]:
    """(detected, localized, diagnosed) for one checked case of a mutant.

    Detected: not pass. Localized: the diagnosis names only tensors the slip changed, and for a
    fail (every tensor compared) the first diverging layer; an error stops at the first tensor of
    the wrong shape or the first NaN, which may be any layer the slip changed. Diagnosed: the
    pattern (named first, or said beside another that fits the case as well), and the factor
    among the readings given.
    """
    detected = outcome.verdict in FAILING
    diagnosis = outcome.diagnosis
    if not detected or diagnosis is None:
        return detected, False, False
    # the right pattern, alone or said beside another that fits the case as well
    diagnosed = expected.pattern in (diagnosis.pattern, *diagnosis.also) and (
        not expected.factor or expected.factor in diagnosis.factor.split(" = "))
    named = set(diagnosis.parameters) - {"loss"}
    tensors = bool(diagnosis.parameters) and named <= expected.tensors
    layers = {0 if n == "dX" else int(n[2:]) for n in expected.tensors if n != "loss"}
    layer = (diagnosis.layer == expected.layer if outcome.verdict == "fail"
             else diagnosis.layer is None or diagnosis.layer in layers)
    return detected, tensors and layer, diagnosed


def _named(answer: dict[str, Any]) -> dict[str, Any]:
    """A contract answer by report name (loss, dW1, db1, ..., dX), shapes unchecked."""
    gradients = Gradients(answer["loss"], answer["dW"], answer["db"], answer["dX"])
    return {"loss": gradients.loss, **gradients.tensors()}


def changed_tensors(function: Callable[[Any], Any], problem: Any) -> set[str]:
    """The tensors the slip changes: of another shape, NaN/inf in the problem's own dtype where
    the right answer is finite, or in float64 off by more than 1e-6 of the right tensor's size."""
    changed: set[str] = set()
    exact = problem.as_float64()
    for p in (problem, exact):
        right, wrong = (_named(answer) for answer in (matrix(p), function(p)))
        for name, r in right.items():
            r, w = np.asarray(r, dtype=np.float64), np.asarray(wrong[name], dtype=np.float64)
            if r.shape != w.shape or not np.all(np.isfinite(w)) or (
                    p is exact and np.linalg.norm(r - w) > 1e-6 * np.linalg.norm(r)):
                changed.add(name)
    return changed
