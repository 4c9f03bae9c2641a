"""Which way a candidate writes an activation that people write two ways, measured once.

sigmoid is written 1 / (1 + e^-z) (or e^z / (1 + e^z)), right to an ulp of its value, or
(1 + tanh(z/2)) / 2, right only to an ulp of 1: below zero, where sigmoid is small, the second is
off by up to 1e-16 absolute in float64, and a gradient through such a unit by as much relative.
Both are correct code. Judging everyone by the second's rounding hides real mistakes there (a
missing factor 2 through sigmoid outputs saturated low passes); judging everyone by the first's
fails the second. So the run asks the candidate itself, once per dtype: a one-unit network whose
sigmoid sits at a few pre-activations where the two ways differ by 0.1% to 1% of the value
(table.Formulation.probes), and one at -1, where they agree. The candidate's loss and gradients
at each probe, over its answer at -1 (a constant-factor slip cancels), are compared with the
same ratios computed exactly. Within 1e4 ulps: it computes the usual way, and is held to that
way's rounding. Further: it is judged with the looser formulation's rounding (tolerance.py,
`loose`). Where no probe network fits its declaration, or it fails on one, it is given the
looser allowance too: the benefit of the doubt, as before there was a probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mybackprop.harness.contract import Candidate
from mybackprop.levels.matrix import matrix
from mybackprop.spec.problem import Architecture, Gradients, Layer, Problem, unchecked_problem
from mybackprop.spec.table import ACTIVATIONS, DTYPES, PARAMETERS, Activation

# The activations people also write in a looser formulation (table.Formulation).
LOOSER = {name: f for name, f in ACTIVATIONS.items() if f.looser is not None}
REFERENCE_Z = -1.0  # where both ways are right to an ulp of the value
AGREEMENT_ULPS = 1e4  # a ratio within this many ulps of the exact one: the usual formulation
# Losses whose value and derivative at y = 0 follow one sigmoid output unit (ŷ, ŷ²/2, ...)
PROBE_LOSSES = ("mse", "half_mse", "l1", "huber", "binary_cross_entropy")
# Hidden activations with f(1) = 1 exactly, to carry the input to a sigmoid layer above them
CARRIERS = ("identity", "relu", "leaky_relu", "hardtanh")

# (problem) -> (answer, reason it is not one), as Checker runs a candidate
Call = Callable[[Problem], tuple[Gradients | None, str]]


def measure(candidate: Candidate, dtype: str, call: Call) -> dict[str, str]:
    """Activation name -> how the candidate computes it, where not the usual way: 'looser'
    (measured) or 'unmeasured' (no probe fit its declaration, or it failed one). Activations it
    computes the usual way, or does not take, are left out."""
    found = {}
    for name, f in LOOSER.items():
        if name not in candidate.supports.activations:
            continue
        verdict = _probe(candidate, f, dtype, call)
        if verdict != "usual":
            found[name] = verdict
    return found


def _probe(candidate: Candidate, f: Activation, dtype: str, call: Call) -> str:
    assert f.looser is not None
    for arch in _networks(candidate, f.name, dtype):
        answers = []
        for z in (REFERENCE_Z, *f.looser.probes[dtype]):
            problem = _problem(arch, z, dtype)
            answer, reason = call(problem)
            if answer is None:
                return "unmeasured"
            answers.append((_values(answer), _values(_exact(problem))))
        (mine_r, exact_r), rest = answers[0], answers[1:]
        with np.errstate(all="ignore"):
            deviation = max(float(np.max(np.abs((mine / mine_r) / (exact / exact_r) - 1)))
                            for mine, exact in rest)
        if not np.isfinite(deviation):
            return "unmeasured"
        return "usual" if deviation <= AGREEMENT_ULPS * np.finfo(dtype).eps / 2 else "looser"
    return "unmeasured"


def _networks(candidate: Candidate, name: str, dtype: str) -> Iterator[Architecture]:
    """One-unit networks with a `name` layer that the candidate's declaration takes: the unit
    alone, or carried from the input by a hidden unit with f(1) = 1, or under an identity
    output; each without biases, then with (at 0)."""
    supports = candidate.supports
    shapes: list[tuple[str, ...]] = [(name,), *((c, name) for c in CARRIERS), (name, "identity")]
    for bias in (False, True):
        for activations in shapes:
            for loss in PROBE_LOSSES:
                if loss == "binary_cross_entropy" and activations[-1] != name:
                    continue
                for reduction in sorted(supports.reductions):
                    arch = Architecture(1, tuple(Layer(1, a, bias) for a in activations), loss,
                                        reduction, **_parameters(activations))
                    probe = _problem(arch, REFERENCE_Z, dtype)
                    if supports.reason_to_skip(probe) is None:
                        yield arch
                        return


def _parameters(activations: tuple[str, ...]) -> dict[str, float]:
    return {p.name: p.default for p in PARAMETERS.values() if p.activation in activations}


def _problem(arch: Architecture, z: float, dtype: str) -> Problem:
    """x = 1, every weight 1 but the probed layer's, which is z (so its pre-activation is z
    exactly), biases 0, target 0, one sample."""
    kind = DTYPES[dtype]
    names = [layer.activation for layer in arch.layers]
    probed = next(i for i, n in enumerate(names) if n in LOOSER)
    weights = tuple(np.full((1, 1), z if i == probed else 1.0, dtype=kind)
                    for i in range(len(names)))
    biases = tuple(np.zeros(1, dtype=kind) if layer.bias else None for layer in arch.layers)
    return unchecked_problem(arch, weights, biases, np.ones((1, 1), dtype=kind),
                             np.zeros((1, 1), dtype=kind), {})


def _exact(problem: Problem) -> Gradients:
    answer = matrix(problem.float64())
    return Gradients(float(answer["loss"]), answer["dW"], answer["db"], answer["dX"])


def _values(answer: Gradients) -> np.ndarray:
    """The loss and every weight gradient, as one float64 vector (biases are 0 or absent, and
    their gradients repeat the weights')."""
    return np.array([answer.loss, *(float(w.ravel()[0]) for w in answer.dW)], dtype=np.float64)


def describe(found: dict[str, str], dtype: str) -> str:
    """One sentence on how the candidate was judged where `measure` found a looser way."""
    parts = []
    for name, verdict in found.items():
        formula = ACTIVATIONS[name].looser.formula  # type: ignore[union-attr]
        parts.append(f"{name} judged with the rounding of {formula} (an ulp of 1 where it is "
                     "small): " + ("the candidate computes it that way in " + dtype
                                   if verdict == "looser" else
                                   f"how it computes it in {dtype} could not be measured"))
    return "; ".join(parts)



# (id(kit), dtype) -> (the kit, what was measured): kept, so an id stays its own
_KITS: dict[tuple[int, str], tuple[Any, frozenset[str]]] = {}


def kit_looser(kit: Any, dtype: str) -> frozenset[str]:
    """The activations of a layer kit (harness/layers.py) whose forward computes a looser
    formulation in `dtype`: its layer run on the probe pre-activations, each value against the
    exact one (a layer alone is measured directly, no network needed). A layer that raises or
    returns something unreadable there is given the looser allowance."""
    key = (id(kit), dtype)
    if key not in _KITS:
        found = set()
        for name, f in LOOSER.items():
            if name not in kit.activations:
                continue
            assert f.looser is not None
            z = np.array([[REFERENCE_Z, *f.looser.probes[dtype]]], dtype=DTYPES[dtype])
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(kit.activation_layer(name, z, np.ones_like(z))["out"],
                                     dtype=np.float64)
                    deviation = float(np.max(np.abs(out / f.forward(z.astype(np.float64)) - 1)))
            except Exception:  # noqa: BLE001 - its own error shows in its own check
                deviation = np.inf
            if not deviation <= AGREEMENT_ULPS * np.finfo(dtype).eps / 2:
                found.add(name)
        _KITS[key] = (kit, frozenset(found))
    return _KITS[key][1]
