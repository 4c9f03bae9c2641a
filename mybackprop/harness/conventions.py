"""Conventions: how a candidate wants its data, and the exact conversions to and from it.

The canonical form (DESIGN.md) is rows: X (N, n_0), W_l (n_l, n_{l-1}), b_l (n_l,), class-index
targets, one batched call. Real code is written otherwise (``X @ W`` with (in, out) weights,
column layouts with (n, 1) biases, one-hot targets, one sample per call). A candidate declares
its conventions; the harness hands it the problem in that form and reads its answer back.

Every conversion is a transpose, a reshape or a one-hot expansion (which writes 0 and 1), so the
arrays a candidate gets hold the canonical ones' values bit for bit and its answer comes back
unchanged: tolerance and diagnosis always work in the canonical form. The one piece of arithmetic
is the batch level of a per-sample candidate, done as the reduction says (sum in float64, divide
by the reduction's divisor, round once to the dtype).

A candidate's shapes are what messages use: a wrong shape is reported against the shape it was
handed, and a failing element by its index in its own layout (``frame_index``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mybackprop.spec.problem import Problem

# Each convention: its accepted spellings -> the one it is stored as.
_SPELLINGS: dict[str, dict[str, str]] = {
    "weights": {"(out, in)": "(out, in)", "out_in": "(out, in)", "(in, out)": "(in, out)",
                "in_out": "(in, out)"},
    "layout": {"rows": "rows", "columns": "columns", "flat": "flat"},
    "bias_shape": {"(n,)": "(n,)", "flat": "(n,)", "(1, n)": "(1, n)", "row": "(1, n)",
             "(n, 1)": "(n, 1)", "column": "(n, 1)"},
    "targets": {"indices": "indices", "one_hot": "one_hot", "one-hot": "one_hot"},
}
CONVENTION_KEYS = ("weights", "layout", "bias_shape", "targets", "per_sample")


class ConventionError(ValueError):
    """A declared convention is not one mybackprop knows (one line: what, then the choices)."""


@dataclass(frozen=True)
class Conventions:
    """How a candidate wants its data (the defaults are the canonical form).

    weights: "(out, in)" (Z = A @ W.T) or "(in, out)" (Z = A @ W).
    layout: "rows" (X is (N, n_0)), "columns" (X is (n_0, N)), or "flat" (per-sample only: x
    is a vector (n_0,)).
    bias_shape: "(n,)", "(1, n)" or "(n, 1)"; None: "(n, 1)" for columns, "(n,)" otherwise.
    targets: "indices" (class targets as integers) or "one_hot" (class targets as a 0/1 array
    in the problem's dtype, laid out like the outputs).
    per_sample: True: the candidate is called once per sample with that sample's x and y, and
    returns that sample's gradients (of the sum of its loss terms); the harness does the batch.
    """

    weights: str = "(out, in)"
    layout: str = "rows"
    bias_shape: str | None = None
    targets: str = "indices"
    per_sample: bool = False

    def __post_init__(self) -> None:
        for name, spellings in _SPELLINGS.items():
            value = getattr(self, name)
            if name == "bias_shape" and value is None:
                value = "(n, 1)" if self.layout == "columns" else "(n,)"
            if not isinstance(value, str) or value not in spellings:
                raise ConventionError(f"{name} is {value!r}: choose one of "
                                      f"{', '.join(sorted(set(spellings.values())))}")
            object.__setattr__(self, name, spellings[value])
        if not isinstance(self.per_sample, bool):
            raise ConventionError(f"per_sample is {self.per_sample!r}: give True or False")
        if self.layout == "flat" and not self.per_sample:
            raise ConventionError("layout 'flat' (one sample as a vector) needs per_sample=True; "
                                  "a batch is 'rows' or 'columns'")

    @classmethod
    def split(cls, declared: Mapping[str, Any]) -> tuple[Conventions, dict[str, Any]]:
        """The conventions among declared keys, and the other keys."""
        mine = {k: v for k, v in declared.items() if k in CONVENTION_KEYS}
        return cls(**mine), {k: v for k, v in declared.items() if k not in CONVENTION_KEYS}

    @property
    def canonical(self) -> bool:
        return self == Conventions()

    def describe(self) -> str:
        """'weights (in, out), columns, biases (n, 1), one-hot targets, one sample per call'."""
        parts = []
        if self.weights != "(out, in)":
            parts.append(f"weights {self.weights}")
        if self.layout != "rows":
            parts.append(self.layout)
        if self.bias_shape != ("(n, 1)" if self.layout == "columns" else "(n,)"):
            parts.append(f"biases {self.bias_shape}")
        if self.targets != "indices":
            parts.append("one-hot targets")
        if self.per_sample:
            parts.append("one sample per call")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # -- canonical -> the candidate's form -------------------------------------------------

    def weight(self, W: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(W.T) if self.weights == "(in, out)" else W.copy()

    def bias_dims(self, n: int) -> tuple[int, ...]:
        """The shape a bias of n units is handed in: (n,), (1, n) or (n, 1)."""
        return {"(n,)": (n,), "(1, n)": (1, n), "(n, 1)": (n, 1)}[self.bias_shape]

    def bias_of(self, b: np.ndarray | None) -> np.ndarray | None:
        return None if b is None else b.reshape(self.bias_dims(b.size)).copy()

    def batch(self, X: np.ndarray) -> np.ndarray:
        """(N, n) rows as the candidate lays out samples: itself, (n, N), or one vector (n,)."""
        if self.layout == "columns":
            return np.ascontiguousarray(X.T)
        if self.layout == "flat":
            return X.reshape(X.shape[-1]).copy()
        return X.copy()

    def targets_of(self, Y: np.ndarray, n_out: int, dtype: np.dtype, classes: bool) -> Any:
        if not classes:
            return self.batch(Y)
        if self.targets == "one_hot":
            return self.batch((np.arange(n_out) == Y[:, None]).astype(dtype))
        if self.per_sample:
            return int(Y[0])
        return Y.copy()

    # -- the candidate's form -> canonical -------------------------------------------------

    def weight_back(self, dW: np.ndarray) -> np.ndarray:
        return dW.T if self.weights == "(in, out)" else dW

    def batch_back(self, dX: np.ndarray, n: int) -> np.ndarray:
        if self.layout == "columns":
            return dX.T
        return dX.reshape(1, n) if self.layout == "flat" else dX

    def frame_index(self, name: str, index: tuple[int, ...]) -> tuple[int, ...]:
        """A canonical element index as the candidate numbers it: (i, j) of dW as (j, i) for
        (in, out) weights; dX and the intermediates transposed for columns; db by its shape."""
        if not index:
            return index
        if name.startswith("dW") and self.weights == "(in, out)":
            return index[::-1]
        if name.startswith("db"):  # unit i where n sits, 0 on the other axis
            i = index[0]
            return {"(n,)": (i,), "(1, n)": (0, i), "(n, 1)": (i, 0)}[self.bias_shape]
        if (name == "dX" or name[:1] in "ZA" or name.startswith("delta")) \
                and self.layout == "columns" and len(index) == 2:
            return index[::-1]
        return index

    def frame_shape(self, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) == 1 and name.startswith("db"):
            return self.bias_dims(shape[0])
        if len(shape) == 2 and self.frame_index(name, (0, 1)) == (1, 0):
            return shape[::-1]
        return shape


class Handed:
    """What a candidate with conventions is handed: the problem's attributes in its form.

    ``X``, ``Y``, ``weights``, ``biases`` are converted; ``architecture``, ``activations``,
    ``loss``, ``dtype``, the penalty's ``l2``, ``l2_half``, ``l2_biases``, the activations'
    ``leaky_slope`` and ``elu_alpha`` and the rest are the problem's. A per-sample candidate
    also finds its sample as ``x`` and ``y`` (the same arrays as ``X`` and ``Y``), with
    ``batch_size`` 1 and ``reduction`` "sum": its cost is its own sample's loss terms, summed.
    """

    def __init__(self, problem: Problem, conventions: Conventions, sample: int | None = None):
        arch = problem.architecture
        X, Y = problem.X, problem.Y
        if sample is not None:
            X, Y = X[sample:sample + 1], Y[sample:sample + 1]
        self.architecture = arch
        self.activations = problem.activations
        self.loss = problem.loss
        self.reduction = "sum" if sample is not None else problem.reduction
        self.dtype = problem.dtype
        self.dtype_name = problem.dtype_name
        self.l2, self.l2_half, self.l2_biases = problem.l2, problem.l2_half, problem.l2_biases
        self.leaky_slope, self.elu_alpha = problem.leaky_slope, problem.elu_alpha
        self.batch_size = 1 if sample is not None else problem.batch_size
        self.meta = dict(problem.meta)
        self.conventions = conventions
        self.sample = sample
        self.weights = [conventions.weight(w) for w in problem.weights]
        self.biases = [conventions.bias_of(b) for b in problem.biases]
        self.X = conventions.batch(X)
        classes = arch.loss_spec.targets == "classes"
        self.Y = conventions.targets_of(Y, arch.widths[-1], problem.dtype, classes)
        if sample is not None:
            self.x, self.y = self.X, self.Y

    def arrays(self) -> list[tuple[str, Any]]:
        """(name, array) of everything handed, for in-place-change detection."""
        named = [("X", self.X), ("Y", self.Y)]
        named += [(f"W{l}", w) for l, w in enumerate(self.weights, start=1)]
        named += [(f"b{l}", b) for l, b in enumerate(self.biases, start=1) if b is not None]
        return [(name, a) for name, a in named if isinstance(a, np.ndarray)]

    def __repr__(self) -> str:
        where = "" if self.sample is None else f", sample {self.sample}"
        return (f"<problem {self.architecture.describe()}, N={self.batch_size}{where}, "
                f"{self.dtype_name}, {self.conventions.describe() or 'canonical'}>")


class AnswerError(Exception):
    """The answer, read in the candidate's own form, breaks the contract (the verdict's reason)."""


def adapted(function: Callable[[Any], Any], conventions: Conventions,
            returns_dX: bool, returns_intermediates: bool) -> Callable[[Problem], Any]:
    """`function` as a canonical candidate: problem in, canonical answer dict out."""

    def call(problem: Problem, sample: int | None = None) -> dict[str, Any]:
        handed = Handed(problem, conventions, sample)
        before = [(name, a.copy()) for name, a in handed.arrays()]
        answer = function(handed)
        for (name, old), (_, now) in zip(before, handed.arrays(), strict=True):
            if not (isinstance(now, np.ndarray) and now.shape == old.shape
                    and now.dtype == old.dtype and now.tobytes() == old.tobytes()):
                raise AnswerError(f"changed its input {name} in place")
        return _back(answer, handed, conventions, returns_dX, returns_intermediates)

    def batch(problem: Problem) -> dict[str, Any]:
        if not conventions.per_sample:
            return call(problem)
        return _per_sample(problem, call, returns_dX)

    batch.__wrapped__ = function  # type: ignore[attr-defined]
    return batch


def _shaped(name: str, value: Any, handed_shape: tuple[int, ...], where: str) -> np.ndarray:
    """The answer's array, checked against the shape the candidate was handed."""
    if value is None:
        raise AnswerError(f"{name} is None: return an array of shape {handed_shape}{where}")
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise AnswerError(f"{name} is a {type(value).__name__} that numpy cannot read "
                          f"({type(exc).__name__}): return a numpy array") from None
    if array.shape != handed_shape:
        raise AnswerError(f"{name} has shape {array.shape}, expected {handed_shape}{where}")
    return array


