"""Kinks: which units sit exactly on one, and what each convention for f'(kink) gives there.

At a kink (relu and leaky_relu at 0) the derivative does not exist; frameworks pick a value
(leaky_relu'(0): PyTorch the slope, JAX 1). A difference there is a convention, never a bug.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

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


def _kinks_in(problem: Problem) -> list[tuple[Activation | Loss, Kink, int]]:
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


def convention_answers(problem: Problem) -> list[tuple[str, Gradients]]:
    """The float64 gradients under each convention for f'(kink) that a candidate may follow:
    the left derivative, the right one, or a framework's, the same choice at every kink."""
    kinks = _kinks_in(problem)
    if not kinks:
        return []
    # choice -> name -> kink -> the slope taken there
    choices: dict[str, dict[str, dict[float, float]]] = {"left": {}, "right": {}}
    for f, kink, _ in kinks:
        choices["left"].setdefault(f.name, {})[kink.at] = kink.left
        choices["right"].setdefault(f.name, {})[kink.at] = kink.right
        for framework, value in kink.conventions.items():
            choices.setdefault(framework, {}).setdefault(f.name, {})[kink.at] = value
    p64 = problem.float64()
    answers = []
    loss = problem.architecture.loss_spec
    for values in choices.values():
        own = _entries(problem)
        table = {**own, **{name: _with_kink_derivative(own[name], slopes)
                           for name, slopes in values.items() if name in own}}
        label = ", ".join(f"{name}'({at:g}) = {value:g}" for name, slopes in values.items()
                          for at, value in slopes.items())
        answer = matrix(p64, table=table, loss=_with_loss_kink_derivative(
            loss, values[loss.name][loss.kinks[0].at]) if loss.name in values else None)
        answers.append((label, Gradients(float(answer["loss"]), answer["dW"], answer["db"],
                                         answer["dX"])))
    return answers


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
