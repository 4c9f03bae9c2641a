"""The layer zoo: classic slips in layer code, each a kit with exactly one mistake.

The network zoo (mybackprop.zoo) slips inside one backprop function; people who build from
layers slip inside one layer, or in the state a layer keeps between calls. Each mutant here is
the reference kit below (course-style layer functions, or book-style layer objects) with one
function or method replaced, and says which check must catch it ("activation relu", or a state
check such as "dense, accumulation") and how the diagnosis must begin. `tests/test_layers.py`
and `bench/zoo.py --layers` hold mybackprop to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mybackprop.harness.layers import layer_functions, layer_objects

# -- the reference kits ------------------------------------------------------------------------


def affine_forward(x: Any, w: Any, b: Any) -> tuple[Any, Any]:
    return x.dot(w) + b, (x, w, b)


def affine_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    x, w, _ = cache
    return dout.dot(w.T), x.T.dot(dout), dout.sum(axis=0)


def relu_forward(x: Any) -> tuple[Any, Any]:
    return np.maximum(0, x), x


def relu_backward(dout: Any, cache: Any) -> Any:
    return dout * (cache > 0)


def sigmoid_forward(x: Any) -> tuple[Any, Any]:
    out = 0.5 * (1 + np.tanh(0.5 * x))  # stable for any x
    return out, out


def sigmoid_backward(dout: Any, cache: Any) -> Any:
    return dout * cache * (1 - cache)


def tanh_forward(x: Any) -> tuple[Any, Any]:
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: Any, cache: Any) -> Any:
    return dout * (1 - cache ** 2)


def softmax_loss(x: Any, y: Any) -> tuple[float, Any]:
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(x)
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return float(-log_probs[np.arange(n), y].mean()), dx / n


FUNCTIONS = {"affine_backward": affine_backward, "relu_backward": relu_backward,
             "sigmoid_backward": sigmoid_backward, "tanh_backward": tanh_backward,
             "softmax_loss": softmax_loss}


def function_kit(softmax: tuple[Callable[..., Any], Callable[..., Any]] | None = None,
                 **replaced: Callable[..., Any]) -> Callable[[Any], Any]:
    """The reference kit of layer functions, some replaced (by name); `softmax`: a softmax
    activation's pair, beside the others."""
    f = {**FUNCTIONS, **replaced}
    activations = {"relu": (relu_forward, f["relu_backward"]),
                   "sigmoid": (sigmoid_forward, f["sigmoid_backward"]),
                   "tanh": (tanh_forward, f["tanh_backward"])}
    if softmax is not None:
        activations["softmax"] = softmax
    return layer_functions(
        dense=(replaced.get("affine_forward", affine_forward), f["affine_backward"]),
        activations=activations, loss={"softmax_cross_entropy": f["softmax_loss"]},
        weights="(in, out)")


class Dense:
    def __init__(self, n_inputs: int, n_neurons: int) -> None:
        self.weights = np.zeros((n_inputs, n_neurons))
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs: Any) -> None:
        self.inputs = inputs
        self.output = inputs @ self.weights + self.biases

    def backward(self, dvalues: Any) -> None:
        self.dweights = self.inputs.T @ dvalues
        self.dbiases = dvalues.sum(axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class ReLU:
    def forward(self, inputs: Any) -> None:
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues: Any) -> None:
        self.dinputs = dvalues * (self.inputs > 0)


class MSE:
    def forward(self, y_pred: Any, y_true: Any) -> float:
        return float(np.mean((y_pred - y_true) ** 2))

    def backward(self, dvalues: Any, y_true: Any) -> None:
        self.dinputs = 2 * (dvalues - y_true) / dvalues.size


def object_kit(dense: type = Dense, relu: type = ReLU) -> Callable[[Any], Any]:
    return layer_objects(dense=dense, activations={"relu": relu}, loss={"mse": MSE},
                         weights="(in, out)", bias_shape="(1, n)")


# -- the mutants -------------------------------------------------------------------------------
# Each slip is written as a user would name it; a mutant's diagnosis begins with that name.


def relu_backward_unmasked(dout: Any, cache: Any) -> Any:
    return dout.copy()


def relu_backward_masks_by_dout(dout: Any, cache: Any) -> Any:
    return dout * (dout > 0)


def sigmoid_backward_without_dout(dout: Any, cache: Any) -> Any:
    return cache * (1 - cache)


def sigmoid_backward_at_output(dout: Any, cache: Any) -> Any:
    s = 0.5 * (1 + np.tanh(0.5 * cache))  # sigmoid'(a) where sigmoid'(x) belongs
    return dout * s * (1 - s)


def tanh_backward_sign(dout: Any, cache: Any) -> Any:
    return dout * (cache ** 2 - 1)


