"""Which way a candidate writes an activation that people write two ways, measured once.

sigmoid is written 1 / (1 + e^-z) (or e^z / (1 + e^z)), right to an ulp of its value, or
(1 + tanh(z/2)) / 2, right only to an ulp of 1: below zero, where sigmoid is small, the second is
off by up to 1e-16 absolute in float64, and a gradient through such a unit by as much relative.
Both are correct code. Judging everyone by the second's rounding hides real mistakes there (a
missing factor 2 through sigmoid outputs saturated low passes); judging everyone by the first's
fails the second.

So the run asks the candidate itself, once per dtype and per place its declaration lets sigmoid
take (the output layer, a hidden layer: code often has a helper for each): a network of one
unit per layer that the declaration takes, its sigmoid at a few pre-activations where the two
ways differ by 0.1% to 1% of the value (table.Formulation.probes), and at -1, where they agree.
Its loss and weight gradients at each probe, over its answer at -1 (a constant-factor slip
cancels), are compared with the same ratios computed exactly. Within 1e4 ulps at every place:
it computes the usual way, and is held to that way's rounding. Further at one, but within what
a way off by ulps of 1 can move them (under a factor 2): it is judged with the looser
formulation's rounding (tolerance.py, `loose`). Further still is a mistake, not a formulation:
no allowance. A probe network is used only where the looser formulation, replayed on it, would
move those ratios by 10 times that much (a penalty or a flat output could hide it). Where none
fits its declaration, or it fails on one, it is given the looser allowance: the benefit of the
doubt, as before there was a probe. A layer kit's activation layer is measured alone, on the
same pre-activations (kit_looser).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
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
# At the probes an ulp of 1 is about 1% of sigmoid's value, so a way of writing it that is off
# by even tens of ulps of 1 moves a ratio by well under a factor 2 (|log| 0.69): a candidate
# further off there has a mistake (its derivative, its loss), not a looser formulation, and
# gets no allowance for one
LOOSER_AT_MOST = math.log(2.0)
# Losses at y = 0 whose value or derivative follows one unit (ŷ², |ŷ|, ..., or on logits, the
# gradient of softplus(ŷ)); each probe network is kept only where the looser form would show
PROBE_LOSSES = ("mse", "half_mse", "l1", "huber", "binary_cross_entropy",
                "binary_cross_entropy_with_logits")

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
    """'usual' where every place the declaration lets the activation take (the output layer,
    a hidden layer: code often has a helper for each) is measured the usual way; 'looser' where
    one is measured looser; else 'unmeasured'."""
    assert f.looser is not None
    verdicts = []
    for place in ("output", "hidden"):
        if not _may_be(candidate.supports, f.name, place):
            continue
        found = next(_networks(candidate, f, dtype, place), None)
        if found is None:
            verdicts.append("unmeasured")
            continue
        arch, at = found
        answers = []
        for z in (REFERENCE_Z, *f.looser.probes[dtype]):
            problem = _problem(arch, at, z, dtype, _batch(candidate.supports))
            answer, reason = call(problem)
            if answer is None:
                return "unmeasured"
            answers.append((_values(answer), _values(_exact(problem))))
        verdicts.append(_classify(_deviation(answers), dtype))
    if "looser" in verdicts:
        return "looser"
    # wrong there by more than any looser way of writing it: held to the usual rounding
    return "usual" if verdicts and set(verdicts) <= {"usual", "wrong"} else "unmeasured"


def _may_be(supports: Any, name: str, place: str) -> bool:
    """Whether the declaration lets `name` be the output layer's activation, or a hidden one."""
    if place == "hidden" and supports.depth is not None and supports.depth[1] < 2:
        return False
    allowed = supports.output_activations if place == "output" else supports.hidden_activations
    return allowed is None or name in allowed


def _batch(supports: Any) -> int:
    """The fewest samples the declaration takes (the probe's rows are all alike)."""
    return supports.batch[0] if supports.batch is not None else 1


def _agreement(dtype: str) -> float:
    return AGREEMENT_ULPS * float(np.finfo(dtype).eps) / 2


def _classify(deviation: float, dtype: str) -> str:
    """'usual', 'looser' or 'wrong' (a mistake, held to the usual rounding) for a probe's
    deviation; 'unmeasured' where there is none to read (NaN)."""
    if math.isnan(deviation):
        return "unmeasured"
    return ("usual" if deviation <= _agreement(dtype) else
            "looser" if deviation <= LOOSER_AT_MOST else "wrong")


def _log_distance(quotients: np.ndarray) -> float:
    """The largest |log| of quotients that should be 1 (1e-3 for 0.1%); inf for a quotient of
    0 or below, or 0/0: a sign, or a zero where no value of the probe is 0, is a mistake, not a
    way of writing sigmoid."""
    with np.errstate(all="ignore"):
        positive = np.where(quotients > 0, quotients, 0.0)  # NaN > 0 is False: 0 too
        return float(np.max(np.abs(np.log(positive))))