def _list(name: str, value: Any, depth: int) -> list[Any]:
    if isinstance(value, np.ndarray) or not isinstance(value, Iterable):
        raise AnswerError(f"{name} is a {type(value).__name__}: return a list, one per layer")
    items = list(value)
    if len(items) != depth:
        raise AnswerError(f"{name} has {len(items)} entries for {depth} layers")
    return items


def _back(answer: Any, handed: Handed, conventions: Conventions, returns_dX: bool,
          returns_intermediates: bool) -> dict[str, Any]:
    """The candidate's answer in canonical form (its shapes checked in its own form first)."""
    if not isinstance(answer, Mapping):
        raise AnswerError(f"returned a {type(answer).__name__}, expected a dict with loss, dW, "
                          "db (and dX)")
    missing = [key for key in ("loss", "dW", "db") if key not in answer]
    if missing:
        raise AnswerError(f"returned a dict without {', '.join(missing)}")
    depth = handed.architecture.depth
    sample = "" if handed.sample is None else " (one sample)"
    weights = f" (weights {conventions.weights})"
    dW = [conventions.weight_back(_shaped(f"dW{l}", g, w.shape, weights))
          for l, (g, w) in enumerate(zip(_list("dW", answer["dW"], depth), handed.weights,
                                         strict=True), start=1)]
    db = [None if b is None else _shaped(f"db{l}", g, b.shape, f" (biases {conventions.bias_shape})"
                                         ).reshape(b.size)
          for l, (g, b) in enumerate(zip(_list("db", answer["db"], depth), handed.biases,
                                         strict=True), start=1)]
    back: dict[str, Any] = {"loss": answer["loss"], "dW": dW, "db": db}
    if returns_dX:
        if answer.get("dX") is None:
            raise AnswerError("returned no dX: return it, or declare returns_dX=False")
        n0 = handed.architecture.input_width
        back["dX"] = conventions.batch_back(
            _shaped("dX", answer["dX"], handed.X.shape, f" (like X{sample})"), n0)
    if returns_intermediates:
        given = answer.get("intermediates")
        if isinstance(given, Mapping) and set(given) == {"Z", "A", "delta"}:
            widths, n = handed.architecture.widths, handed.batch_size
            back["intermediates"] = {
                key: [conventions.batch_back(_shaped(
                    f"{key}{l}", a, conventions.batch(np.empty((n, widths[l]))).shape,
                    f" (laid out like X{sample})"), widths[l])
                    for l, a in enumerate(_list(key, given[key], depth), start=1)]
                for key in ("Z", "A", "delta")}
        else:
            back["intermediates"] = given  # the contract's check names what is missing
    return back