def affine_backward_averaged(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw / len(dout), db / len(dout)


def affine_backward_db_mean(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


def affine_backward_dx_doubled(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, db = affine_backward(dout, cache)
    return 2 * dx, dw, db


def softmax_loss_summed(x: Any, y: Any) -> tuple[float, Any]:
    loss, dx = softmax_loss(x, y)
    return loss, dx * len(x)


def softmax_loss_without_one(x: Any, y: Any) -> tuple[float, Any]:
    loss, dx = softmax_loss(x, y)
    dx = dx.copy()
    dx[np.arange(len(x)), y] += 1 / len(x)
    return loss, dx


def softmax_forward(x: Any) -> tuple[Any, Any]:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out = e / e.sum(axis=1, keepdims=True)
    return out, out


def softmax_backward_diagonal(dout: Any, cache: Any) -> Any:
    return dout * cache * (1 - cache)  # the Jacobian's diagonal only


def relu_backward_in_place(dout: Any, cache: Any) -> Any:
    dx = dout
    dx[cache <= 0] = 0
    return dx


_LAST: dict[str, Any] = {}


def affine_forward_global(x: Any, w: Any, b: Any) -> tuple[Any, Any]:
    _LAST["x"] = x
    return x.dot(w) + b, (x, w, b)


def affine_backward_global(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    _, w, _ = cache
    return dout.dot(w.T), _LAST["x"].T.dot(dout), dout.sum(axis=0)


class Dense_Accumulating(Dense):  # noqa: N801 - the book's class names
    """Gradients added into arrays made on the first backward, never zeroed."""

    def backward(self, dvalues: Any) -> None:
        if not hasattr(self, "dweights"):
            self.dweights = np.zeros_like(self.weights)
            self.dbiases = np.zeros_like(self.biases)
        self.dweights = self.dweights + self.inputs.T @ dvalues
        self.dbiases = self.dbiases + dvalues.sum(axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class Dense_Stale(Dense):  # noqa: N801
    """Keeps the inputs of its first forward only."""

    def forward(self, inputs: Any) -> None:
        if not hasattr(self, "inputs"):
            self.inputs = inputs
        self.output = inputs @ self.weights + self.biases


class Dense_Updating(Dense):  # noqa: N801
    """Takes an SGD step inside backward."""

    def backward(self, dvalues: Any) -> None:
        super().backward(dvalues)
        self.weights = self.weights - 0.1 * self.dweights


@dataclass(frozen=True)
class LayerMutant:
    name: str
    make: Callable[[], Callable[[Any], Any]]  # the kit
    check: str  # the result that must fail: a layer ("activation relu") or a state check
    said: str  # how its diagnosis must begin


def _mutant(name: str, check: str, says: str, slip: Any, **kit: Any) -> LayerMutant:
    """The reference kit with the `slip` in place (function_kit's keyword, or object_kit's
    dense=); its diagnosis begins with the slip's name, then `says`."""
    where = f"{slip.__name__}.backward" if isinstance(slip, type) else slip.__name__
    make = ((lambda: object_kit(dense=slip)) if isinstance(slip, type)
            else (lambda: function_kit(**kit)))
    return LayerMutant(name, make, check, f"{where} {says}")


MUTANTS = (
    _mutant("relu_unmasked", "activation relu", "returns dout unchanged",
            relu_backward_unmasked, relu_backward=relu_backward_unmasked),
    _mutant("relu_masks_by_dout", "activation relu", "masks by the sign of dout",
            relu_backward_masks_by_dout, relu_backward=relu_backward_masks_by_dout),
    _mutant("sigmoid_without_dout", "activation sigmoid",
            "returns the derivative sigmoid'(x) alone", sigmoid_backward_without_dout,
            sigmoid_backward=sigmoid_backward_without_dout),
    _mutant("sigmoid_at_output", "activation sigmoid", "evaluates the derivative at the output",
            sigmoid_backward_at_output, sigmoid_backward=sigmoid_backward_at_output),
    _mutant("tanh_sign", "activation tanh", "returns dx with the wrong sign",
            tanh_backward_sign, tanh_backward=tanh_backward_sign),
    _mutant("affine_averaged", "dense", "returns dw and db averaged over the samples",
            affine_backward_averaged, affine_backward=affine_backward_averaged),
    _mutant("affine_db_mean", "dense", "returns db = dout's mean", affine_backward_db_mean,
            affine_backward=affine_backward_db_mean),
    _mutant("affine_dx_doubled", "dense", "returns dx 2 times the right value",
            affine_backward_dx_doubled, affine_backward=affine_backward_dx_doubled),
    _mutant("softmax_loss_summed", "loss softmax_cross_entropy",
            "returns the gradient of the summed loss", softmax_loss_summed,
            softmax_loss=softmax_loss_summed),
    _mutant("softmax_loss_without_one", "loss softmax_cross_entropy",
            "returns softmax(scores) / N without subtracting 1", softmax_loss_without_one,
            softmax_loss=softmax_loss_without_one),
    _mutant("softmax_elementwise", "activation softmax",
            "multiplies dout by the diagonal of the softmax Jacobian alone",
            softmax_backward_diagonal, softmax=(softmax_forward, softmax_backward_diagonal)),
    _mutant("relu_writes_into_dout", "activation relu, parameters",
            "changes its argument dout", relu_backward_in_place,
            relu_backward=relu_backward_in_place),
    _mutant("affine_reads_a_global", "dense, stale cache", "ignores its cache argument",
            affine_backward_global, affine_forward=affine_forward_global,
            affine_backward=affine_backward_global),
    _mutant("dense_accumulates", "dense, accumulation", "accumulates its gradients",
            Dense_Accumulating),
    _mutant("dense_keeps_first_inputs", "dense, stale cache",
            "after a second forward uses the first forward's inputs", Dense_Stale),
    _mutant("dense_updates_in_backward", "dense, parameters", "changes the layer's weights",
            Dense_Updating),
)
