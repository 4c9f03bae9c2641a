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


def function_kit(**replaced: Callable[..., Any]) -> Callable[[Any], Any]:
    f = {**FUNCTIONS, **replaced}
    return layer_functions(
        dense=(replaced.get("affine_forward", affine_forward), f["affine_backward"]),
        activations={"relu": (relu_forward, f["relu_backward"]),
                     "sigmoid": (sigmoid_forward, f["sigmoid_backward"]),
                     "tanh": (tanh_forward, f["tanh_backward"])},
        loss={"softmax_cross_entropy": f["softmax_loss"]}, weights="(in, out)")


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

@dataclass(frozen=True)
class LayerMutant:
    name: str
    make: Callable[[], Callable[[Any], Any]]  # the kit
    check: str  # the result that must fail: a layer ("activation relu") or a state check
    said: str  # how its diagnosis must begin


def _relu_unmasked(dout: Any, cache: Any) -> Any:
    return dout.copy()


def _relu_masks_by_dout(dout: Any, cache: Any) -> Any:
    return dout * (dout > 0)


def _sigmoid_no_dout(dout: Any, cache: Any) -> Any:
    return cache * (1 - cache)


def _sigmoid_at_output(dout: Any, cache: Any) -> Any:
    s = 0.5 * (1 + np.tanh(0.5 * cache))  # sigmoid'(a) where sigmoid'(x) belongs
    return dout * s * (1 - s)


def _tanh_sign(dout: Any, cache: Any) -> Any:
    return dout * (cache ** 2 - 1)


def _affine_averaged(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw / len(dout), db / len(dout)


def _affine_db_mean(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


def _affine_dx_doubled(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    dx, dw, db = affine_backward(dout, cache)
    return 2 * dx, dw, db


def _softmax_summed(x: Any, y: Any) -> tuple[float, Any]:
    loss, dx = softmax_loss(x, y)
    return loss, dx * len(x)


def _softmax_without_one(x: Any, y: Any) -> tuple[float, Any]:
    loss, dx = softmax_loss(x, y)
    dx = dx.copy()
    dx[np.arange(len(x)), y] += 1 / len(x)
    return loss, dx


def _softmax_forward(x: Any) -> tuple[Any, Any]:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out = e / e.sum(axis=1, keepdims=True)
    return out, out


def _softmax_backward_diagonal(dout: Any, cache: Any) -> Any:
    return dout * cache * (1 - cache)  # the Jacobian's diagonal only


def _relu_in_place(dout: Any, cache: Any) -> Any:
    dx = dout
    dx[cache <= 0] = 0
    return dx


_LAST: dict[str, Any] = {}


def _affine_forward_global(x: Any, w: Any, b: Any) -> tuple[Any, Any]:
    _LAST["x"] = x
    return x.dot(w) + b, (x, w, b)


def _affine_backward_global(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    _, w, _ = cache
    return dout.dot(w.T), _LAST["x"].T.dot(dout), dout.sum(axis=0)


class _DenseAccumulating(Dense):
    def backward(self, dvalues: Any) -> None:
        if not hasattr(self, "dweights"):
            self.dweights = np.zeros_like(self.weights)
            self.dbiases = np.zeros_like(self.biases)
        self.dweights = self.dweights + self.inputs.T @ dvalues
        self.dbiases = self.dbiases + dvalues.sum(axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class _DenseStale(Dense):
    def forward(self, inputs: Any) -> None:
        if not hasattr(self, "inputs"):
            self.inputs = inputs
        self.output = inputs @ self.weights + self.biases


class _DenseUpdating(Dense):
    def backward(self, dvalues: Any) -> None:
        super().backward(dvalues)
        self.weights = self.weights - 0.1 * self.dweights


MUTANTS = (
    LayerMutant("relu_unmasked", lambda: function_kit(relu_backward=_relu_unmasked),
                "activation relu", "_relu_unmasked returns dout unchanged"),
    LayerMutant("relu_masks_by_dout", lambda: function_kit(relu_backward=_relu_masks_by_dout),
                "activation relu", "_relu_masks_by_dout masks by the sign of dout"),
    LayerMutant("sigmoid_without_dout", lambda: function_kit(sigmoid_backward=_sigmoid_no_dout),
                "activation sigmoid", "_sigmoid_no_dout returns the derivative sigmoid'(x) "
                "alone"),
    LayerMutant("sigmoid_at_output", lambda: function_kit(sigmoid_backward=_sigmoid_at_output),
                "activation sigmoid", "_sigmoid_at_output evaluates the derivative at the output"),
    LayerMutant("tanh_sign", lambda: function_kit(tanh_backward=_tanh_sign),
                "activation tanh", "_tanh_sign returns dx with the wrong sign"),
    LayerMutant("affine_averaged", lambda: function_kit(affine_backward=_affine_averaged),
                "dense", "_affine_averaged returns dw and db averaged over the samples"),
    LayerMutant("affine_db_mean", lambda: function_kit(affine_backward=_affine_db_mean),
                "dense", "_affine_db_mean returns db = dout's mean"),
    LayerMutant("affine_dx_doubled", lambda: function_kit(affine_backward=_affine_dx_doubled),
                "dense", "_affine_dx_doubled returns dx 2 times the right value"),
    LayerMutant("softmax_loss_summed", lambda: function_kit(softmax_loss=_softmax_summed),
                "loss softmax_cross_entropy", "_softmax_summed returns the gradient of the summed "
                "loss"),
    LayerMutant("softmax_loss_without_one",
                lambda: function_kit(softmax_loss=_softmax_without_one),
                "loss softmax_cross_entropy", "_softmax_without_one returns softmax(scores) / N "
                "without subtracting 1"),
    LayerMutant("softmax_elementwise",
                lambda: layer_functions(
                    dense=(affine_forward, affine_backward),
                    activations={"softmax": (_softmax_forward, _softmax_backward_diagonal)},
                    loss={"softmax_cross_entropy": softmax_loss}, weights="(in, out)"),
                "activation softmax", "_softmax_backward_diagonal multiplies dout by the "
                "diagonal of the softmax Jacobian alone"),
    LayerMutant("relu_writes_into_dout", lambda: function_kit(relu_backward=_relu_in_place),
                "activation relu, parameters", "_relu_in_place changes its argument dout"),
    LayerMutant("affine_reads_a_global",
                lambda: function_kit(affine_forward=_affine_forward_global,
                                     affine_backward=_affine_backward_global),
                "dense, stale cache", "_affine_backward_global ignores its cache argument"),
    LayerMutant("dense_accumulates", lambda: object_kit(dense=_DenseAccumulating),
                "dense, accumulation", "_DenseAccumulating.backward accumulates its gradients"),
    LayerMutant("dense_keeps_first_inputs", lambda: object_kit(dense=_DenseStale),
                "dense, stale cache", "_DenseStale.backward after a second forward uses the "
                "first forward's inputs"),
    LayerMutant("dense_updates_in_backward", lambda: object_kit(dense=_DenseUpdating),
                "dense, parameters", "_DenseUpdating.backward changes the layer's weights"),
)
