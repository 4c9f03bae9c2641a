"""Layer kits: a user's own layers, declared once, checked alone and composed into networks.

Most hand-written backprop is built from layers, in one of two styles:

- functions (a well-known vision course): ``affine_forward(x, w, b) -> (out, cache)`` and
  ``affine_backward(dout, cache) -> (dx, dw, db)``; ``relu_forward(x) -> (out, cache)`` and
  ``relu_backward(dout, cache) -> dx``; a loss ``softmax_loss(scores, y) -> (loss, dscores)``;
- objects (a from-scratch book and libraries like it): ``Dense(n_inputs, n_neurons)`` with
  ``forward(inputs)`` and ``backward(dvalues)`` that keep their own caches and store
  ``output``, ``dweights``, ``dbiases`` and ``dinputs`` as attributes; activations the same
  without parameters; a loss object whose ``forward(y_pred, y_true)`` returns the loss and whose
  ``backward(dvalues, y_true)`` stores ``dinputs``.

``layer_functions(...)`` and ``layer_objects(...)`` declare which of the user's functions or
classes are the dense layer, each activation and the loss, with the plug-in contract's
conventions (weight orientation, bias shape) so nothing is converted by hand. What they return
is a candidate like any other (``--impl module:name`` checks the network composed from the
layers on random architectures) that also carries its ``LayerKit``: ``mybackprop layers`` and
``mybackprop.check_layers`` check every layer alone (harness/layer_check.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop.harness.contract import CandidateLoadError, candidate
from mybackprop.harness.conventions import ConventionError, Conventions
from mybackprop.spec.table import ACTIVATIONS, LOSSES, REDUCTIONS

STYLES = ("functions", "objects")
# The attributes a layer object keeps, by default the from-scratch book's names.
DEFAULT_ATTRIBUTES = {"weights": "weights", "biases": "biases", "output": "output",
                      "dweights": "dweights", "dbiases": "dbiases", "dinputs": "dinputs"}


class LayerError(Exception):
    """A layer broke the layer contract (returned the wrong thing): the check's reason."""


