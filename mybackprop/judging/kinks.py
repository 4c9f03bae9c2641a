"""Kinks: which units sit exactly on one, and what each convention for f'(kink) gives there.

At a kink (relu and leaky_relu at 0) the derivative does not exist; frameworks pick a value
(leaky_relu'(0): PyTorch the slope, JAX 1). A difference there is a convention, never a bug.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from typing import Any

import numpy as np

from mybackprop.judging.compare import flat, tensor_names
from mybackprop.levels.matrix import forward, matrix
from mybackprop.spec.problem import Gradients, Problem
from mybackprop.spec.table import ACTIVATIONS, LOSSES, Activation, Kink, Loss


def units_on_kinks(problem: Problem) -> Counter[tuple[str, float]]:
    """How many pre-activations (or loss terms) sit exactly on each kink: (name, kink) ->
    count, for the activations and the loss."""
    counts: Counter[tuple[str, float]] = Counter()
    p = problem.float64()
    fwd = forward(p)
    for f, z in zip(problem.architecture.activation_specs, fwd.z, strict=True):
        for kink in f.kinks:
            counts[f.name, kink.at] += int(np.sum(z == kink.at))
    loss = problem.architecture.loss_spec
    if loss.kinks:  # the loss's own kinks (l1 at yhat = y, the hinge at a zero margin)
        assert loss.kink_variable is not None
        v = loss.kink_variable(fwd.a[-1], p.Y)
        for kink in loss.kinks:
            counts[loss.name, kink.at] += int(np.sum(v == kink.at))
    return counts


Found = list[tuple[Activation | Loss, Kink, int]]  # (function, kink, units on it)


def _kinks_in(problem: Problem) -> Found:
    """(function, kink, count) of every kink the problem sits on (a forward pass: find it once
    and hand it on where many answers are replayed)."""
    table = {**_entries(problem), **LOSSES}
    return [(table[name], kink, count) for (name, at), count in units_on_kinks(problem).items()
            if count for kink in table[name].kinks if kink.at == at]


def convention_note(problem: Problem, oracle_names: list[str]) -> str:
    """'leaky_relu'(0) is a convention: torch takes 0.01, jax takes 1 (5 units on the kink)'."""
    notes = []
    for f, kink, count in _kinks_in(problem):
        taken = {name: kink.conventions[name] for name in oracle_names if name in kink.conventions}
        if len(set(taken.values())) > 1:
            values = ", ".join(f"{name} takes {value:g}" for name, value in taken.items())
            notes.append(f"{f.name}'({kink.at:g}) is a convention: {values} "
                         f"({count} {'pre-activations' if isinstance(f, Activation) else 'terms'}"
                         " on the kink)")
    return "; ".join(notes)


Slopes = dict[str, dict[float, float]]  # kinked function -> kink -> the slope taken there


def convention_choices(problem: Problem, kinks: Found | None = None
                       ) -> list[tuple[str, Slopes]]:
    """Each way a candidate may take the slopes at the kinks this problem sits on: per kinked
    function, its left derivative, its right one, or a framework's (the same choice at each of
    its own kinks), in every combination across functions (relu'(0) = 1 beside l1'(0) = 0)."""
    kinks = _kinks_in(problem) if kinks is None else kinks
    per_function: dict[str, list[dict[float, float]]] = {}
    for f, _, _ in kinks:
        if f.name in per_function:
            continue
        own = [k for g, k, _ in kinks if g.name == f.name]
        ways = [{k.at: k.left for k in own}, {k.at: k.right for k in own}]
        for framework in own[0].conventions:
            ways.append({k.at: k.conventions.get(framework, k.left) for k in own})
        per_function[f.name] = [dict(w) for w in {tuple(sorted(w.items())): w
                                                  for w in ways}.values()]
    choices = []
    for combination in itertools.product(*per_function.values()):
        slopes = dict(zip(per_function, combination, strict=True))
        choices.append((_label(slopes), slopes))
    return choices


def between(problem: Problem, t: float | dict[str, float], kinks: Found | None = None
            ) -> Slopes:
    """The slopes a fraction t of the way from each kink's left derivative to its right one:
    one t for every kinked function, or one per function (name -> t)."""
    slopes: Slopes = {}
    for f, kink, _ in _kinks_in(problem) if kinks is None else kinks:
        part = t.get(f.name, 0.0) if isinstance(t, dict) else t
        slopes.setdefault(f.name, {})[kink.at] = kink.left + part * (kink.right - kink.left)
    return slopes


def widest(problem: Problem, kinks: Found | None = None) -> Slopes:
    """The slope of largest size any choice takes at each kink: the rounding bounds computed
    with it hold for every choice (a bound grows with |f'|)."""
    slopes: Slopes = {}
    for f, kink, _ in _kinks_in(problem) if kinks is None else kinks:
        slopes.setdefault(f.name, {})[kink.at] = max(
            abs(kink.left), abs(kink.right), *(abs(v) for v in kink.conventions.values()))
    return slopes


def convention_answer(problem: Problem, slopes: Slopes) -> Gradients:
    """The float64 gradients with f'(kink) taken as `slopes` says."""
    own = _entries(problem)
    table = {**own, **{name: _with_kink_derivative(own[name], values)
                       for name, values in slopes.items() if name in own}}
    loss = problem.architecture.loss_spec
    answer = matrix(problem.float64(), table=table, loss=_with_loss_kink_derivative(
        loss, slopes[loss.name][loss.kinks[0].at]) if loss.name in slopes else None)
    return Gradients.from_answer(answer)


