"""The problem a candidate is handed (architecture, parameters, batch) and the gradients it returns.

Conventions (DESIGN.md): W_l has shape (n_l, n_{l-1}), b_l has shape (n_l,), X has shape
(N, n_0), and Z_l = A_{l-1} @ W_l.T + b_l, A_l = f_l(Z_l), Yhat = A_L.
Everything here validates eagerly and fails with one line that names the problem and the fix.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop.spec.table import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
    PARAMETERS,
    REDUCTIONS,
    Activation,
    Loss,
    Reduction,
    parameterized,
)


class SpecError(ValueError):
    """Invalid architecture, parameters or batch. The message is one line: problem, then fix."""


def choose(kind: str, name: str, table: dict[str, Any]) -> Any:
    """Look `name` up in a table, or fail naming the choices (and the closest one)."""
    if name in table:
        return table[name]
    close = difflib.get_close_matches(str(name), list(table), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpecError(f"unknown {kind} {name!r}{hint}: choose one of {', '.join(table)}")


@dataclass(frozen=True)
class Layer:
    """One dense layer: its width n_l, its activation f_l, and whether it has a bias b_l."""

    width: int
    activation: str
    bias: bool = True


@dataclass(frozen=True)
class Architecture:
    """A dense network and its cost: input width n_0, layers 1..L, loss and reduction."""

    input_width: int
    layers: tuple[Layer, ...]
    loss: str = "mse"
    reduction: str = "mean"
    # An L2 weight penalty added to the reduced loss: l2 * sum W^2 (l2_half: l2/2 * sum W^2),
    # over every weight, and over every bias too when l2_biases. 0: none.
    l2: float = 0.0
    l2_half: bool = False
    l2_biases: bool = False
    # The activations' parameters (spec.table.PARAMETERS), one value per network: leaky_relu's
    # slope below zero and elu's alpha.
    leaky_slope: float = PARAMETERS["leaky_slope"].default
    elu_alpha: float = PARAMETERS["elu_alpha"].default

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise SpecError("the architecture has no layers: give at least one Layer")
        _check_width("the input", self.input_width)
        for number, layer in enumerate(self.layers, start=1):
            _check_width(f"layer {number}", layer.width)
            choose("activation", layer.activation, ACTIVATIONS)
        loss = choose("loss", self.loss, LOSSES)
        choose("reduction", self.reduction, REDUCTIONS)
        if loss.output is not None and self.layers[-1].activation != loss.output:
            raise SpecError(f"{self.loss} takes the probabilities of a {loss.output} output "
                            f"layer, and the last layer is {self.layers[-1].activation}: make it "
                            f"{loss.output}")
        if not (isinstance(self.l2, int | float) and math.isfinite(self.l2) and self.l2 >= 0):
            raise SpecError(f"l2 is {self.l2!r}: the penalty's coefficient is a number >= 0")
        object.__setattr__(self, "l2", float(self.l2))
        for name in PARAMETERS:
            try:
                object.__setattr__(self, name, PARAMETERS[name].check(getattr(self, name)))
            except ValueError as exc:
                raise SpecError(str(exc)) from None

    @property
    def widths(self) -> tuple[int, ...]:
        """(n_0, n_1, ..., n_L)."""
        return (self.input_width, *(layer.width for layer in self.layers))

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def activation_specs(self) -> tuple[Activation, ...]:
        """The table's entry of each layer, with this network's parameter values."""
        return tuple(self.activation_spec(layer.activation) for layer in self.layers)

    def activation_spec(self, name: str) -> Activation:
        entry = ACTIVATIONS[name]
        return entry if entry.parameter is None else parameterized(
            name, getattr(self, entry.parameter))

    def specs_from(self, table: Any) -> list[Activation]:
        """Each layer's entry from `table` (name -> entry): the table's own entries take this
        network's parameter values; an entry a caller doctored is taken as it is."""
        return [self.activation_spec(layer.activation)
                if table[layer.activation] is ACTIVATIONS.get(layer.activation)
                else table[layer.activation] for layer in self.layers]

    @property
    def parameters(self) -> dict[str, float]:
        """The values of the parameters its activations take: {"leaky_slope": 0.2}."""
        used = {ACTIVATIONS[layer.activation].parameter for layer in self.layers}
        return {name: getattr(self, name) for name in PARAMETERS if name in used}

    @property
    def loss_spec(self) -> Loss:
        return LOSSES[self.loss]

    @property
    def reduction_spec(self) -> Reduction:
        return REDUCTIONS[self.reduction]

    @property
    def n_parameters(self) -> int:
        return sum(o * i + (o if layer.bias else 0)
                   for layer, i, o in zip(self.layers, self.widths[:-1], self.widths[1:],
                                          strict=True))

    def describe(self) -> str:
        """'3-4(relu)-2(softmax) softmax_cross_entropy/mean'; a layer without bias is marked nb,
        a parameter off its default follows its activation: '4(leaky_relu 0.2)'."""
        parts = [str(self.input_width)]
        for layer in self.layers:
            parameter = ACTIVATIONS[layer.activation].parameter
            value = "" if parameter is None or getattr(self, parameter) == PARAMETERS[
                parameter].default else f" {getattr(self, parameter):g}"
            parts.append(f"{layer.width}({layer.activation}{value}{'' if layer.bias else ',nb'})")
        return f"{'-'.join(parts)} {self.loss}/{self.reduction}{self.describe_penalty()}"

    def describe_penalty(self) -> str:
        """' + 0.1·ΣW²', ' + ½·0.1·Σ(W²+b²)' (half form, biases too), or '' for none."""
        if not self.l2:
            return ""
        return (f" + {'½·' if self.l2_half else ''}{self.l2:g}·"
                f"Σ{'(W²+b²)' if self.l2_biases else 'W²'}")

    def penalty_coefficient(self) -> float:
        """c in c * sum W^2: l2, or l2 / 2 for the half form."""
        return self.l2 / 2 if self.l2_half else self.l2

    def to_dict(self) -> dict[str, Any]:
        made = {
            "input_width": self.input_width,
            "layers": [{"width": x.width, "activation": x.activation, "bias": x.bias}
                       for x in self.layers],
            "loss": self.loss,
            "reduction": self.reduction,
        }
        if self.l2:  # written only when there is one: records without a penalty read as before
            made.update(l2=self.l2, l2_half=self.l2_half, l2_biases=self.l2_biases)
        for name, parameter in PARAMETERS.items():  # likewise only off the default
            if getattr(self, name) != parameter.default:
                made[name] = getattr(self, name)
        return made

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(data["input_width"], tuple(Layer(**x) for x in data["layers"]),
                   data["loss"], data["reduction"], data.get("l2", 0.0),
                   data.get("l2_half", False), data.get("l2_biases", False),
                   **{name: data[name] for name in PARAMETERS if name in data})