@dataclass(frozen=True)
class LayerKit:
    """A user's layers, by role: the dense layer, activations by table name, losses by table
    name, in one of the two STYLES, with the conventions its arrays are in."""

    style: str
    dense: Any  # (forward, backward) functions, or a class
    activations: Mapping[str, Any]
    losses: Mapping[str, Any]
    reduction: str  # how the user's losses reduce their terms (a table reduction)
    conventions: Conventions
    attributes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    dtypes: tuple[str, ...] = ("float32", "float64")

    # -- names for messages ---------------------------------------------------------------

    def name_of(self, role: str, kind: str = "", part: str = "") -> str:
        """The user's own name for a part: 'relu_backward', 'Activation_ReLU.backward'."""
        if role == "dense":
            thing = self.dense
        elif role == "activation":
            thing = self.activations[kind]
        else:
            thing = self.losses[kind]
        if self.style == "functions":
            if role == "loss":
                return _named(thing)
            return _named(thing[0] if part == "forward" else thing[1])
        return f"{_named(thing)}.{part}" if part else _named(thing)

    # -- one layer, in canonical arrays (rows, W (out, in), b (n,)) ------------------------

    def dense_layer(self, x: np.ndarray, W: np.ndarray, b: np.ndarray, dout: np.ndarray
                    ) -> dict[str, np.ndarray]:
        """out = x W^T + b, then the VJP of dout: {'out', 'dx', 'dW', 'db'}, canonical."""
        c = self.conventions
        w, bias = c.weight(W), c.bias_of(b)
        if self.style == "functions":
            forward, backward = self.dense
            out, cache = _pair(forward(x.copy(), w, bias), self.name_of("dense", part="forward"),
                               "(out, cache)")
            grads = backward(dout.copy(), cache)
            where = self.name_of("dense", part="backward")
            if not isinstance(grads, tuple | list) or len(grads) != 3:
                raise LayerError(f"{where} returned {_kind(grads)}: return (dx, dw, db)")
            dx, dw, db = grads
        else:
            layer = self._dense_object(W.shape[1], W.shape[0])
            setattr(layer, self.attributes["weights"], w)
            setattr(layer, self.attributes["biases"], bias)
            out = self._forward(layer, "dense", "", x.copy())
            self._backward(layer, "dense", "", dout.copy())
            dx, dw, db = (self._read(layer, "dense", "", key)
                          for key in ("dinputs", "dweights", "dbiases"))
        where = self.name_of("dense", part="backward")
        return {"out": _array(out, (len(x), W.shape[0]), self.name_of("dense", part="forward"),
                              "out"),
                "dx": _array(dx, x.shape, where, "dx"),
                "dW": c.weight_back(_array(dw, c.weight(W).shape, where, "dw")),
                "db": _array(db, c.bias_dims(b.size), where, "db").reshape(b.size)}

    def activation_layer(self, kind: str, z: np.ndarray, dout: np.ndarray
                         ) -> dict[str, np.ndarray]:
        """a = f(z), then dz = the VJP of dout: {'out', 'dx'}."""
        if self.style == "functions":
            forward, backward = self.activations[kind]
            out, cache = _pair(forward(z.copy()), self.name_of("activation", kind, "forward"),
                               "(out, cache)")
            dx = backward(dout.copy(), cache)
        else:
            layer = self._instance(self.activations[kind], "activation", kind)
            out = self._forward(layer, "activation", kind, z.copy())
            self._backward(layer, "activation", kind, dout.copy())
            dx = self._read(layer, "activation", kind, "dinputs")
        return {"out": _array(out, z.shape, self.name_of("activation", kind, "forward"), "out"),
                "dx": _array(dx, z.shape, self.name_of("activation", kind, "backward"), "dx")}

    def loss_layer(self, kind: str, y_hat: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The loss and its gradient d loss / d y_hat: {'loss', 'dx'}."""
        if self.style == "functions":
            function = self.losses[kind]
            loss, dx = _pair(function(y_hat.copy(), y.copy()), self.name_of("loss", kind),
                             "(loss, dscores)")
        else:
            layer = self._instance(self.losses[kind], "loss", kind)
            loss = layer.forward(y_hat.copy(), y.copy())
            dvalues = getattr(layer, self.attributes["output"], None)
            layer.backward(y_hat.copy() if dvalues is None else dvalues, y.copy())
            dx = self._read(layer, "loss", kind, "dinputs")
        where = self.name_of("loss", kind)
        values = np.asarray(loss, dtype=np.float64)
        if values.ndim == 1 and len(values) == len(y_hat):  # per-sample losses: reduce them
            divisor = REDUCTIONS[self.reduction].divisor(len(y_hat), 1)
            values = values.sum() / divisor
        if values.size != 1:
            raise LayerError(f"{where} returned a loss of shape {values.shape}: return one number")
        return {"loss": float(values.reshape(())), "dx": _array(dx, y_hat.shape, where, "dx")}

    # -- objects ---------------------------------------------------------------------------

    def _dense_object(self, n_in: int, n_out: int) -> Any:
        try:
            return self.dense(n_in, n_out)
        except TypeError as exc:
            raise LayerError(f"{_named(self.dense)}({n_in}, {n_out}) raised TypeError: {exc}; "
                             "a dense class is made as Dense(n_inputs, n_neurons)") from None

    def _instance(self, cls: Any, role: str, kind: str) -> Any:
        try:
            return cls()
        except TypeError as exc:
            raise LayerError(f"{_named(cls)}() raised TypeError: {exc}; an activation or loss "
                             "class is made with no arguments") from None

    def _forward(self, layer: Any, role: str, kind: str, inputs: np.ndarray) -> Any:
        returned = layer.forward(inputs)
        stored = getattr(layer, self.attributes["output"], None)
        if stored is None and returned is None:
            raise LayerError(f"{self.name_of(role, kind, 'forward')} neither returned its output "
                             f"nor stored it as .{self.attributes['output']}")
        return stored if stored is not None else returned

    def _backward(self, layer: Any, role: str, kind: str, dvalues: np.ndarray) -> None:
        layer.backward(dvalues)

    def _read(self, layer: Any, role: str, kind: str, key: str) -> Any:
        name = self.attributes[key]
        if not hasattr(layer, name):
            raise LayerError(f"{self.name_of(role, kind, 'backward')} did not store .{name}: "
                             f"set self.{name} in backward (or declare its name in attributes)")
        return getattr(layer, name)

    # -- the network composed from the layers ----------------------------------------------

    def network(self, handed: Any) -> dict[str, Any]:
        """Forward and backward through the user's layers, in their conventions (the contract's
        adapter hands the problem over and reads the answer back)."""
        arch = handed.architecture
        specs = arch.layers
        a, steps = handed.X, []
        for W, b, layer in zip(handed.weights, handed.biases, specs, strict=True):
            step = self._network_step(a, W, b, layer.activation)
            steps.append(step)
            a = step["a"]
        loss_name = arch.loss
        if self.style == "functions":
            loss, d = _pair(self.losses[loss_name](a, handed.Y), self.name_of("loss", loss_name),
                            "(loss, dscores)")
        else:
            obj = self._instance(self.losses[loss_name], "loss", loss_name)
            loss = obj.forward(a, handed.Y)
            dvalues = getattr(obj, self.attributes["output"], None)
            obj.backward(a if dvalues is None else dvalues, handed.Y)
            d = self._read(obj, "loss", loss_name, "dinputs")
        values = np.asarray(loss, dtype=np.float64)
        if values.ndim == 1 and len(values) == handed.batch_size:
            values = values.sum() / REDUCTIONS[self.reduction].divisor(handed.batch_size, 1)
        dW, db = [None] * len(specs), [None] * len(specs)
        for l in reversed(range(len(specs))):
            d, dW[l], db[l] = self._network_back(steps[l], d, specs[l].activation)
        return {"loss": float(np.asarray(values).reshape(())), "dW": dW, "db": db, "dX": d}

    def _network_step(self, a: np.ndarray, W: np.ndarray, b: np.ndarray, activation: str
                      ) -> dict[str, Any]:
        if self.style == "functions":
            z, cache = _pair(self.dense[0](a, W, b), self.name_of("dense", part="forward"),
                             "(out, cache)")
            if activation == "identity":
                return {"a": z, "cache": cache, "act": None}
            out, act_cache = _pair(self.activations[activation][0](z),
                                   self.name_of("activation", activation, "forward"),
                                   "(out, cache)")
            return {"a": out, "cache": cache, "act": act_cache}
        layer = self._dense_object(*W.shape if self.conventions.weights == "(in, out)"
                                   else W.shape[::-1])
        setattr(layer, self.attributes["weights"], W)
        setattr(layer, self.attributes["biases"], b)
        z = self._forward(layer, "dense", "", a)
        if activation == "identity":
            return {"a": z, "cache": layer, "act": None}
        act = self._instance(self.activations[activation], "activation", activation)
        return {"a": self._forward(act, "activation", activation, z), "cache": layer,
                "act": act}

    def _network_back(self, step: dict[str, Any], d: Any, activation: str) -> tuple[Any, ...]:
        if self.style == "functions":
            if step["act"] is not None:
                d = self.activations[activation][1](d, step["act"])
            grads = self.dense[1](d, step["cache"])
            if not isinstance(grads, tuple | list) or len(grads) != 3:
                raise LayerError(f"{self.name_of('dense', part='backward')} returned "
                                 f"{_kind(grads)}: return (dx, dw, db)")
            return tuple(grads)
        if step["act"] is not None:
            step["act"].backward(d)
            d = self._read(step["act"], "activation", activation, "dinputs")
        layer = step["cache"]
        layer.backward(d)
        return tuple(self._read(layer, "dense", "", key)
                     for key in ("dinputs", "dweights", "dbiases"))


def layer_functions(*, dense: tuple[Callable[..., Any], Callable[..., Any]],
                    loss: Mapping[str, Callable[..., Any]],
                    activations: Mapping[str, tuple[Callable[..., Any], Callable[..., Any]]]
                    | None = None, reduction: str = "mean", dtypes: Any = None,
                    **conventions: Any) -> Callable[[Any], dict[str, Any]]:
    """Declare layers written as functions: ``dense=(affine_forward, affine_backward)``,
    ``activations={"relu": (relu_forward, relu_backward)}``,
    ``loss={"softmax_cross_entropy": softmax_loss}``; ``reduction`` is how the losses reduce
    (a table name: "mean" averages over every term), and the conventions (``weights="(in,
    out)"``, ``bias_shape``) say how the arrays are laid out. Returns the network candidate."""
    return _declare("functions", dense, activations or {}, loss, reduction, dtypes, None,
                    conventions)


