"""The plug-in contract: what a candidate is, what it declares, and how its answer is checked.

A candidate is any callable ``candidate(problem) -> dict`` (a plain function or an object with
``__call__``). The dict holds ``loss`` (a number), ``dW`` (one array per layer), ``db`` (one array
per layer, or None for a layer without bias) and optionally ``dX``. Anything ``numpy.asarray``
accepts is taken. A ``supports`` attribute (a :class:`Supports` or a dict of its fields) declares
what the candidate handles; other cases are skipped, never crashed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mybackprop.harness.cases import MAX_L2, NAMED_FIELDS, CaseSpace, exact_widths
from mybackprop.harness.conventions import CONVENTION_KEYS, ConventionError, Conventions
from mybackprop.spec.problem import Architecture, Gradients, Problem, SpecError, choose
from mybackprop.spec.table import ACTIVATIONS, DTYPES, LOSSES, PARAMETERS, REDUCTIONS


class CandidateLoadError(Exception):
    """--impl names something that cannot be loaded (one line: what, then the fix)."""


class CandidateError(Exception):
    """The candidate's answer breaks the contract; the message is the verdict's reason."""


class Unsupported(Exception):
    """Raised by a candidate for a problem it does not handle (``raise Unsupported("two layers
    only")``): the case is skipped with that reason, like one outside its declaration."""


class Refusal(str):
    """Why a candidate refused a case (it raised Unsupported or NotImplementedError): the
    reason of a skipped verdict, never of an error."""


def _range(name: str, value: Any) -> tuple[int, int] | None:
    """(lo, hi) from an int (exact) or a pair; None stays None."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) else (
        tuple(value) if isinstance(value, list | tuple) else ())
    if not (len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                   for v in pair) and 1 <= pair[0] <= pair[1]):
        raise CandidateLoadError(f"supports {name} is {value!r}: give an integer >= 1 or a "
                                 "range (lo, hi) with 1 <= lo <= hi")
    return pair[0], pair[1]


@dataclass(frozen=True)
class Supports:
    """What a candidate handles. The run draws its cases from it (within the command line's
    options); a case outside it, or one the candidate refuses, is skipped with the reason."""

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
    # The architecture it is written for (None: any):
    depth: tuple[int, int] | None = None  # layers: an int (exact) or (lo, hi)
    widths: tuple[int, ...] | None = None  # exact widths: the input's, then each layer's
    width: tuple[int, int] | None = None  # every width (the input's too): an int or (lo, hi)
    hidden_activations: frozenset[str] | None = None  # what a hidden layer may use
    output_activations: frozenset[str] | None = None  # what the output layer may use
    bias: bool | None = None  # True: every layer has a bias; False: none has
    batch: tuple[int, int] | None = None  # samples per batch: an int (exact) or (lo, hi)
    # The L2 penalty it adds: its coefficient (0.0: none; a number: that one; None: any, read
    # from problem.l2), its form (False: l2 * sum W^2; True: l2/2 * sum W^2; None: either, read
    # from problem.l2_half) and whether biases are penalised too (None: either).
    l2: float | None = 0.0
    l2_half: bool | None = False
    l2_biases: bool | None = False
    # The activations' parameters it computes with (spec.table.PARAMETERS): a number, the one
    # it hard-codes (the default: the table's), or None: any, read from problem.leaky_slope.
    leaky_slope: float | None = PARAMETERS["leaky_slope"].default
    elu_alpha: float | None = PARAMETERS["elu_alpha"].default
    # How it wants its data (weights, layout, bias, targets, per_sample): harness/conventions.py
    conventions: Conventions = Conventions()

    def __post_init__(self) -> None:
        if self.conventions.per_sample and self.returns_intermediates:
            raise CandidateLoadError("supports per_sample with returns_intermediates: a "
                                     "per-sample candidate's intermediates are not read; drop one")
        for name in ("max_parameters", "max_batch"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise CandidateLoadError(f"supports {name} is {value!r}: give an integer >= 1, "
                                         "or leave it out for no limit")
        for name in ("returns_dX", "returns_intermediates"):
            if not isinstance(getattr(self, name), bool):
                raise CandidateLoadError(f"supports {name} is {getattr(self, name)!r}: give "
                                         "True or False")
        for name, kind, table in NAMED_FIELDS:
            values = getattr(self, name)
            if values is None:
                continue
            listed = [values] if isinstance(values, str) else values
            if not (isinstance(listed, list | tuple | set | frozenset)
                    and all(isinstance(v, str) for v in listed)):
                raise CandidateLoadError(f"supports {name} is {values!r}: give a list of "
                                         f"{kind} names, e.g. {sorted(table)[:2]}")
            values = frozenset(listed)
            if not values:
                raise CandidateLoadError(f"supports {name} is empty: declare at least one "
                                         f"{kind}, or leave it out for all of them")
            for value in values:
                try:
                    choose(kind, value, table)
                except SpecError as exc:
                    raise CandidateLoadError(f"supports {name}: {exc}") from None
            object.__setattr__(self, name, values)
        object.__setattr__(self, "depth", _range("depth", self.depth))
        object.__setattr__(self, "batch", _range("batch", self.batch))
        object.__setattr__(self, "width", _range("width", self.width))
        if self.widths is not None:
            object.__setattr__(self, "widths", exact_widths(self.widths))
        if self.l2 is not None and not (isinstance(self.l2, int | float)
                                        and not isinstance(self.l2, bool)
                                        and 0 <= self.l2 <= MAX_L2):
            raise CandidateLoadError(f"supports l2 is {self.l2!r}: give the penalty's "
                                     f"coefficient, from 0 (none) to {MAX_L2:g}, or None (any, "
                                     "read problem.l2)")
        for name in ("l2_half", "l2_biases"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise CandidateLoadError(f"supports {name} is {getattr(self, name)!r}: give True, "
                                         "False or None (either, read from the problem)")
        for name, parameter in PARAMETERS.items():
            if getattr(self, name) is not None:
                try:
                    object.__setattr__(self, name, parameter.check(getattr(self, name)))
                except ValueError as exc:
                    raise CandidateLoadError(f"supports {exc}, or None (any, read "
                                             f"problem.{name})") from None
        if self.conventions.per_sample and self.l2 != 0.0:
            raise CandidateLoadError("supports per_sample with an L2 penalty: the penalty is the "
                                     "batch's, not a sample's; declare l2=0.0")
        if self.bias is not None and not isinstance(self.bias, bool):
            raise CandidateLoadError(f"supports bias is {self.bias!r}: give True (every layer "
                                     "has a bias), False (none has) or None (either)")

    @classmethod
    def coerce(cls, value: Any) -> Supports:
        if value is None:
            return cls()
        if isinstance(value, Supports):
            return value
        if isinstance(value, Mapping):
            known = ({f.name for f in fields(cls)} - {"conventions"}) | set(CONVENTION_KEYS)
            unknown = set(value) - known
            if unknown:
                raise CandidateLoadError(f"supports has unknown keys {sorted(unknown)}: "
                                         f"use {', '.join(sorted(known))}")
            try:
                conventions, rest = Conventions.split(value)
                return cls(**rest, conventions=conventions)
            except (SpecError, ConventionError) as exc:  # one line, like any load error
                raise CandidateLoadError(f"supports: {exc}") from None
        raise CandidateLoadError(f"supports is a {type(value).__name__}: give a dict or Supports")

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON data that coerce reads back to this Supports (an isolated
        worker sends it so: data, never a pickle)."""
        made: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "conventions":
                made.update(value.to_dict())
            elif isinstance(value, frozenset):
                made[f.name] = sorted(value)
            else:
                made[f.name] = list(value) if isinstance(value, tuple) else value
        return made

    def describe(self) -> str:
        """'all activations, losses mse; float64; at most 5000 parameters; no dX'."""
        parts = []
        for name, table in (("activations", ACTIVATIONS), ("losses", LOSSES),
                            ("reductions", REDUCTIONS), ("dtypes", DTYPES)):
            values = getattr(self, name)
            parts.append(f"all {name}" if values == frozenset(table)
                         else f"{name} {', '.join(sorted(values))}")
        if self.depth is not None:
            low, high = self.depth
            parts.append(f"{low} layer{'s' if low > 1 else ''}" if low == high
                         else f"{low} to {high} layers")
        if self.widths is not None:
            parts.append("widths " + "-".join(map(str, self.widths)))
        if self.width is not None:
            parts.append(f"widths {self.width[0]} to {self.width[1]}")
        for name in ("hidden_activations", "output_activations"):
            if getattr(self, name) is not None:
                parts.append(f"{name.replace('_', ' ')} {', '.join(sorted(getattr(self, name)))}")
        if self.bias is not None:
            parts.append("biases everywhere" if self.bias else "no biases")
        if self.max_parameters is not None:
            parts.append(f"at most {self.max_parameters} parameters")
        if self.batch is not None:
            parts.append(f"batches of {self.batch[0]} to {self.batch[1]}")
        if self.l2 != 0.0:
            form = {None: "either form", False: "l2·ΣW²", True: "½·l2·ΣW²"}[self.l2_half]
            biases = {None: "either", True: "too", False: "not"}[self.l2_biases]
            parts.append(f"L2 penalty {'of any coefficient' if self.l2 is None else self.l2}, "
                         f"{form}, biases {biases}")
        for name, parameter in PARAMETERS.items():
            value = getattr(self, name)
            if value != parameter.default and parameter.activation in self.activations:
                parts.append(f"{name} {'any' if value is None else f'{value:g}'}")
        if self.max_batch is not None:
            parts.append(f"at most {self.max_batch} samples")
        if not self.returns_dX:
            parts.append("no dX")
        if not self.conventions.canonical:
            parts.append(self.conventions.describe())
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
        return self._architecture_skip(problem)

    def _architecture_skip(self, problem: Problem) -> str | None:
        arch = problem.architecture
        if self.depth is not None and not self.depth[0] <= arch.depth <= self.depth[1]:
            return f"{arch.depth} layers, outside the declared {self.depth[0]}-{self.depth[1]}"
        if self.widths is not None and tuple(arch.widths) != self.widths:
            return (f"widths {'-'.join(map(str, arch.widths))}, not the declared "
                    f"{'-'.join(map(str, self.widths))}")
        if self.width is not None and not all(self.width[0] <= w <= self.width[1]
                                              for w in arch.widths):
            return f"widths {'-'.join(map(str, arch.widths))}, outside the declared " \
                   f"{self.width[0]}-{self.width[1]}"
        names = problem.activations
        if self.hidden_activations is not None and set(names[:-1]) - self.hidden_activations:
            wrong = sorted(set(names[:-1]) - self.hidden_activations)
            return f"hidden activation {', '.join(wrong)} not supported"
        if self.output_activations is not None and names[-1] not in self.output_activations:
            return f"output activation {names[-1]} not supported"
        if self.bias is not None and any((b is not None) != self.bias for b in problem.biases):
            return "a layer without bias" if self.bias else "a layer with a bias"
        if self.batch is not None and not self.batch[0] <= problem.batch_size <= self.batch[1]:
            return (f"batch of {problem.batch_size}, outside the declared "
                    f"{self.batch[0]}-{self.batch[1]}")
        return self._penalty_and_parameters_skip(arch)

    def _penalty_and_parameters_skip(self, arch: Architecture) -> str | None:
        for name, value in arch.parameters.items():
            declared = getattr(self, name)
            if declared is not None and value != declared:
                return f"{name} {value:g}, not the declared {declared:g}"
        if self.l2 is not None and arch.l2 != self.l2:
            return (f"L2 penalty {arch.l2:g}, not the declared {self.l2:g}" if self.l2
                    else "an L2 penalty, which it does not declare")
        if arch.l2 and self.l2_half is not None and arch.l2_half != self.l2_half:
            return f"the L2 penalty's {'½' if arch.l2_half else 'full'} form, not the declared one"
        if arch.l2 and self.l2_biases is not None and arch.l2_biases != self.l2_biases:
            return "an L2 penalty " + ("on biases too" if arch.l2_biases else "on weights only") \
                + ", not the declared one"
        return None

    def within(self, space: CaseSpace, name: str = "the candidate") -> CaseSpace:
        """The part of `space` this candidate takes: the run's cases for it are drawn there.
        Raises SpecError, one line naming both sides, when nothing is left."""
        def common(field: str, drawn: tuple[str, ...], declared: frozenset[str] | None
                   ) -> tuple[str, ...]:
            kept = tuple(v for v in drawn if declared is None or v in declared)
            if not kept:
                raise SpecError(f"the run draws {field} {', '.join(drawn)} and {name} declares "
                                f"{', '.join(sorted(declared or ()))}: nothing checked; "
                                f"draw some of those (--{field.replace(' ', '-')})")
            return kept

        losses = common("losses", space.losses, self.losses)
        reductions = common("reductions", space.reductions, self.reductions)
        dtypes = common("dtypes", space.dtypes, self.dtypes)
        activations = common("activations", space.activations, self.activations)
        output = common("output activations", tuple(a for a in space.output if a in activations),
                        self.output_activations)
        hidden = tuple(a for a in space.hidden if a in activations and (
            self.hidden_activations is None or a in self.hidden_activations))
        low, high = space.depths()
        if self.depth is not None:
            low, high = max(low, self.depth[0]), min(high, self.depth[1])
        widths = space.widths
        if self.widths is not None:  # exact widths: the network it is written for
            if widths is not None and widths != self.widths:
                raise SpecError(f"the run draws widths {'-'.join(map(str, widths))} and {name} "
                                f"declares {'-'.join(map(str, self.widths))}: nothing checked")
            widths, low, high = self.widths, len(self.widths) - 1, len(self.widths) - 1
            if self.depth is not None and not self.depth[0] <= low <= self.depth[1]:
                raise SpecError(f"{name} declares widths {self.widths} and depth {self.depth}, "
                                "which do not agree: fix its supports")
        min_width, max_width = space.min_width, space.max_width
        if self.width is not None:
            min_width, max_width = max(min_width, self.width[0]), min(max_width, self.width[1])
            if widths is not None and not all(min_width <= w <= max_width for w in widths):
                raise SpecError(f"{name} declares widths {self.width[0]} to {self.width[1]} and "
                                f"{'-'.join(map(str, widths))}: nothing checked")
            if min_width > max_width:
                raise SpecError(f"the run draws widths {space.min_width} to {space.max_width} "
                                f"and {name} declares {self.width[0]} to {self.width[1]}: "
                                "nothing checked")
        if not hidden:  # only the output layer can be drawn
            high = min(high, 1)
        if low > high:
            raise SpecError(f"the run draws {space.depths()[0]} to {space.depths()[1]} layers "
                            f"and {name} declares {self.describe()}: nothing checked")
        bias = space.bias
        if self.bias is not None:
            if bias is not None and bias != self.bias:
                raise SpecError(f"the run draws {'only' if bias else 'no'} biases and {name} "
                                f"declares {'only' if self.bias else 'no'} biases: nothing "
                                "checked")
            bias = self.bias
        min_batch, max_batch = space.min_batch, space.max_batch
        for limit in (self.max_batch, self.batch[1] if self.batch else None):
            max_batch = max_batch if limit is None else min(max_batch, limit)
        if self.batch is not None:
            min_batch = max(min_batch, self.batch[0])
        if min_batch > max_batch:
            raise SpecError(f"the run draws batches of {space.min_batch} to {space.max_batch} "
                            f"and {name} declares {self.describe()}: nothing checked")
        budget = [b for b in (space.max_parameters, self.max_parameters) if b is not None]
        l2 = space.l2
        if self.l2 is not None:
            if l2 is not None and self.l2 not in l2:
                raise SpecError(f"the run draws L2 coefficients {', '.join(map(str, l2))} and "
                                f"{name} declares {self.l2:g}: nothing checked; draw it (--l2)")
            l2 = (self.l2,)
        flags = {}
        for field_name in ("l2_half", "l2_biases"):
            drawn, declared = getattr(space, field_name), getattr(self, field_name)
            if declared is not None and drawn is not None and drawn != declared \
                    and l2 != (0.0,):
                raise SpecError(f"the run draws {field_name} {drawn} and {name} declares "
                                f"{declared}: nothing checked")
            flags[field_name] = drawn if declared is None else declared
        for field_name in PARAMETERS:
            drawn, declared = getattr(space, field_name), getattr(self, field_name)
            if declared is not None:
                if drawn is not None and declared not in drawn \
                        and PARAMETERS[field_name].activation in activations:
                    raise SpecError(
                        f"the run draws {field_name} {', '.join(f'{v:g}' for v in drawn)} and "
                        f"{name} declares {declared:g}: nothing checked; draw it "
                        f"(--{field_name.replace('_', '-')})")
                flags[field_name] = (declared,)
        return dataclasses.replace(
            space, activations=activations, losses=losses, reductions=reductions,
            dtypes=dtypes, hidden_activations=None if hidden in ((), activations) else hidden,
            output_activations=None if output == activations else output,
            min_depth=low, max_depth=high, widths=widths, min_width=min_width,
            max_width=max_width, bias=bias, min_batch=min_batch,
            max_batch=max_batch, max_parameters=min(budget) if budget else None, l2=l2,
            **flags)


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
