"""Finite-difference oracle in float64: slow, approximate, and independent of any autodiff.

For one coordinate theta_i with step h (a power of two near u^(1/5) times the tensor's scale),
five loss evaluations, L(theta), L(theta +- h), L(theta +- h/2), give

    central      D(h) = (L(+h) - L(-h)) / 2h,   R = (4 D(h/2) - D(h)) / 3   (Richardson, O(h^4))
    one-sided    R+ = 2 F(h/2) - F(h),   R- = 2 B(h/2) - B(h)                (O(h^2) each)

R is the estimate. Its error estimate is |R - D(h/2)| (truncation) + |R+ - R-| (large where the
loss bends sharply within h, or has a kink) + the loss's rounding error amplified by 1/h.
Where a pre-activation sits exactly on a kink of the table (relu, leaky_relu at 0), the loss
has no derivative, a framework's value is a convention, and the estimate is marked `kinked` so
that it never arbitrates (it is then empty: no loss is evaluated). (Slopes alone cannot tell a
kink from a smooth but sharp bend, as sigmoid(1000 z) has: the table knows where the kinks are.)
Small problems get every element; larger ones get directional derivatives <g, v> along random
directions v, at a cost independent of the number of parameters.
The loss is the matrix level's forward pass in float64, which PyTorch and JAX check elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop.judging.kinks import units_on_kinks
from mybackprop.judging.tolerance import UNIT_ROUNDOFF, Scales, Tolerance, gradient_scales
from mybackprop.levels.matrix import forward
from mybackprop.spec.problem import Gradients, Problem

U = UNIT_ROUNDOFF["float64"]
STEP = U ** (1 / 5)  # balances Richardson's h^4 truncation against rounding / h
SHRINKS = 3  # at most h / 64
SELF_CONSISTENT = 1e-6  # truncation estimate below this fraction of the estimate: trust it


@dataclass
class FiniteDifferenceEstimate:
    """Either every gradient element with its error estimate, or slopes along directions."""

    mode: str  # "full" or "directional"
    kinked: bool = False  # the loss has a kink here: no derivative exists to arbitrate with
    gradients: Gradients | None = None
    errors: dict[str, np.ndarray] = field(default_factory=dict)  # full: per element
    directions: list[dict[str, np.ndarray]] = field(default_factory=list)  # directional: v
    slopes: np.ndarray = field(default_factory=lambda: np.zeros(0))  # estimates of <g, v>
    slope_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def disagreement(self, answer: Gradients, allowed: Scales) -> float:
        """max |answer - estimate| / (estimate's error + allowed rounding); <= 1 agrees."""
        tensors = answer.tensors()
        if self.mode == "full":
            assert self.gradients is not None
            worst = 0.0
            for name, fd in self.gradients.tensors().items():
                if name in tensors:
                    gap = np.abs(tensors[name] - fd)
                    worst = max(worst, float(np.max(gap / (self.errors[name]
                                                         + allowed.tensors[name]))))
            return worst
        ratios = []
        for v, slope, error in zip(self.directions, self.slopes, self.slope_errors, strict=True):
            dot = sum(float(np.sum(tensors[name] * v[name])) for name in v if name in tensors)
            rounding = sum(float(np.sum(np.abs(v[name]) * allowed.tensors[name]))
                           for name in v if name in tensors)
            ratios.append(abs(dot - slope) / (error + rounding))
        return max(ratios)


@dataclass
class FiniteDifferenceOracle:
    """Central differences with Richardson extrapolation, full or along random directions."""

    max_full: int = 600  # coordinates (weights, biases, inputs) up to which every one is done
    n_directions: int = 8
    seed: int = 0
    name: str = "finite_differences"

    def describe(self) -> dict[str, Any]:
        return {"version": "mybackprop", "dtype": "float64",
                "settings": f"Richardson, step u^(1/5) x scale; full up to {self.max_full} "
                            f"coordinates, else {self.n_directions} random directions"}

    def estimate(self, problem: Problem) -> FiniteDifferenceEstimate:
        p = problem.as_float64()
        tensors = _parameters(p)
        full = sum(a.size for a in tensors.values()) <= self.max_full
        if sum(units_on_kinks(p).values()) > 0:  # no derivative to estimate: it never arbitrates
            return FiniteDifferenceEstimate("full" if full else "directional", kinked=True)
        # Rounding of the loss in float64, from the running error analysis of the tolerance.
        loss_error = Tolerance().allowed(gradient_scales(p, "float64"), "float64").loss
        if full:
            return self._full(p, tensors, loss_error)
        return self._directional(p, tensors, loss_error)

    def _full(self, p: Problem, tensors: dict[str, np.ndarray],
              loss_error: float) -> FiniteDifferenceEstimate:
        values, errors = {}, {}
        for name, array in tensors.items():
            scale = _scale(array)
            values[name], errors[name] = np.zeros(array.shape), np.zeros(array.shape)
            for index in np.ndindex(*array.shape):
                h = _power_of_two(STEP * max(abs(float(array[index])), scale))
                original = array[index]

                def loss_at(offset: float, index: tuple[int, ...] = index,
                            array: np.ndarray = array, original: float = original) -> float:
                    array[index] = original + offset
                    value = float(forward(p).cost)
                    array[index] = original
                    return value

                values[name][index], errors[name][index] = _richardson(loss_at, h, loss_error)
        dW = [values[f"dW{l}"] for l in range(1, p.architecture.depth + 1)]
        db = [values.get(f"db{l}") for l in range(1, p.architecture.depth + 1)]
        return FiniteDifferenceEstimate(
            "full", False, Gradients(float(forward(p).cost), dW, db, values["dX"]), errors)

    def _directional(self, p: Problem, tensors: dict[str, np.ndarray],
                     loss_error: float) -> FiniteDifferenceEstimate:
        rng = np.random.default_rng(self.seed)
        originals = {name: a.copy() for name, a in tensors.items()}
        estimate = FiniteDifferenceEstimate("directional")
        slopes, slope_errors = [], []
        for _ in range(self.n_directions):
            v = {name: rng.standard_normal(a.shape) * _scale(a) for name, a in tensors.items()}

            def loss_at(t: float, v: dict[str, np.ndarray] = v) -> float:
                for name, array in tensors.items():
                    array[...] = originals[name] + t * v[name]
                value = float(forward(p).cost)
                for name, array in tensors.items():
                    array[...] = originals[name]
                return value

            slope, error = _richardson(loss_at, STEP, loss_error)
            estimate.directions.append(v)
            slopes.append(slope)
            slope_errors.append(error)
        estimate.slopes, estimate.slope_errors = np.array(slopes), np.array(slope_errors)
        return estimate


def _parameters(p: Problem) -> dict[str, np.ndarray]:
    """The arrays to differentiate, by gradient name (they are p's own, perturbed in place)."""
    named = {}
    for l, (W, b) in enumerate(zip(p.weights, p.biases, strict=True), start=1):
        named[f"dW{l}"] = W
        if b is not None:
            named[f"db{l}"] = b
    named["dX"] = p.X
    return named


def _scale(array: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(array * array))) if array.size else 0.0
    return rms if rms > 0 else 1.0


