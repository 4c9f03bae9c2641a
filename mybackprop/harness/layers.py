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

# The attributes a layer object keeps, by default the from-scratch book's names.
DEFAULT_ATTRIBUTES = {"weights": "weights", "biases": "biases", "output": "output",
                      "dweights": "dweights", "dbiases": "dbiases", "dinputs": "dinputs"}


class LayerError(Exception):
    """A layer broke the layer contract (returned the wrong thing): the check's reason."""


@dataclass(frozen=True)
class LayerKit:
    """A user's layers, by role: the dense layer, activations by table name, losses by table
    name, in one of the two styles ("functions" or "objects"), with the conventions its arrays
    are in."""

    style: str
    dense: Any  # (forward, backward) functions, or a class
    activations: Mapping[str, Any]
    losses: Mapping[str, Any]
    reduction: str  # how the user's losses reduce their terms (a table reduction)
    conventions: Conventions
    attributes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    dtypes: tuple[str, ...] = ("float32", "float64")
    # The user's own update step (the trajectory then trains with it): for functions
    # sgd(w, dw, config) -> (next_w, config), config holding "learning_rate"; for objects an
    # optimiser instance with update_params(layer) and its learning_rate.
    update: Any = None
    # Declared by the user: the dense layer object adds each backward's gradients to what it
    # holds, on purpose, and this method of it zeroes them (the trajectory calls it each step)
    zero_grad: str | None = None
    writes_dout: bool = False  # declared: backward may write into the dout it is handed

    def update_name(self) -> str:
        if self.style == "functions":
            return _named(self.update)
        return f"{type(self.update).__name__}.update_params"

    def learning_rate(self, default: float) -> float:
        """The rate the user's update step uses: an optimiser object's own, else `default`
        (handed to an update function in its config)."""
        if self.style == "objects" and self.update is not None:
            return float(self.update.learning_rate)
        return default

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

    def session(self, role: str, kind: str = "", W: np.ndarray | None = None,
                b: np.ndarray | None = None, handed: bool = False) -> Session:
        """One layer, called step by step (for the dense layer, with parameters W, b: canonical,
        or `handed` in the kit's own conventions, gradients then returned in them too)."""
        return Session(self, role, kind, W, b, handed)

    def dense_layer(self, x: np.ndarray, W: np.ndarray, b: np.ndarray, dout: np.ndarray
                    ) -> dict[str, np.ndarray]:
        """out = x W^T + b, then the VJP of dout: {'out', 'dx', 'dW', 'db'}, canonical."""
        layer = self.session("dense", "", W, b)
        out, handle = layer.forward(x.copy())
        return {"out": out, **layer.backward(handle, dout.copy())}

    def activation_layer(self, kind: str, z: np.ndarray, dout: np.ndarray
                         ) -> dict[str, np.ndarray]:
        """a = f(z), then dz = the VJP of dout: {'out', 'dx'}."""
        layer = self.session("activation", kind)
        out, handle = layer.forward(z.copy())
        return {"out": out, **layer.backward(handle, dout.copy())}

    def loss_layer(self, kind: str, y_hat: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The loss and its gradient d loss / d y_hat: {'loss', 'dx'}."""
        layer = self.session("loss", kind)
        loss, handle = layer.forward(y_hat.copy(), y.copy())
        return {"loss": loss, **layer.backward(handle)}

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

    def _read(self, layer: Any, role: str, kind: str, key: str) -> Any:
        name = self.attributes[key]
        if not hasattr(layer, name):
            raise LayerError(f"{self.name_of(role, kind, 'backward')} did not store .{name}: "
                             f"set self.{name} in backward (or declare its name in attributes)")
        return getattr(layer, name)

    # -- the network composed from the layers ----------------------------------------------

    def network(self, handed: Any) -> dict[str, Any]:
        """Forward and backward through the user's layers, in their conventions (the contract's
        adapter hands the problem over and reads the answer back): fresh layers every call."""
        return Stack(self, handed.architecture, handed=True).gradients(
            handed.X, handed.Y, handed.weights, handed.biases)

class Stack:
    """A kit's layers put together for one architecture: a dense layer and its activation per
    layer, then the loss. The layers are made on the first call and kept, as a model keeps
    them: the composed network makes a fresh Stack each case (`handed`: its arrays in the
    kit's conventions); a training loop (`training`) keeps one across steps, sets the
    parameters before each, zeroes declared accumulators, and notes a backward that changes
    its own layer's parameters."""

    def __init__(self, kit: LayerKit, arch: Any, handed: bool = False,
                 training: bool = False) -> None:
        self.kit, self.arch, self.handed, self.training = kit, arch, handed, training
        self.layers: list[tuple[Session, Session | None]] = []
        self.loss: Session | None = None
        self.changed_parameters = ""  # the backward that changed its layer's parameters
        self.last: dict[int, dict[str, np.ndarray]] = {}  # each layer's last gradients

    def gradients(self, X: np.ndarray, Y: np.ndarray, weights: Any, biases: Any
                  ) -> dict[str, Any]:
        """{'loss', 'dW', 'dX', 'db'} at these parameters and this batch."""
        kit, arch = self.kit, self.arch
        if not self.layers:
            self.layers = [(kit.session("dense", "", W, b, self.handed),
                            None if layer.activation == "identity"
                            else kit.session("activation", layer.activation, handed=self.handed))
                           for W, b, layer in zip(weights, biases, arch.layers, strict=True)]
            self.loss = kit.session("loss", arch.loss, handed=self.handed)
        a, handles = X, []
        for (dense, act), W, b in zip(self.layers, weights, biases, strict=True):
            if self.training:
                dense.use_parameters(W, b)
                if kit.zero_grad:  # declared to accumulate: zeroed before each step
                    dense.zero_grad()
            a, handle = dense.forward(a)
            act_handle = None
            if act is not None:
                a, act_handle = act.forward(a)
            handles.append((handle, act_handle))
        assert self.loss is not None
        loss, handle = self.loss.forward(a, Y)
        d = self.loss.backward(handle)["dx"]
        dW, db = [None] * arch.depth, [None] * arch.depth
        for l in reversed(range(arch.depth)):
            dense, act = self.layers[l]
            if act is not None:
                d = act.backward(handles[l][1], d)["dx"]
            held = [np.array(p, copy=True) for p in dense.parameters()] if self.training else []
            grads = dense.backward(handles[l][0], d)
            if held and not all(np.array_equal(p, q) for p, q in zip(
                    held, dense.parameters(), strict=True)):
                self.changed_parameters = dense.name("backward")
            d, dW[l], db[l] = grads["dx"], grads["dW"], grads["db"]
            self.last[l] = grads
        return {"loss": loss, "dW": dW, "db": db, "dX": d}

class Session:
    """One layer of a kit, called step by step as a check wants: ``forward`` returns (output,
    handle) and ``backward(handle, dout)`` the canonical gradients. For functions the handle is
    the cache the forward returned; for objects one instance serves every call and keeps its
    own state (so a second forward before a backward is what a stale cache shows in)."""

    def __init__(self, kit: LayerKit, role: str, kind: str, W: np.ndarray | None,
                 b: np.ndarray | None, handed: bool = False) -> None:
        self.kit, self.role, self.kind, self.handed = kit, role, kind, handed
        c = kit.conventions
        if role == "dense":
            assert W is not None and b is not None
            if handed:
                self.w, self.bias = W, b
                W = W.T if c.weights == "(in, out)" else W
            else:
                self.w, self.bias = np.array(c.weight(W)), c.bias_of(b)
            self.n_out, self.n_in = W.shape
        self.layer: Any = None
        if kit.style == "objects":
            if role == "dense":
                self.layer = kit._dense_object(self.n_in, self.n_out)
                self.set_parameters(self.w, self.bias)
            else:
                thing = kit.activations[kind] if role == "activation" else kit.losses[kind]
                self.layer = kit._instance(thing, role, kind)

    def use_parameters(self, W: np.ndarray, b: np.ndarray) -> None:
        """Canonical W, b for the next forward (a model's parameters after a step)."""
        c = self.kit.conventions
        # copies: an update step writes into the layer's arrays (layer.weights -= ...), and a
        # transpose of an already transposed array would be a view of the caller's
        self.w, self.bias = np.array(c.weight(W)), c.bias_of(b)
        if self.layer is not None:
            self.set_parameters(self.w, self.bias)

    def zero_grad(self) -> None:
        """The declared zero_grad method of a dense layer object, called."""
        getattr(self.layer, self.kit.zero_grad)()

    def set_parameters(self, w: np.ndarray, bias: np.ndarray) -> None:
        setattr(self.layer, self.kit.attributes["weights"], w)
        setattr(self.layer, self.kit.attributes["biases"], bias)

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """The parameters as the object holds them now (functions: as handed)."""
        if self.layer is None:
            return self.w, self.bias
        return (getattr(self.layer, self.kit.attributes["weights"]),
                getattr(self.layer, self.kit.attributes["biases"]))

    def name(self, part: str = "") -> str:
        return self.kit.name_of(self.role, self.kind, part)

    # Arrays cross a session in rows (N, n), canonical, and are handed to the user's layer in
    # the kit's layout (columns: (n, N)); a `handed` session (the composed network) gets and
    # returns them in the kit's layout already.

    def _in(self, a: np.ndarray) -> np.ndarray:
        """The array itself, or its transpose as a view: what the layer writes into it, or
        keeps of it, is the caller's array (the parameters and aliasing checks look there)."""
        if self.handed or self.kit.conventions.layout == "rows":
            return a
        return a.T

    def _out(self, value: Any, rows_shape: tuple[int, int], where: str, name: str) -> np.ndarray:
        c = self.kit.conventions
        shape = rows_shape if c.layout == "rows" else rows_shape[::-1]
        array = _array(value, shape, where, name)
        return array if self.handed or c.layout == "rows" else c.batch_back(array, shape[0])

    def _samples(self, a: np.ndarray) -> int:
        columns = self.handed and self.kit.conventions.layout == "columns"
        return a.shape[-1] if columns else a.shape[0]

    def forward(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[Any, Any]:
        kit, role = self.kit, self.role
        if role == "loss":
            return self._loss_forward(x, y)
        samples = self._samples(x)
        n = self.n_out if role == "dense" else x.size // samples
        mine = self._in(x)
        if kit.style == "functions":
            forward = kit.dense[0] if role == "dense" else kit.activations[self.kind][0]
            called = forward(mine, self.w, self.bias) if role == "dense" else forward(mine)
            out, handle = _pair(called, self.name("forward"), "(out, cache)")
        else:
            out, handle = kit._forward(self.layer, role, self.kind, mine), None
        return self._out(out, (samples, n), self.name("forward"), "out"), handle

    def backward(self, handle: Any, dout: np.ndarray | None = None) -> dict[str, np.ndarray]:
        kit, role, c = self.kit, self.role, self.kit.conventions
        where = self.name("backward") if role != "loss" else self.name()
        if role == "loss":
            if kit.style == "functions":
                dx = handle[1]
            else:
                y_hat, y, _ = handle
                dvalues = getattr(self.layer, kit.attributes["output"], None)
                self.layer.backward(y_hat.copy() if dvalues is None else dvalues, y.copy())
                dx = kit._read(self.layer, role, self.kind, "dinputs")
            return {"dx": self._out(dx, handle[2], where, "dx")}
        assert dout is not None
        samples = self._samples(dout)
        mine = self._in(dout)
        if kit.style == "functions":
            backward = kit.dense[1] if role == "dense" else kit.activations[self.kind][1]
            grads = backward(mine, handle)
            if role == "dense" and (not isinstance(grads, tuple | list) or len(grads) != 3):
                raise LayerError(f"{where} returned {_kind(grads)}: return (dx, dw, db)")
        else:
            self.layer.backward(mine)
            keys = ("dinputs", "dweights", "dbiases") if role == "dense" else ("dinputs",)
            grads = tuple(kit._read(self.layer, role, self.kind, key) for key in keys)
        if role != "dense":
            dx = grads[0] if kit.style == "objects" else grads
            units = dout.size // samples
            return {"dx": self._out(dx, (samples, units), where, "dx")}
        dx, dw, db = grads
        dw = _array(dw, self.w.shape, where, "dw")
        db = _array(db, c.bias_dims(self.n_out), where, "db")
        if not self.handed:
            dw, db = c.weight_back(dw), db.reshape(self.n_out)
        return {"dx": self._out(dx, (samples, self.n_in), where, "dx"), "dW": dw, "db": db}

    def _loss_forward(self, y_hat: np.ndarray, y: Any) -> tuple[float, Any]:
        kit, where, c = self.kit, self.name(), self.kit.conventions
        samples = self._samples(y_hat)
        n_out = y_hat.size // samples
        if not self.handed:
            classes = LOSSES[self.kind].targets == "classes"
            y_hat, y = self._in(y_hat), c.targets_of(y, n_out, y_hat.dtype, classes)
        if kit.style == "functions":
            loss, dx = _pair(kit.losses[self.kind](y_hat, y), where, "(loss, dscores)")
            handle = (None, dx, (samples, n_out))
        else:
            loss = self.layer.forward(y_hat, y)
            handle = (y_hat, y, (samples, n_out))
        values = np.asarray(loss, dtype=np.float64)
        if values.ndim == 1 and len(values) == samples:  # per-sample losses: reduce them
            values = values.sum() / REDUCTIONS[kit.reduction].divisor(samples, 1)
        if values.size != 1:
            raise LayerError(f"{where} returned a loss of shape {values.shape}: return one number")
        return float(values.reshape(())), handle

def layer_functions(*, dense: tuple[Callable[..., Any], Callable[..., Any]],
                    loss: Mapping[str, Callable[..., Any]],
                    activations: Mapping[str, tuple[Callable[..., Any], Callable[..., Any]]]
                    | None = None, reduction: str = "mean", dtypes: Any = None,
                    update: Callable[..., Any] | None = None, writes_dout: bool = False,
                    **conventions: Any) -> Callable[[Any], dict[str, Any]]:
    """Declare layers written as functions: ``dense=(affine_forward, affine_backward)``,
    ``activations={"relu": (relu_forward, relu_backward)}``,
    ``loss={"softmax_cross_entropy": softmax_loss}``; ``reduction`` is how the losses reduce
    (a table name: "mean" averages over every term), and the conventions (``weights="(in,
    out)"``, ``bias_shape``) say how the arrays are laid out; ``update``, your update step
    ``sgd(w, dw, config) -> (next_w, config)``, trains the trajectory; ``writes_dout=True``
    declares that a backward may write into the dout it is handed. Returns the network
    candidate."""
    return _declare("functions", dense, activations or {}, loss, reduction, dtypes, None,
                    conventions, update, None, writes_dout)


def layer_objects(*, dense: type, loss: Mapping[str, type],
                  activations: Mapping[str, type] | None = None, reduction: str = "mean",
                  attributes: Mapping[str, str] | None = None, dtypes: Any = None,
                  update: Any = None, zero_grad: str | None = None,
                  writes_dout: bool = False, **conventions: Any
                  ) -> Callable[[Any], dict[str, Any]]:
    """Declare layers written as classes: ``dense=Layer_Dense`` (made as ``Layer_Dense(n_in,
    n_out)``; its weights and biases are set by the check), ``activations={"relu":
    Activation_ReLU}``, ``loss={"softmax_cross_entropy": SoftmaxCrossEntropy}``;
    ``attributes`` renames what they store (default: weights, biases, output, dweights,
    dbiases, dinputs); ``update``, your optimiser (an instance with ``update_params(layer)``
    and ``learning_rate``), trains the trajectory; ``zero_grad="zero_grad"`` declares that the
    dense layer adds up its gradients on purpose and names the method that zeroes them;
    ``writes_dout=True`` that backward may write into the dout it is handed. Returns the
    network candidate."""
    return _declare("objects", dense, activations or {}, loss, reduction, dtypes, attributes,
                    conventions, update, zero_grad, writes_dout)


def _declare(style: str, dense: Any, activations: Mapping[str, Any], losses: Mapping[str, Any],
             reduction: str, dtypes: Any, attributes: Mapping[str, str] | None,
             conventions: Mapping[str, Any], update: Any = None,
             zero_grad: str | None = None, writes_dout: bool = False
             ) -> Callable[[Any], dict[str, Any]]:
    where = f"layer_{style}"
    if not isinstance(writes_dout, bool):
        raise CandidateLoadError(f"{where}: writes_dout is {writes_dout!r}: give True or False")
    if zero_grad is not None and not (isinstance(zero_grad, str) and callable(
            getattr(dense, zero_grad, None))):
        raise CandidateLoadError(f"{where}: zero_grad is {zero_grad!r}: give the name of the "
                                 f"method of {_named(dense)} that zeroes its gradients")
    if update is not None and style == "functions" and not callable(update):
        raise CandidateLoadError(f"{where}: update is {_kind(update)}: give your update "
                                 "function sgd(w, dw, config) -> (next_w, config)")
    if update is not None and style == "objects" and not (
            callable(getattr(update, "update_params", None))
            and isinstance(getattr(update, "learning_rate", None), int | float)):
        raise CandidateLoadError(f"{where}: update is {_kind(update)}: give your optimiser "
                                 "instance, with update_params(layer) and its learning_rate")
    for key in conventions:
        if key not in ("weights", "bias_shape", "layout"):
            raise CandidateLoadError(f"{where}: unknown keyword {key}=: layers take weights=, "
                                     "bias_shape= and layout= (one batch per call)")
    if conventions.get("layout", "rows") not in ("rows", "columns"):
        raise CandidateLoadError(f"{where}: layout is {conventions['layout']!r}: layers take "
                                 "'rows' (x is (N, n)) or 'columns' (x is (n, N))")
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
                   tuple(dtypes) if dtypes else ("float32", "float64"), update, zero_grad,
                   writes_dout)
    supports = {"activations": ["identity", *activations], "losses": list(losses),
                "reductions": [reduction], "bias": True, "dtypes": list(kit.dtypes),
                "weights": declared.weights, "bias_shape": declared.bias_shape,
                "layout": declared.layout}

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
    """The layer's output as an array, in its own dtype (a float32 layer's next step gets
    float32, as in its own network), checked for its shape."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise LayerError(f"{where}: {name} is {_kind(value)}, not an array of numbers")
    if array.shape != tuple(shape):
        raise LayerError(f"{where}: {name} has shape {array.shape}, expected {tuple(shape)}")
    return array


def _kind(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}" if value is not None else "None"


def _named(thing: Any) -> str:
    return getattr(thing, "__name__", None) or type(thing).__name__
