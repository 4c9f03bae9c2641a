"""The plug-in contract: what a candidate is, what it declares, and how its answer is checked.

A candidate is any callable ``candidate(problem) -> dict`` (a plain function or an object with
``__call__``). The dict holds ``loss`` (a number), ``dW`` (one array per layer), ``db`` (one array
per layer, or None for a layer without bias) and optionally ``dX``. Anything ``numpy.asarray``
accepts is taken. A ``supports`` attribute (a :class:`Supports` or a dict of its fields) declares
what the candidate handles; other cases are skipped, never crashed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mybackprop.spec.problem import Gradients, Problem, choose
from mybackprop.spec.table import ACTIVATIONS, DTYPES, LOSSES, REDUCTIONS


class CandidateLoadError(Exception):
    """--impl names something that cannot be loaded (one line: what, then the fix)."""


class CandidateError(Exception):
    """The candidate's answer breaks the contract; the message is the verdict's reason."""


@dataclass(frozen=True)
class Supports:
    """What a candidate handles. Cases outside it are skipped with the reason."""

    activations: frozenset[str] = frozenset(ACTIVATIONS)
    losses: frozenset[str] = frozenset(LOSSES)
    reductions: frozenset[str] = frozenset(REDUCTIONS)
    dtypes: frozenset[str] = frozenset(DTYPES)
    max_parameters: int | None = None  # a size limit, e.g. for loop-per-weight implementations
    max_batch: int | None = None  # the most samples per batch it is handed
    returns_dX: bool = True  # False: dX is not asked for and not compared
    # True: the answer also holds "intermediates": {"Z": [...], "A": [...], "delta": [...]}, one
    # (N, n_l) array per layer (pre-activations, activations, dL/dZ), for localising a mistake
    returns_intermediates: bool = False

    def __post_init__(self) -> None:
        for name, kind, table in (("activations", "activation", ACTIVATIONS),
                                  ("losses", "loss", LOSSES),
                                  ("reductions", "reduction", REDUCTIONS),
                                  ("dtypes", "dtype", DTYPES)):
            values = getattr(self, name)
            values = frozenset([values] if isinstance(values, str) else values)
            for value in values:
                choose(kind, value, table)
            object.__setattr__(self, name, values)

    @classmethod
    def coerce(cls, value: Any) -> Supports:
        if value is None:
            return cls()
        if isinstance(value, Supports):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise CandidateLoadError(f"supports has unknown keys {sorted(unknown)}: "
                                         f"use {', '.join(sorted(known))}")
            return cls(**value)
        raise CandidateLoadError(f"supports is a {type(value).__name__}: give a dict or Supports")

    def describe(self) -> str:
        """'all activations, losses mse; float64; at most 5000 parameters; no dX'."""
        parts = []
        for name, table in (("activations", ACTIVATIONS), ("losses", LOSSES),
                            ("reductions", REDUCTIONS), ("dtypes", DTYPES)):
            values = getattr(self, name)
            parts.append(f"all {name}" if values == frozenset(table)
                         else f"{name} {', '.join(sorted(values))}")
        if self.max_parameters is not None:
            parts.append(f"at most {self.max_parameters} parameters")
        if self.max_batch is not None:
            parts.append(f"at most {self.max_batch} samples")
        if not self.returns_dX:
            parts.append("no dX")
        return "; ".join(parts)

    def reason_to_skip(self, problem: Problem) -> str | None:
        """Why this candidate does not take the problem, or None if it does."""
        unsupported = sorted(set(problem.activations) - self.activations)
        if unsupported:
            return f"activation {', '.join(unsupported)} not supported"
        if problem.loss not in self.losses:
            return f"loss {problem.loss} not supported"
        if problem.reduction not in self.reductions:
            return f"reduction {problem.reduction} not supported"
        if problem.dtype_name not in self.dtypes:
            return f"dtype {problem.dtype_name} not supported"
        n = problem.architecture.n_parameters
        if self.max_parameters is not None and n > self.max_parameters:
            return f"{n} parameters over the declared limit of {self.max_parameters}"
        if self.max_batch is not None and problem.batch_size > self.max_batch:
            return f"batch of {problem.batch_size} over the declared limit of {self.max_batch}"
        return None


@dataclass(frozen=True)
class Candidate:
    """A loaded implementation under test."""

    name: str  # how reports name it: the --impl string, or 'mybackprop:matrix'
    function: Callable[[Problem], Any] = field(repr=False)
    supports: Supports = Supports()
    isolated: Any = field(default=None, repr=False)  # an IsolatedRunner under --isolate


def candidate(**declared: Any) -> Callable[[Callable[[Problem], Any]], Callable[[Problem], Any]]:
    """Decorator declaring what a candidate supports: ``@candidate(losses={"mse"})``."""
    supports = Supports.coerce(declared)

    def attach(function: Callable[[Problem], Any]) -> Callable[[Problem], Any]:
        function.supports = supports  # type: ignore[attr-defined]
        return function

    return attach


def to_gradients(answer: Any, problem: Problem, supports: Supports) -> Gradients:
    """Check a candidate's answer against the contract and turn it into Gradients."""
    if not isinstance(answer, Mapping):
        raise CandidateError(f"returned a {type(answer).__name__}, expected a dict with "
                             "loss, dW, db (and dX)")
    missing = [key for key in ("loss", "dW", "db") if key not in answer]
    if missing:
        raise CandidateError(f"returned a dict without {', '.join(missing)}")
    depth = problem.architecture.depth
    dW = _per_layer("dW", answer["dW"], depth)
    db = _per_layer("db", answer["db"], depth)
    weights, biases = problem.weights, problem.biases
    grads = Gradients(
        loss=_scalar(answer["loss"], problem.dtype),
        dW=[_array(f"dW{l}", g, w.shape, problem.dtype)
            for l, (g, w) in enumerate(zip(dW, weights, strict=True), start=1)],
        db=[None if b is None else _array(f"db{l}", g, b.shape, problem.dtype)
            for l, (g, b) in enumerate(zip(db, biases, strict=True), start=1)],
    )
    if supports.returns_dX:
        if answer.get("dX") is None:
            raise CandidateError("returned no dX: return it, or declare returns_dX=False")
        grads.dX = _array("dX", answer["dX"], problem.X.shape, problem.dtype)
    if supports.returns_intermediates:
        grads.intermediates = _intermediates(answer.get("intermediates"), problem)
    return grads