def layer_objects(*, dense: type, loss: Mapping[str, type],
                  activations: Mapping[str, type] | None = None, reduction: str = "mean",
                  attributes: Mapping[str, str] | None = None, dtypes: Any = None,
                  **conventions: Any) -> Callable[[Any], dict[str, Any]]:
    """Declare layers written as classes: ``dense=Layer_Dense`` (made as ``Layer_Dense(n_in,
    n_out)``; its weights and biases are set by the check), ``activations={"relu":
    Activation_ReLU}``, ``loss={"softmax_cross_entropy": SoftmaxCrossEntropy}``;
    ``attributes`` renames what they store (default: weights, biases, output, dweights,
    dbiases, dinputs). Returns the network candidate."""
    return _declare("objects", dense, activations or {}, loss, reduction, dtypes, attributes,
                    conventions)


def _declare(style: str, dense: Any, activations: Mapping[str, Any], losses: Mapping[str, Any],
             reduction: str, dtypes: Any, attributes: Mapping[str, str] | None,
             conventions: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
    where = f"layer_{style}"
    for key in conventions:
        if key not in ("weights", "bias_shape"):
            raise CandidateLoadError(f"{where}: unknown keyword {key}=: layers take weights= and "
                                     "bias_shape= (rows of samples, one batch per call)")
    try:
        declared = Conventions(**conventions)
    except ConventionError as exc:
        raise CandidateLoadError(f"{where}: {exc}") from None
    if style == "functions":
        _check_pair(where, "dense", dense)
        for name, pair in activations.items():
            _check_pair(where, f"activation {name!r}", pair)
        for name, function in losses.items():
            if not callable(function):
                raise CandidateLoadError(f"{where}: loss {name!r} is {_kind(function)}: give the "
                                         "function loss(scores, y) -> (loss, dscores)")
    else:
        for role, cls in [("dense", dense), *((f"activation {n!r}", c)
                                              for n, c in activations.items()),
                          *((f"loss {n!r}", c) for n, c in losses.items())]:
            if not inspect.isclass(cls):
                raise CandidateLoadError(f"{where}: {role} is {_kind(cls)}: give the class")
    for name in activations:
        if name not in ACTIVATIONS or name == "identity":
            raise CandidateLoadError(f"{where}: activation {name!r} is not one of the table's "
                                     f"({', '.join(n for n in ACTIVATIONS if n != 'identity')})")
    if not losses:
        raise CandidateLoadError(f"{where}: declare at least one loss, e.g. "
                                 "loss={'softmax_cross_entropy': softmax_loss}")
    for name in losses:
        if name not in LOSSES:
            raise CandidateLoadError(f"{where}: loss {name!r} is not one of the table's "
                                     f"({', '.join(LOSSES)})")
    if reduction not in REDUCTIONS:
        raise CandidateLoadError(f"{where}: reduction {reduction!r} is not one of "
                                 f"{', '.join(REDUCTIONS)}")
    names = dict(DEFAULT_ATTRIBUTES)
    for key, value in (attributes or {}).items():
        if key not in DEFAULT_ATTRIBUTES or not isinstance(value, str) or \
                not value.isidentifier():
            raise CandidateLoadError(f"{where}: attributes {key!r}: {value!r}: rename one of "
                                     f"{', '.join(DEFAULT_ATTRIBUTES)} to an attribute name")
        names[key] = value
    kit = LayerKit(style, dense, dict(activations), dict(losses), reduction, declared, names,
                   tuple(dtypes) if dtypes else ("float32", "float64"))
    supports = {"activations": ["identity", *activations], "losses": list(losses),
                "reductions": [reduction], "bias": True, "dtypes": list(kit.dtypes),
                "weights": declared.weights, "bias_shape": declared.bias_shape}

    def network(problem: Any) -> dict[str, Any]:
        return kit.network(problem)

    network.__name__ = network.__qualname__ = "network"
    network.layer_kit = kit  # type: ignore[attr-defined]
    return candidate(**supports)(network)


def kit_of(function: Any) -> LayerKit | None:
    """The LayerKit a declared candidate carries, else None."""
    return getattr(function, "layer_kit", None)


def _check_pair(where: str, role: str, pair: Any) -> None:
    if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(map(callable, pair))):
        raise CandidateLoadError(f"{where}: {role} is {_kind(pair)}: give the pair (forward, "
                                 "backward) of functions")


def _pair(value: Any, where: str, what: str) -> tuple[Any, Any]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise LayerError(f"{where} returned {_kind(value)}: return {what}")
    return value[0], value[1]


def _array(value: Any, shape: tuple[int, ...], where: str, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LayerError(f"{where}: {name} is {_kind(value)}, not an array") from None
    if array.shape != tuple(shape):
        raise LayerError(f"{where}: {name} has shape {array.shape}, expected {tuple(shape)}")
    return array


def _kind(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}" if value is not None else "None"


def _named(thing: Any) -> str:
    return getattr(thing, "__name__", None) or type(thing).__name__