def kink_derivatives(problem: Problem, slopes: Slopes) -> dict[int, Any]:
    """layer index -> f'(Z, A) with the slopes taken at the kinks: what the tolerance replays
    (tolerance.scales_replacing_derivatives) to bound the rounding of a convention's answer."""
    specs = problem.architecture.activation_specs
    return {l: _with_kink_derivative(f, slopes[f.name]).derivative
            for l, f in enumerate(specs) if f.name in slopes and f.elementwise}


def _fit_between(problem: Problem, answer: Gradients, kinks: Found) -> list[dict[str, float]]:
    """For each kinked function, the fraction t in [0, 1] (between) whose answer is nearest
    the candidate's, by least squares: Gauss-Newton steps on the gradients, which are linear in
    each t where one layer sits on kinks and a polynomial where several do. A slope of 6
    significant digits (or a one-sided derivative, t within 1e-9 of 0 or 1) is preferred where
    it fits within 0.1%: a candidate writes 0.5, not 0.4999999999. The snapped fractions
    first, then the fitted ones ([] where there is nothing to fit)."""
    names = tensor_names(answer)
    mine = flat(answer, names)
    functions = list(dict.fromkeys(f.name for f, kink, _ in kinks if kink.left != kink.right))
    if not functions:
        return []

    def at(t: np.ndarray) -> np.ndarray:
        return flat(convention_answer(problem, between(problem, dict(zip(
            functions, map(float, t), strict=True)), kinks)), names)

    t = np.full(len(functions), 0.5)
    step = 1e-3
    with np.errstate(all="ignore"):
        for _ in range(8):
            here = at(t)
            columns = []
            for i in range(len(t)):
                up, down = t.copy(), t.copy()
                up[i], down[i] = min(t[i] + step, 1.0), max(t[i] - step, 0.0)
                columns.append((at(up) - at(down)) / (up[i] - down[i]))
            jacobian = np.stack(columns, axis=1)
            if not np.isfinite(jacobian).all() or not np.isfinite(here).all():
                return []
            move = np.linalg.lstsq(jacobian, mine - here, rcond=None)[0]
            moved = np.clip(t + move, 0.0, 1.0)
            done = np.abs(moved - t).max() < 1e-15
            t = moved
            if done:
                break
        # Snap each t, one function at a time, to the simplest value that fits as well: a
        # one-sided derivative, a framework's convention, or 6 significant digits.
        by_name = {f.name: kink for f, kink, _ in kinks}

        def misfit(trial: np.ndarray) -> float:
            return float(np.abs(at(trial) - mine).max())

        fitted, best = t.copy(), misfit(t)
        for i, name in enumerate(functions):
            kink = by_name[name]
            span = kink.right - kink.left
            value = kink.left + t[i] * span
            simple = [0.0, 1.0, *((v - kink.left) / span for v in kink.conventions.values()),
                      (float(f"{value:.6g}") - kink.left) / span]
            for candidate in simple:
                if 0 <= candidate <= 1 and candidate != t[i]:
                    trial = t.copy()
                    trial[i] = candidate
                    fit = misfit(trial)
                    if fit <= best * (1 + 1e-3):
                        t, best = trial, fit
                        break
    return [dict(zip(functions, map(float, found), strict=True)) for found in (t, fitted)]


def _label(slopes: Slopes) -> str:
    return ", ".join(f"{name}'({at:g}) = {value:.4g}" for name, values in slopes.items()
                     for at, value in values.items())


def followed_convention(problem: Problem, answer: Gradients, allowed: Any,
                        matches: Any) -> str:
    """The kink convention the answer follows ('' if none): a framework's, a one-sided
    derivative's (per function, in any combination), or any value between the one-sided
    derivatives (one fraction t of the way from left to right for every kink, fitted).

    `allowed(slopes)`: the tolerance for an answer taking the widest slopes; `matches(answer,
    reference, allowed)`: the worst error over tolerance (<= 1 passes)."""
    kinks = _kinks_in(problem)
    choices = convention_choices(problem, kinks)
    if not choices:
        return ""
    wide = allowed(widest(problem, kinks))
    fitting = [label for label, slopes in choices
               if matches(answer, convention_answer(problem, slopes), wide) <= 1.0]
    for t in _fit_between(problem, answer, kinks):
        slopes = between(problem, t, kinks)
        label = _label(slopes)
        if label in fitting or f"{label}, between the one-sided derivatives" in fitting:
            break
        if matches(answer, convention_answer(problem, slopes), wide) <= 1.0:
            fitting.append(f"{label}, between the one-sided derivatives")
            break
    if len(fitting) > 1:  # the slopes do not show in this case: say so, not one of them
        return f"{', '.join(fitting[:-1])} or {fitting[-1]} (this case cannot tell which)"
    return fitting[0] if fitting else ""


def _entries(problem: Problem) -> dict[str, Activation]:
    """Every activation's entry with the problem's parameter values (leaky_relu's slope)."""
    arch = problem.architecture
    return {name: arch.activation_spec(name) for name in ACTIVATIONS}


def _with_loss_kink_derivative(loss: Loss, value: float) -> Loss:
    """The loss with the slope at its kinks taken as `value` (l1's sign(0), the hinge's
    max(0, m)'(0) for each margin on its kink)."""
    assert loss.kink_derivative is not None
    kinked = loss.kink_derivative
    return dataclasses.replace(loss, derivative=lambda yhat, y: kinked(yhat, y, value))


def _with_kink_derivative(f: Activation, slopes: dict[float, float]) -> Activation:
    """The activation with the slope at each of its kinks (z == at) taken as given."""
    def derivative(z: np.ndarray, a: np.ndarray, original: Any = f.derivative) -> np.ndarray:
        d = original(z, a)
        for at, value in slopes.items():
            d = np.where(z == at, value, d)
        return d.astype(z.dtype)

    return dataclasses.replace(f, derivative=derivative)