def _check_width(where: str, width: Any) -> None:
    if not isinstance(width, int | np.integer) or isinstance(width, bool) or width < 1:
        raise SpecError(f"{where} has width {width!r}: every width must be an integer >= 1")


@dataclass(frozen=True)
class Problem:
    """What a candidate is handed: an architecture, its parameters and one batch.

    Attributes a candidate reads: ``X`` (N, n_0); ``Y`` (N, n_L) reals, or (N,) class indices for
    softmax_cross_entropy; ``weights[l]`` (n_l, n_{l-1}); ``biases[l]`` (n_l,) or None;
    ``activations`` (names, one per layer); ``loss``; ``reduction``; ``leaky_slope`` and
    ``elu_alpha`` (the parameters of leaky_relu and elu). Arrays are float32 or
    float64, all of one dtype; the candidate computes in that dtype.
    """

    architecture: Architecture
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray | None, ...]
    X: np.ndarray
    Y: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # seed, scales: reports only

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "biases", tuple(self.biases))
        validate(self)

    @property
    def activations(self) -> list[str]:
        return [layer.activation for layer in self.architecture.layers]

    @property
    def loss(self) -> str:
        return self.architecture.loss

    @property
    def reduction(self) -> str:
        return self.architecture.reduction

    @property
    def l2(self) -> float:
        """The L2 penalty's coefficient (0: none); see l2_half and l2_biases."""
        return self.architecture.l2

    @property
    def l2_half(self) -> bool:
        return self.architecture.l2_half

    @property
    def l2_biases(self) -> bool:
        return self.architecture.l2_biases

    @property
    def leaky_slope(self) -> float:
        """leaky_relu's slope below zero (0.01 unless the case draws another)."""
        return self.architecture.leaky_slope

    @property
    def elu_alpha(self) -> float:
        """elu's alpha: alpha (e^z - 1) below zero (1.0 unless the case draws another)."""
        return self.architecture.elu_alpha

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    @property
    def dtype_name(self) -> str:
        """'float32' or 'float64': dtype.name costs microseconds, a dict lookup does not."""
        return _DTYPE_NAMES.get(self.X.dtype) or self.X.dtype.name

    @property
    def batch_size(self) -> int:
        return int(self.X.shape[0])

    def arrays(self) -> list[np.ndarray]:
        """Every array of the problem, for in-place-change detection."""
        return [self.X, self.Y, *self.weights, *(b for b in self.biases if b is not None)]

    def copy(self) -> Problem:
        """A deep copy (arrays, architecture, meta): hand it to code that must not be able to
        change the original, even by writing to what is frozen."""
        return unchecked_problem(copy.deepcopy(self.architecture),
                                 tuple(w.copy() for w in self.weights),
                                 tuple(None if b is None else b.copy() for b in self.biases),
                                 self.X.copy(), self.Y.copy(), copy.deepcopy(self.meta))

    def as_float64(self) -> Problem:
        """The same problem upcast exactly to float64, as a fresh copy the caller may change."""
        def up(a: np.ndarray) -> np.ndarray:
            return a.astype(np.float64) if a.dtype.kind == "f" else a.copy()
        return self._trusted(tuple(up(w) for w in self.weights),
                             tuple(None if b is None else up(b) for b in self.biases),
                             up(self.X), up(self.Y))

    def float64(self) -> Problem:
        """The float64 upcast every oracle and the tolerance read, made once per problem: its
        arrays are read-only (views where the problem already is float64)."""
        cached = self.__dict__.get("_float64")
        if cached is None:
            def frozen(a: np.ndarray) -> np.ndarray:
                view = a.astype(np.float64) if a.dtype.kind == "f" and a.dtype != np.float64 \
                    else a.view()
                view.flags.writeable = False
                return view
            cached = self._trusted(tuple(frozen(w) for w in self.weights),
                                   tuple(None if b is None else frozen(b) for b in self.biases),
                                   frozen(self.X), frozen(self.Y))
            object.__setattr__(self, "_float64", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the cached float64 upcast (isolated workers get the problem alone)."""
        return {k: v for k, v in self.__dict__.items() if k != "_float64"}

    def _trusted(self, weights: tuple[np.ndarray, ...], biases: tuple[np.ndarray | None, ...],
                 X: np.ndarray, Y: np.ndarray) -> Problem:
        """A problem with this one's architecture and arrays of the same shapes, values and
        finiteness (copies or exact upcasts of arrays validate() passed): not checked again."""
        return unchecked_problem(self.architecture, weights, biases, X, Y, dict(self.meta))


def unchecked_problem(architecture: Architecture, weights: tuple[np.ndarray, ...],
                      biases: tuple[np.ndarray | None, ...], X: np.ndarray, Y: np.ndarray,
                      meta: dict[str, Any]) -> Problem:
    """A Problem made without validate(): only for arrays valid by construction (copies of a
    valid problem, or the case generator's draws, which tests/test_edges.py validates)."""
    made = object.__new__(Problem)
    for name, value in (("architecture", architecture), ("weights", weights),
                        ("biases", biases), ("X", X), ("Y", Y), ("meta", meta)):
        object.__setattr__(made, name, value)
    return made


_DTYPES = frozenset(DTYPES.values())  # dtype.name is slow (tens of us): compare dtypes
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


def validate(problem: Problem) -> None:
    """Raise SpecError (one line) unless the arrays match the architecture and are finite."""
    arch = problem.architecture
    if not isinstance(problem.X, np.ndarray) or problem.X.ndim != 2:
        raise SpecError(f"X has shape {np.shape(problem.X)}: give a 2-D array (N, n_0)")
    dtype = problem.X.dtype
    if dtype not in _DTYPES:
        raise SpecError(f"X has dtype {dtype}: use float32 or float64")
    n, n0 = problem.X.shape
    if n < 1:
        raise SpecError("the batch is empty: X needs at least one row")
    if n0 != arch.input_width:
        raise SpecError(f"X has {n0} columns but the architecture's input width is "
                        f"{arch.input_width}: make them equal")
    if len(problem.weights) != arch.depth or len(problem.biases) != arch.depth:
        raise SpecError(f"got {len(problem.weights)} weights and {len(problem.biases)} biases for "
                        f"{arch.depth} layers: give one of each per layer (None for no bias)")
    widths = arch.widths
    for l, (layer, w, b) in enumerate(zip(arch.layers, problem.weights, problem.biases,
                                          strict=True), start=1):
        _check_array(f"W{l}", w, (widths[l], widths[l - 1]), dtype)
        if layer.bias:
            if b is None:
                raise SpecError(f"layer {l} has a bias in the architecture but b{l} is None: "
                                "give an array (n_l,) or set bias=False")
            _check_array(f"b{l}", b, (widths[l],), dtype)
        elif b is not None:
            raise SpecError(f"layer {l} has bias=False but b{l} was given: pass None")
    _check_array("X", problem.X, problem.X.shape, dtype)
    _check_targets(problem.Y, arch, n, dtype)


def _check_array(name: str, a: Any, shape: Sequence[int], dtype: np.dtype) -> None:
    if not isinstance(a, np.ndarray):
        raise SpecError(f"{name} is a {type(a).__name__}: give a numpy array")
    if a.shape != tuple(shape):
        raise SpecError(f"{name} has shape {a.shape}, expected {tuple(shape)}: "
                        "W_l is (n_l, n_(l-1)), b_l is (n_l,)")
    if a.dtype != dtype:
        raise SpecError(f"{name} has dtype {a.dtype} but X has {dtype}: use one dtype for all")
    if not np.isfinite(a).all():
        raise SpecError(f"{name} contains NaN or inf: every parameter and input must be finite")


def _check_targets(y: Any, arch: Architecture, n: int, dtype: np.dtype) -> None:
    loss = arch.loss_spec
    n_out = arch.widths[-1]
    if not isinstance(y, np.ndarray):
        raise SpecError(f"Y is a {type(y).__name__}: give a numpy array")
    if loss.targets == "classes":
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise SpecError(f"Y has shape {y.shape} and dtype {y.dtype}: {loss.name} takes "
                            f"integer class indices of shape ({n},)")
        if y.size and (y.min() < 0 or y.max() >= n_out):
            raise SpecError(f"Y has class index {int(y.max() if y.max() >= n_out else y.min())} "
                            f"outside [0, {n_out}): the output layer has {n_out} units")
        return
    if y.shape != (n, n_out):
        raise SpecError(f"Y has shape {y.shape}, expected {(n, n_out)} for {loss.name}: "
                        "one target per sample and output unit")
    _check_array("Y", y, (n, n_out), dtype)
    if loss.targets == "probabilities" and (y.min() < 0 or y.max() > 1):
        raise SpecError(f"Y has values outside [0, 1]: {loss.name} takes targets in [0, 1]")


def penalty(problem: Problem) -> tuple[Any, list[np.ndarray], list[np.ndarray | None]]:
    """The L2 penalty's value and its gradients (2 c W, 2 c b), in the problem's dtype; zeros
    when there is none. Every level and the finite-difference oracle add these."""
    arch = problem.architecture
    c = arch.penalty_coefficient()
    dtype = problem.dtype.type
    value = dtype(0.0)
    dW = [dtype(2 * c) * W for W in problem.weights]
    db = [None if b is None else (dtype(2 * c) * b if arch.l2_biases else np.zeros_like(b))
          for b in problem.biases]
    if c:
        value = dtype(c) * sum(np.sum(W * W) for W in problem.weights)
        if arch.l2_biases:
            value += dtype(c) * sum(np.sum(b * b) for b in problem.biases if b is not None)
    return value, dW, db


def add_penalty(problem: Problem, answer: dict[str, Any]) -> dict[str, Any]:
    """A level's answer (loss, dW, db) with the L2 penalty's value and gradients added."""
    if not problem.architecture.l2:
        return answer
    value, dW, db = penalty(problem)
    answer["loss"] = answer["loss"] + value
    answer["dW"] = [g + p for g, p in zip(answer["dW"], dW, strict=True)]
    answer["db"] = [None if g is None else g + p for g, p in zip(answer["db"], db, strict=True)]
    return answer


@dataclass
class Gradients:
    """A candidate's or oracle's answer: the loss, dL/dW_l and dL/db_l per layer, and dL/dX."""

    loss: float
    dW: list[np.ndarray]
    db: list[np.ndarray | None]
    dX: np.ndarray | None = None
    # Z, A, delta per layer, when a candidate declares returns_intermediates
    intermediates: dict[str, list[np.ndarray]] | None = None

    @classmethod
    def from_answer(cls, answer: Any) -> Gradients:
        """A level's answer dict ({'loss', 'dW', 'db', 'dX'}, mybackprop.matrix's) as
        Gradients, the loss a float."""
        return cls(float(answer["loss"]), answer["dW"], answer["db"], answer["dX"])

    def tensors(self) -> dict[str, np.ndarray]:
        """Every gradient by its report name: dW1, db1, ..., dX (layers count from 1)."""
        named: dict[str, np.ndarray] = {}
        for l, (dw, db) in enumerate(zip(self.dW, self.db, strict=True), start=1):
            named[f"dW{l}"] = dw
            if db is not None:
                named[f"db{l}"] = db
        if self.dX is not None:
            named["dX"] = self.dX
        return named