INTERMEDIATES = ("Z", "A", "delta")


def _intermediates(value: Any, problem: Problem) -> dict[str, list[np.ndarray]]:
    if not isinstance(value, Mapping) or set(value) != set(INTERMEDIATES):
        raise CandidateError("returned no intermediates {'Z', 'A', 'delta'}: return them, or "
                             "declare returns_intermediates=False")
    widths, n = problem.architecture.widths, problem.batch_size
    return {key: [_array(f"{key}{l}", a, (n, widths[l]), problem.dtype)
                  for l, a in enumerate(_per_layer(key, value[key], len(widths) - 1), start=1)]
            for key in INTERMEDIATES}


def _per_layer(name: str, value: Any, depth: int) -> list[Any]:
    if isinstance(value, np.ndarray) or not isinstance(value, Iterable):
        raise CandidateError(f"{name} is a {type(value).__name__}: return a list, one per layer")
    items = list(value)
    if len(items) != depth:
        raise CandidateError(f"{name} has {len(items)} entries for {depth} layers")
    return items


def _array(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if value is None:
        raise CandidateError(f"{name} is None: return an array of shape {shape}")
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise CandidateError(f"{name} is a {type(value).__name__} that numpy cannot read "
                             f"({type(exc).__name__}): return a numpy array") from None
    if array.dtype.kind not in "fiu":
        raise CandidateError(f"{name} has dtype {array.dtype}: return real numbers")
    if array.shape != shape:
        raise CandidateError(f"{name} has shape {array.shape}, expected {shape}")
    if array.dtype != dtype:
        raise CandidateError(f"{name} has dtype {array.dtype}, expected {dtype} "
                             "(compute in the problem's dtype)")
    return array


def _scalar(value: Any, dtype: np.dtype) -> float:
    try:
        array = np.asarray(value)
    except Exception:
        array = None
    if array is None or array.size != 1 or array.dtype.kind not in "fiu":
        raise CandidateError(f"loss is a {type(value).__name__}: return one real number")
    return float(array.reshape(()))