def _per_sample(problem: Problem, call: Callable[..., dict[str, Any]],
                returns_dX: bool) -> dict[str, Any]:
    """Call once per sample; the batch level as the reduction says: the sum over samples (in
    float64), divided by the reduction's divisor, rounded once to the problem's dtype."""
    arch, dtype = problem.architecture, problem.dtype
    divisor = arch.reduction_spec.divisor(problem.batch_size,
                                          arch.loss_spec.terms_per_sample(arch.widths[-1]))
    answers = [call(problem, k) for k in range(problem.batch_size)]
    for k, answer in enumerate(answers):
        loss = np.asarray(answer["loss"])
        if loss.size != 1 or loss.dtype.kind not in "fiu":
            raise AnswerError(f"loss of sample {k} is a {type(answer['loss']).__name__}: return "
                              "one real number")
        for name in ("dW", "db", *(("dX",) if returns_dX else ())):
            for g in (answer[name] if name != "dX" else [answer["dX"]]):
                if g is not None and np.asarray(g).dtype != dtype:
                    raise AnswerError(f"{name} of sample {k} has dtype {np.asarray(g).dtype}, "
                                      f"expected {dtype} (compute in the problem's dtype)")

    def total(arrays: list[np.ndarray]) -> np.ndarray:
        summed = np.sum([np.asarray(a, dtype=np.float64) for a in arrays], axis=0)
        return (summed / divisor).astype(dtype)

    depth = arch.depth
    combined: dict[str, Any] = {
        "loss": float(np.sum([float(np.asarray(a["loss"]).reshape(())) for a in answers],
                             dtype=np.float64) / divisor),
        "dW": [total([a["dW"][l] for a in answers]) for l in range(depth)],
        "db": [None if problem.biases[l] is None else total([a["db"][l] for a in answers])
               for l in range(depth)],
    }
    if returns_dX:
        combined["dX"] = (np.concatenate([np.asarray(a["dX"], dtype=np.float64)
                                          for a in answers]) / divisor).astype(dtype)
    return combined
