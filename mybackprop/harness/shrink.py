"""Shrink a failing case: fewer samples, layers, units and biases, while the diagnosis stays.

The CLI's counterpart to Hypothesis shrinking in the pytest path. Every step cuts the problem's
own arrays (first rows, first units), so the smaller case is a piece of the original; a layer is
dropped by resizing the next weight matrix to the new fan-in. A step is kept when the candidate
still ends in the same verdict with the same diagnosis pattern; steps that put a pre-activation
on a kink are skipped. Greedy and deterministic: the first step that works is taken, then the
search starts again from the smaller case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from mybackprop.harness.cases import on_kink
from mybackprop.harness.runner import Outcome
from mybackprop.spec.problem import Problem, SpecError, validate

MAX_ATTEMPTS = 300


def shrink(checker: Any, candidate: Any, outcome: Outcome,
           max_attempts: int = MAX_ATTEMPTS) -> tuple[Outcome, int]:
    """The smallest case found that keeps `outcome`'s verdict and pattern, and the tries made."""
    target = _signature(outcome)
    best, attempts, improved = outcome, 0, True
    while improved and attempts < max_attempts:
        improved = False
        for smaller in _smaller(best.problem):
            attempts += 1
            trial = checker.check(candidate, smaller)
            if _signature(trial) == target:
                best, improved = trial, True
                break
            if attempts >= max_attempts:
                break
    return best, attempts


def size(problem: Problem) -> tuple[int, int, int]:
    """(parameters, batch, depth): what shrinking reduces."""
    parameters = sum(w.size for w in problem.weights) + sum(
        b.size for b in problem.biases if b is not None)
    return parameters, problem.batch_size, problem.architecture.depth


def _signature(outcome: Outcome) -> tuple[str, str | None]:
    return outcome.verdict, outcome.diagnosis.pattern if outcome.diagnosis else None


def _smaller(problem: Problem) -> Iterator[Problem]:
    """Candidate reductions, the biggest cuts first."""
    arch = problem.architecture
    n = problem.batch_size
    for k in sorted({1, n // 2, n - 1}):
        if 1 <= k < n:
            yield from _valid(_batch(problem, k))
    for l in range(arch.depth - 1):  # drop a hidden layer
        yield from _valid(_drop_layer(problem, l))
    for l in range(arch.depth):  # fewer units: hidden layers, then the output
        width = arch.layers[l].width
        for k in sorted({1, width // 2, width - 1}):
            if 1 <= k < width:
                yield from _valid(_narrow(problem, l, k))
    for k in sorted({1, arch.input_width // 2, arch.input_width - 1}):
        if 1 <= k < arch.input_width:
            yield from _valid(_narrow_input(problem, k))
    for l, layer in enumerate(arch.layers):
        if layer.bias:
            yield from _valid(_without_bias(problem, l))


def _valid(problem: Problem | None) -> Iterator[Problem]:
    if problem is None:
        return
    try:
        validate(problem)
    except SpecError:
        return
    if not on_kink(problem):
        yield problem


def _rebuild(problem: Problem, layers: list, weights: list, biases: list, X: np.ndarray,
             Y: np.ndarray, input_width: int | None = None) -> Problem | None:
    arch = problem.architecture
    try:
        # everything else kept: the loss, the reduction, the penalty, the parameters
        new = replace(arch, input_width=input_width or arch.input_width, layers=tuple(layers))
    except SpecError:
        return None
    meta = {k: v for k, v in problem.meta.items() if k != "config"}
    meta["shrunk_from"] = problem.meta.get("shrunk_from") or problem.meta.get("config")
    return Problem(new, tuple(weights), tuple(biases), X, Y, meta)


def _batch(problem: Problem, k: int) -> Problem | None:
    return _rebuild(problem, list(problem.architecture.layers), list(problem.weights),
                    list(problem.biases), problem.X[:k].copy(), problem.Y[:k].copy())


def _drop_layer(problem: Problem, l: int) -> Problem | None:
    layers, weights, biases = (list(problem.architecture.layers), list(problem.weights),
                               list(problem.biases))
    fan_in = weights[l].shape[1]
    following = weights[l + 1]
    weights[l + 1] = np.resize(following, (following.shape[0], fan_in)).astype(following.dtype)
    del layers[l], weights[l], biases[l]
    return _rebuild(problem, layers, weights, biases, problem.X, problem.Y)


def _narrow(problem: Problem, l: int, k: int) -> Problem | None:
    layers, weights, biases = (list(problem.architecture.layers), list(problem.weights),
                               list(problem.biases))
    Y = problem.Y
    if l == len(layers) - 1:  # the output layer: the targets narrow too
        if Y.ndim == 1:
            if Y.max() >= k:
                return None
        else:
            Y = Y[:, :k].copy()
    layers[l] = replace(layers[l], width=k)
    weights[l] = weights[l][:k].copy()
    if biases[l] is not None:
        biases[l] = biases[l][:k].copy()
    if l + 1 < len(weights):
        weights[l + 1] = weights[l + 1][:, :k].copy()
    return _rebuild(problem, layers, weights, biases, problem.X, Y)


def _narrow_input(problem: Problem, k: int) -> Problem | None:
    weights = list(problem.weights)
    weights[0] = weights[0][:, :k].copy()
    return _rebuild(problem, list(problem.architecture.layers), weights, list(problem.biases),
                    problem.X[:, :k].copy(), problem.Y, input_width=k)


def _without_bias(problem: Problem, l: int) -> Problem | None:
    layers, biases = list(problem.architecture.layers), list(problem.biases)
    layers[l] = replace(layers[l], bias=False)
    biases[l] = None
    return _rebuild(problem, layers, list(problem.weights), biases, problem.X, problem.Y)