def _deviation(answers: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """How far the candidate's values at each probe over its values at the reference point are
    from the same ratios computed exactly (_log_distance)."""
    (mine_r, exact_r), rest = answers[0], answers[1:]
    with np.errstate(all="ignore"):
        return _log_distance(np.concatenate([(mine / mine_r) / (exact / exact_r)
                                             for mine, exact in rest]))


# Activations for the probe's other layers, most transparent first: each passes a positive
# input on with f(x) about proportional to x, so the probed unit still shows in the loss and
# gradients (softmax, constant on one unit, never comes after it)
OTHERS = ("identity", "relu", "leaky_relu", "hardtanh", "elu", "selu", "tanh", "silu", "gelu",
          "gelu_tanh", "softplus", "sigmoid", "softmax")


def _networks(candidate: Candidate, f: Activation, dtype: str,
              place: str) -> Iterator[tuple[Architecture, int]]:
    """One-unit networks with an `f` layer at the output or in a hidden layer (`place`) that
    the candidate's declaration takes, with the penalty and parameters it declares, where the
    looser formulation would show: replayed in that formulation, the probe's ratios move by at
    least 10 times the agreement allowed."""
    supports = candidate.supports
    low, high = supports.depth or (1, 3)
    penalty = {} if supports.l2 in (None, 0.0) else {
        "l2": supports.l2, "l2_half": bool(supports.l2_half),
        "l2_biases": bool(supports.l2_biases)}
    for depth in range(max(low, 1), min(high, 3) + 1):
        for at in (depth - 1,) if place == "output" else range(depth - 1):
            for bias in (False, True):
                for loss in PROBE_LOSSES:
                    for reduction in sorted(supports.reductions):
                        arch = _network(supports, f.name, depth, at, bias, loss, reduction,
                                        penalty)
                        if arch is not None and _sensitive(arch, at, f, dtype,
                                                           _batch(supports)):
                            yield arch, at


def _network(supports: Any, name: str, depth: int, at: int, bias: bool, loss: str,
             reduction: str, penalty: dict[str, Any]) -> Architecture | None:
    """The first network of that shape the declaration takes: each other layer the first of
    OTHERS it takes there (None where none fits)."""
    if loss == "binary_cross_entropy" and at != depth - 1:
        return None
    names: list[str] = []
    for l in range(depth):
        if l == at:
            names.append(name)
            continue
        output = l == depth - 1
        allowed = supports.output_activations if output else supports.hidden_activations
        fits = [a for a in OTHERS if a in supports.activations and (allowed is None or a in
                allowed) and not (a == "softmax" and l > at)]
        if not fits:
            return None
        names.append(fits[0])
    parameters = {p.name: (getattr(supports, p.name) if getattr(supports, p.name) is not None
                           else p.default)
                  for p in PARAMETERS.values() if p.activation in names}
    arch = Architecture(1, tuple(Layer(1, a, bias) for a in names), loss, reduction,
                        **penalty, **parameters)
    probe = _problem(arch, at, REFERENCE_Z, "float64", _batch(supports))
    return arch if supports.reason_to_skip(probe) is None else None


def _sensitive(arch: Architecture, at: int, f: Activation, dtype: str, batch: int) -> bool:
    """Whether this probe tells the looser formulation apart: replayed in it (the rest exact),
    its ratios move by at least 10 times the agreement allowed."""
    assert f.looser is not None
    looser = f.looser
    table = {spec.name: spec for spec in arch.activation_specs}
    table[f.name] = replace(f, forward=lambda z: looser.forward(
        z.astype(DTYPES[dtype])).astype(np.float64))
    answers = []
    for z in (REFERENCE_Z, *looser.probes[dtype]):
        problem = _problem(arch, at, z, dtype, batch).float64()
        with np.errstate(all="ignore"):
            answer = matrix(problem, table=table)
        answers.append((_values(Gradients.from_answer(answer)), _values(_exact(problem))))
    return _deviation(answers) >= 10 * _agreement(dtype)


def _problem(arch: Architecture, probed: int, z: float, dtype: str, batch: int = 1) -> Problem:
    """x = 1, biases 0, target 0, `batch` samples alike; every weight 1 but the probed layer's,
    set so its pre-activation is z (to the dtype's rounding)."""
    kind = DTYPES[dtype]
    specs = arch.activation_specs
    h = 1.0
    for spec in specs[:probed]:  # what reaches the probed layer, through weights of 1
        h = float(spec.forward(np.array([[h]]))[0, 0])
    weights = tuple(np.full((1, 1), z / h if i == probed else 1.0, dtype=kind)
                    for i in range(len(specs)))
    biases = tuple(np.zeros(1, dtype=kind) if layer.bias else None for layer in arch.layers)
    return unchecked_problem(arch, weights, biases, np.ones((batch, 1), dtype=kind),
                             np.zeros((batch, 1), dtype=kind), {})


def _exact(problem: Problem) -> Gradients:
    with np.errstate(all="ignore"):
        answer = matrix(problem.float64())
    return Gradients.from_answer(answer)


def _values(answer: Gradients) -> np.ndarray:
    """The loss and every weight gradient, as one float64 vector (biases are 0 or absent, and
    their gradients repeat the weights')."""
    return np.array([answer.loss, *(float(np.asarray(w).ravel()[0]) for w in answer.dW)],
                    dtype=np.float64)


# How a pass that needed a looser formulation's allowance begins its reason (the run's notes
# count them: reporting/records.py)
NOTE_PREFIX = "passes with "


def describe(found: dict[str, str]) -> str:
    """How the candidate was judged where `measure` found a looser way (or could not tell)."""
    parts = []
    for name, verdict in found.items():
        formula = ACTIVATIONS[name].looser.formula  # type: ignore[union-attr]
        parts.append(f"{name} judged with the rounding of {formula} (an ulp of 1 where it is "
                     "small): " + ("measured, the candidate computes it that way"
                                   if verdict == "looser" else
                                   "how the candidate computes it could not be measured (no "
                                   "probe network fits its declaration, or it failed one)"))
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
                    deviation = _log_distance(out / f.forward(z.astype(np.float64)))
            except Exception:  # noqa: BLE001 - its own error shows in its own check
                deviation = math.nan
            # looser where measured so, or not measurable; held to the usual rounding where it
            # agrees, or is further off than any way of writing it (a mistake of its own)
            if _classify(deviation, dtype) in ("looser", "unmeasured"):
                found.add(name)
        _KITS[key] = (kit, frozenset(found))
    return _KITS[key][1]