def _power_of_two(x: float) -> float:
    return float(2.0 ** np.round(np.log2(x)))


def _richardson(loss_at: Any, h: float, loss_error: float) -> tuple[float, float]:
    """Derivative estimate at 0 of t -> loss_at(t), and its error estimate.

    Where the loss bends within the step, Richardson's self-estimate is not yet reliable: the
    step shrinks by 4 (up to SHRINKS times) until the estimate is self-consistent, and the step
    with the smallest error estimate wins.
    """
    l0 = loss_at(0.0)
    best = (0.0, np.inf)
    for _ in range(SHRINKS + 1):
        lp, lm, lp2, lm2 = (loss_at(t) for t in (h, -h, h / 2, -h / 2))
        central, central_half = (lp - lm) / (2 * h), (lp2 - lm2) / h
        estimate = (4 * central_half - central) / 3
        right = 2 * (lp2 - l0) / (h / 2) - (lp - l0) / h
        left = 2 * (l0 - lm2) / (h / 2) - (l0 - lm) / h
        rounding = 10 * loss_error / h
        truncation = abs(estimate - central_half) + abs(right - left)
        if truncation + rounding < best[1]:
            best = (estimate, truncation + rounding)
        if truncation <= SELF_CONSISTENT * abs(estimate) or truncation <= rounding:
            break
        h /= 4
    return best
