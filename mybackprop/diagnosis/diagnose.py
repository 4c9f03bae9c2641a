"""Diagnosis of a failing case: where the gradient goes wrong, and what kind of mistake it is.

Computed from numbers only: the problem, the candidate's answer (or the reason it was refused)
and the float64 reference. Never from which candidate it is.

Localization: the tensors that disagree, the worst elements, and the first layer, counting back
from the output, where the gradient diverges. When the candidate returns its intermediates
(Z, A, delta per layer), each step of the computation is checked in the order it runs, using the
candidate's own inputs to that step, and the first one that breaks is named.

Pattern: hypotheses are tried in turn, each a sentence and the numbers that support it: the loss
itself wrong; a tensor all zeros; every failing tensor off by one constant factor (N, 1/N, the
output width, 2, 1/2, -1), read in the light of the reduction; the bias alone off by N; dW
transposed; a common slip replayed in float64 (f'(A) for f'(Z), a wrong derivative formula,
softmax's Jacobian taken element-wise, dW_l paired with the wrong layer's activation, a wrong loss
derivative) that reproduces the candidate's numbers; a tensor equal to its neighbour layer's.
What none of them explains is called unknown, with the evidence.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mybackprop.judging.compare import TensorComparison
from mybackprop.judging.tolerance import (
    Tolerance,
    gradient_scales,
    scales_replacing_derivatives,
)
from mybackprop.levels.matrix import forward, matrix
from mybackprop.spec.problem import Gradients, Problem, penalty, unchecked_problem
from mybackprop.spec.table import (
    ACTIVATIONS,
    GELU_C,
    GELU_K,
    LOSSES,
    PARAMETERS,
    SELU_SCALE,
    Activation,
)

Array = np.ndarray


@dataclass(frozen=True)
class Diagnosis:
    """What kind of mistake, in one sentence, the evidence, and where."""

    pattern: str  # one of PATTERNS
    summary: str  # one sentence a learner can act on
    evidence: tuple[str, ...] = ()
    layer: int | None = None  # first layer from the output where it diverges; 0: the input
    parameters: tuple[str, ...] = ()  # the tensors that disagree (dW1, db2, dX, loss)
    step: str = ""  # the step that breaks, when intermediates (or the shapes) say so
    factor: str = ""  # constant_factor and bias_reduction: "N", "1/N", "n_out", "2", "-1", ...
    worst: tuple[str, ...] = ()  # the worst elements, described
    # other patterns that fit the case as well as `pattern` (the summary says each)
    also: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "summary": self.summary, "evidence": list(self.evidence),
                "layer": self.layer, "parameters": list(self.parameters), "step": self.step,
                "factor": self.factor, "worst": list(self.worst),
                **({"also": list(self.also)} if self.also else {})}

    def lines(self) -> list[str]:
        where = [f"layer {self.layer}" if self.layer else "the input" if self.layer == 0 else ""]
        where += [", ".join(self.parameters)] if self.parameters else []
        out = [f"diagnosis ({self.pattern}): {self.summary}"]
        placed = "; ".join(w for w in where if w) + (f"; step: {self.step}" if self.step else "")
        if placed:
            out.append("where: " + placed.removeprefix("; "))
        out += [f"evidence: {e}" for e in self.evidence]
        return out


PATTERNS: dict[str, str] = {
    "constant_factor": "the whole gradient, or some tensors, off by a constant factor",
    "bias_reduction": "the bias gradient not reduced over the batch the way the loss is",
    "zero_gradient": "a gradient that is zero or missing",
    "transposed": "a weight gradient transposed",
    "derivative_at_activation": "an activation derivative evaluated at A instead of Z",
    "wrong_activation_derivative": "a wrong derivative formula for one activation",
    "softmax_elementwise": "softmax's Jacobian treated element-wise",
    "shifted_layer": "gradients shifted by one layer",
    "reversed_layers": "gradients returned in reverse layer order",
    "propagation": "the gradient passed to the layer below without the layer's weights",
    "wrong_loss_derivative": "a wrong derivative of the loss",
    "activation_parameter": "an activation computed with another parameter than the problem's "
                            "(leaky_relu's slope, elu's alpha)",
    "probability_clipped": "a loss on probabilities computed with the probabilities clipped "
                           "(clip(p, eps, 1)), which changes its value where p < eps",
    "forward_wrong": "the forward pass or the loss value already wrong",
    "penalty": "the L2 penalty's gradient missing, halved, doubled or on the wrong tensors",
    "reduced_precision": "part of the gradient computed in a narrower type (float16, bfloat16) "
                         "than the problem's",
    "overflow": "NaN or inf where the oracles are finite",
    "raised": "the candidate raised: where, in its own code, and the shapes of what it used",
    "unknown": "none of the known patterns",
}


# -- entry points ---------------------------------------------------------------------------------

def diagnose_fail(problem: Problem, answer: Gradients, reference: Gradients,
                  comparisons: list[TensorComparison], allowed: Any,
                  intermediates: Callable[[], dict[str, list[Array]]] | None = None,
                  hypotheses: Any = None) -> Diagnosis:
    """Diagnose an answer that kept to the contract but is out of tolerance.

    `allowed` is the tolerance's Scales, the verdict's; `hypotheses` (default: the same) the
    bounds an explanation is judged by. A float32 verdict's bounds are measured for the right
    computation at this input (judging/stochastic.py); an explanation is a different
    computation, with rounding of its own, so the run judges it by the linear bound, which
    holds for any of them. `intermediates` returns the reference's Z, A, delta (asked for only
    when the candidate returned its own).
    """
    ctx = _Context(problem, answer, reference, comparisons,
                   allowed if hypotheses is None else hypotheses, allowed)
    base = Diagnosis("unknown", "", layer=ctx.layer, parameters=tuple(ctx.failing),
                     worst=ctx.worst())
    if answer.intermediates is not None and intermediates is not None:
        base = replace(base, step=_step(ctx, intermediates()))
    # Every explanation is tried: one that fits is named only if no other fits as well (then
    # both are said, the likelier first), and a wrong loss value does not hide a gradient
    # slip. A factor none of N, 2, ... names comes last: a slip may explain it better.
    fits: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {}
    # the first three explain a wrong loss value too; the others, gradients only
    gradients = (_zero, _factor, _transposed, _reversed, _slips, _shifted,
                 _reduced_precision) if ctx.failing else ()
    for hypothesis in (_penalty_slip, _other_parameter, _clipped, *gradients):
        found = hypothesis(ctx)
        if found is not None and found[0] not in fits:
            fits[found[0]] = found
    if ctx.failing and not fits:
        found = _unnamed_factor(ctx)
        if found is not None:
            fits[found[0]] = found
    forward = _forward_wrong(ctx)
    if forward is not None and not fits:
        fits = {forward[0]: forward}
    if not fits:
        return replace(base, summary=_unknown_summary(ctx),
                       evidence=tuple(ctx.factor_evidence()))
    (pattern, summary, evidence, extra), *others = fits.values()
    evidence = list(evidence)
    also = list(extra.pop("also", ()))
    for other_pattern, other_summary, other_evidence, other_extra in others:
        summary += f"; or, fitting this case as well: {other_summary}"
        evidence += other_evidence
        also += [other_pattern, *other_extra.get("also", ())]
    extra = {**extra, "also": tuple(dict.fromkeys(p for p in also if p != pattern))}
    if forward is not None and pattern != forward[0] and pattern not in EXPLAINS_LOSS:
        c = ctx.answer.loss / ctx.reference.loss if ctx.reference.loss else None
        if pattern == "constant_factor" and c is not None and extra.get("factor") and \
                _same_factor(c, extra["factor"], ctx.problem):
            summary += "; the loss value is off by the same factor"
        else:
            summary += ("; and the loss value is wrong too, so the forward pass or the loss "
                        "formula has a mistake of its own")
        evidence += forward[2]
        extra = {**extra, "parameters": ("loss", *ctx.failing)}
    return replace(base, pattern=pattern, summary=summary, evidence=tuple(evidence), **extra)


_SHAPE = re.compile(r"^(dW|db|dX)(\d*) has shape \(([\d, ]*)\), expected \(([\d, ]*)\)")
_RAISED = re.compile(r"^raised (\w+): (.*) \(at (.+?) line (\d+), in ([^:;)]+)(?:: (.*?))?"
                     r"(?:; shapes: (.*))?\)$")
# The runner's reason for a NaN/inf answer ends so where the candidate's dX is finite (then every
# Delta is, and an overflow confined to weight gradients is placed in their products)
FINITE_DX = "; dX is finite"
_NONFINITE = re.compile(r"^(loss|dW\d+|db\d+|dX)(\[[\d, ]*\])?(?: \(and ([\w, ]+)\))?"
                        r" is NaN or inf")


def diagnose_error(problem: Problem, reason: str) -> Diagnosis | None:
    """Diagnose an `error` whose reason is numbers: a wrong shape, or NaN/inf. Else None."""
    shape = _SHAPE.match(reason)
    if shape:
        return _shape_diagnosis(problem, *shape.groups())
    nonfinite = _NONFINITE.match(reason)
    if nonfinite:
        others = nonfinite.group(3)
        return _overflow(problem, nonfinite.group(1), reason,
                         (nonfinite.group(1), *(others.split(", ") if others else ())))
    raised = _RAISED.match(reason)
    if raised:
        kind, message, file, line, function, code, shapes = raised.groups()
        summary = (f"{function} raised {kind}: {message}, at {file} line {line}"
                   + (f": {code}" if code else "")
                   + (f", with {shapes}" if shapes else ""))
        # the step names where it broke: what errors of a run are grouped by
        return Diagnosis("raised", summary, (f"{kind}: {message}",), None, (),
                         step=f"{kind} in {function}, at {file} line {line}")
    return None


# -- the case, prepared once ----------------------------------------------------------------------

@dataclass
class _Context:
    problem: Problem
    answer: Gradients
    reference: Gradients
    comparisons: list[TensorComparison]
    allowed: Any  # what an explanation is judged by
    shown: Any  # the verdict's bounds: what "x tol" in the worst elements counts in
    cand: dict[str, Array] = field(init=False)
    ref: dict[str, Array] = field(init=False)
    failing: list[str] = field(init=False)
    layer: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.cand = {k: v.astype(np.float64) for k, v in self.answer.tensors().items()}
        ref = self.reference.tensors()
        self.ref = {k: ref[k] for k in self.cand}
        self.failing = [c.name for c in self.comparisons if not c.passed and c.name != "loss"]
        layers = [int(name[2:]) for name in self.failing if name[:2] in ("dW", "db")]
        self.layer = max(layers) if layers else (0 if "dX" in self.failing else None)

    @property
    def loss_failed(self) -> bool:
        return any(c.name == "loss" and not c.passed for c in self.comparisons)

    @property
    def depth(self) -> int:
        return self.problem.architecture.depth

    def worst(self, count: int = 3) -> tuple[str, ...]:
        """The `count` elements furthest out of tolerance, over every failing tensor."""
        rows = []
        for name in self.failing:
            with np.errstate(all="ignore"):  # a bound of 0 or a denormal: inf, as it is
                ratio = np.abs(self.cand[name] - self.ref[name]) / self.shown.tensors[name]
            for flat in np.argsort(ratio, axis=None)[::-1][:count]:
                index = np.unravel_index(flat, ratio.shape)
                rows.append((float(ratio[index]), name, index))
        rows.sort(key=lambda r: -r[0])
        return tuple(f"{name}[{', '.join(map(str, idx))}]: candidate {self.cand[name][idx]:.6g}, "
                     f"reference {self.ref[name][idx]:.6g} ({ratio:.2g}x tol)"
                     for ratio, name, idx in rows[:count])

    def matches(self, name: str, value: Array, transposed: bool = False) -> bool:
        """Does the candidate's tensor equal `value` (a hypothesis), up to rounding?"""
        cand = self.cand[name].T if transposed else self.cand[name]
        return _close(cand, value, self.allowed.tensors[name], self.problem.dtype_name)

    def factor_evidence(self) -> list[str]:
        lines = []
        for name in self.failing:
            ratio = _ratio(self.cand[name], self.ref[name])
            if ratio is not None:
                lines.append(f"{name} = {ratio:.6g} x reference (least squares), "
                             f"residual {_residual(self.cand[name], self.ref[name], ratio):.1e}")
        return lines


def _close(value: Array, hypothesis: Array, allowed: Array, dtype: str) -> bool:
    """value equals the hypothesis element by element, to within the tolerance plus a little of
    the element's size (the hypothesis is computed in float64, in its own order of operations)."""
    if value.shape != hypothesis.shape or not np.all(np.isfinite(hypothesis)):
        return False
    slack = 1e-5 if dtype == "float32" else 1e-12
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(value - hypothesis) <= allowed + slack * np.abs(hypothesis)))


def _ratio(value: Array, reference: Array) -> float | None:
    """The least-squares c in value ~ c * reference, or None for a zero reference."""
    denominator = float(np.vdot(reference, reference))
    if denominator == 0 or not np.isfinite(denominator):
        return None
    return float(np.vdot(value, reference)) / denominator


def _residual(value: Array, reference: Array, c: float) -> float:
    size = np.linalg.norm(value)
    return float(np.linalg.norm(value - c * reference) / size) if size else 0.0


# -- hypotheses: each returns (pattern, summary, evidence, extra fields) or None ----------------

Found = tuple[str, str, list[str], dict[str, Any]] | None


def _other_parameter(ctx: _Context) -> Found:
    """The whole answer is the problem's with another value of an activation parameter: code
    written for leaky_relu's slope 0.2 (or elu's alpha 0.5) handed a problem of another."""
    arch = ctx.problem.architecture
    used = arch.parameters
    if not used:
        return None
    choices = [sorted({PARAMETERS[n].default, *PARAMETERS[n].drawn} - {v}) for n, v in
               used.items()]
    p = ctx.problem.float64()
    for values in itertools.product(*(c + [used[n]] for c, n in zip(choices, used,
                                                                    strict=True))):
        other = dict(zip(used, values, strict=True))
        if other == used:
            continue
        moved = unchecked_problem(replace(arch, **other), p.weights, p.biases, p.X, p.Y, {})
        answer = matrix(moved)
        tensors = {"loss": np.asarray(answer["loss"]),
                   **Gradients.from_answer(answer).tensors()}
        # judged with that problem's own rounding: another value moves every error bound
        dtype = ctx.problem.dtype_name
        allowed = Tolerance().allowed(gradient_scales(moved, dtype, measured=False), dtype)
        if not _close(np.asarray(ctx.answer.loss, dtype=np.float64), tensors["loss"],
                      np.asarray(allowed.loss), dtype):
            continue
        if all(_close(ctx.cand[n], tensors[n], allowed.tensors[n], dtype) for n in ctx.cand):
            moved_names = [n for n in used if other[n] != used[n]]
            said = " and ".join(f"{PARAMETERS[n].activation} with {n} {other[n]:g} where the "
                                f"problem's is {used[n]:g}" for n in moved_names)
            fix = " and ".join(f"{n}={other[n]:g}" for n in moved_names)
            return ("activation_parameter", f"it computes {said}: if the code is written for "
                    f"that value, declare {fix} in @candidate(...); else read "
                    f"problem.{moved_names[0]}",
                    ["the reference with that value reproduces the loss and "
                     f"{', '.join(ctx.cand)} to within rounding"], {})
    return None


# The eps that code clips probabilities with before a log (np.clip(p, eps, 1 - eps)).
CLIP_EPS = (1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15, 1e-16)


def _clipped(ctx: _Context) -> Found:
    """The loss, its derivative, or both are computed on probabilities clipped to [eps, 1 - eps]:
    a textbook guard against log(0) that changes them wherever a probability is below eps.
    Named only where the replay explains the loss value and every gradient tensor."""
    arch = ctx.problem.architecture
    loss = arch.loss_spec
    if loss.output is None:
        return None
    p = ctx.problem.float64()
    fwd = forward(p)
    y_hat, total = fwd.a[-1], ctx.answer.loss
    penalty_value = penalty(p)[0] if arch.l2 else 0.0
    for eps in CLIP_EPS:
        high = 1 - eps if loss.output == "sigmoid" else 1.0
        clipped = np.clip(y_hat, eps, high)
        moved = int(np.sum(clipped != y_hat))
        if not moved:
            continue
        with np.errstate(all="ignore"):
            value = float(loss.terms(clipped, p.Y).sum() / fwd.divisor + penalty_value)
        loss_clipped = ctx.loss_failed and _close(
            np.asarray(total, dtype=np.float64), np.asarray(value), np.asarray(ctx.allowed.loss),
            ctx.problem.dtype_name)
        if ctx.loss_failed and not loss_clipped:
            continue
        derivative = ""
        if ctx.failing:  # the gradients must follow from a clipped derivative too
            derivative = _clipped_derivative(ctx, eps, high)
            if not derivative:
                continue
        bounds = f"[{eps:g}, {'1 - ' if loss.output == 'sigmoid' else ''}1]"
        what = (f"the loss is {loss.name} of probabilities clipped to {bounds}" if loss_clipped
                else f"the loss's derivative is that of probabilities clipped to {bounds} (the "
                "loss value is right)")
        evidence = [f"loss: candidate {total:.8g}, clipped reference {value:.8g}, "
                    f"reference {ctx.reference.loss:.8g}"] if loss_clipped else []
        if derivative:
            evidence.append(f"the gradients replayed with the derivative {derivative} "
                            f"reproduce {', '.join(ctx.cand)} to within rounding")
        return ("probability_clipped", f"{what}"
                f"{f', the derivative {derivative}' if derivative else ''}: {moved} "
                f"probabilities are below {eps:g} here, where clipping changes "
                f"{'both' if loss_clipped and derivative else 'it'} (mybackprop compares the "
                f"unclipped {loss.name}); drop the clip, or compute the loss from the logits",
                evidence, {})
    return None


def _clipped_derivative(ctx: _Context, eps: float, high: float) -> str:
    """How a clipped derivative reproduces every gradient tensor: taken at the clipped
    probabilities, or the clipped loss's own (0 where the clip holds); '' if neither does."""
    loss = ctx.problem.architecture.loss_spec

    def at_clipped(y_hat: Array, y: Array) -> Array:
        return loss.derivative(np.clip(y_hat, eps, high), y)

    def of_clipped(y_hat: Array, y: Array) -> Array:
        inside = (y_hat >= eps) & (y_hat <= high)
        return np.where(inside, loss.derivative(np.clip(y_hat, eps, high), y), 0.0)

    def fused(a: Array, y: Array) -> Array:  # dL/dZ as p - y, the probabilities clipped
        target = np.eye(a.shape[-1])[y] if loss.targets == "classes" else y
        return np.clip(a, eps, high) - target

    slips = [("taken at the clipped probabilities", _Slip("", "", loss_derivative=at_clipped)),
             ("of the clipped loss, 0 where the clip holds",
              _Slip("", "", loss_derivative=of_clipped))]
    if ctx.problem.activations[-1] == loss.output:
        slips.append(("written p - y with p clipped (the output layer's and the loss's "
                      "derivatives together)", _Slip("", "", output_delta=fused)))
    for how, slip in slips:
        simulated = _simulate(ctx.problem, slip)
        if simulated is not None and all(ctx.matches(n, simulated[n]) for n in ctx.cand):
            return how
    return ""


# Patterns whose replay gives the loss value too: a wrong loss is part of what they explain.
EXPLAINS_LOSS = frozenset({"probability_clipped", "activation_parameter", "penalty"})


def _same_factor(c: float, factor: str, problem: Problem) -> bool:
    """Whether c is the factor a diagnosis named ('N = 2', '1/2', or an unnamed '1.37')."""
    parts = factor.split(" = ")
    if {label for label, _ in _factor_labels(c, problem)} & set(parts):
        return True
    return any(re.fullmatch(r"-?[\d.]+(e[-+]?\d+)?", part) is not None
               and math.isclose(c, float(part), rel_tol=1e-3) for part in parts)


def _forward_wrong(ctx: _Context) -> Found:
    """The loss value is wrong: named alone when no explanation of the gradients fits."""
    if not ctx.loss_failed:
        return None
    loss, ref = ctx.answer.loss, ctx.reference.loss
    evidence = [f"loss: candidate {loss:.8g}, reference {ref:.8g}"]
    labels = _factor_labels(loss / ref, ctx.problem) if ref else []
    if labels:
        evidence.append(f"the loss is {labels[0][0]} x the reference: {labels[0][1]}")
    grads = "the gradients are right" if not ctx.failing else (
        f"{len(ctx.failing)} gradient tensors are wrong too; fix the loss first, they follow from "
        "the same forward pass")
    return ("forward_wrong", f"the loss value is already wrong, so the forward pass or the loss "
            f"formula is; {grads}", evidence, {"parameters": ("loss", *ctx.failing)})


def _zero(ctx: _Context) -> Found:
    zeros = [n for n in ctx.failing if not np.any(ctx.cand[n])]
    if not zeros or len(zeros) != len(ctx.failing):
        return None
    what = {"dX": "dX is all zeros: the gradient was never propagated to the input",
            "db": "the bias gradient is all zeros where the reference's is not: it was never "
                  "computed, or nothing reached it from the layers above",
            "dW": "the weight gradient is all zeros where the reference's is not: it was never "
                  "computed, or nothing reached it from the layers above"}
    kinds = sorted({n if n == "dX" else n[:2] for n in zeros})
    summary = "; ".join(what[k] for k in kinds)
    evidence = [f"{n}: every element 0, reference norm {np.linalg.norm(ctx.ref[n]):.3g}"
                for n in zeros]
    return "zero_gradient", summary, evidence, {}


def _common_factor(ctx: _Context) -> tuple[float, dict[str, float], list[str], str] | None:
    """(c, per-tensor factors, evidence, scope) when every failing tensor is one constant c
    times the reference (c not 1), else None."""
    factors = {}
    for name in ctx.failing:
        c = _ratio(ctx.cand[name], ctx.ref[name])
        if c is None or not ctx.matches(name, c * ctx.ref[name]):
            return None
        factors[name] = c
    if not factors:
        return None
    values = list(factors.values())
    if max(values) - min(values) > 1e-3 * max(abs(v) for v in values):
        return None  # different factors: not one slip
    c = values[0]
    if abs(c - 1) < 1e-3:
        return None  # not a factor: an error of its own that happens to be small
    evidence = [f"{name} = {v:.6g} x reference" for name, v in factors.items()]
    nonzero = [n for n in ctx.cand if np.any(ctx.ref[n])]
    scope = "the whole gradient" if set(nonzero) <= set(factors) else ", ".join(factors)
    return c, factors, evidence, scope


def _unnamed_factor(ctx: _Context) -> Found:
    found = _common_factor(ctx)
    if found is None or _factor_labels(found[0], ctx.problem):
        return None
    c, _, evidence, scope = found
    return ("constant_factor", f"{scope} is {c:.6g} times the right value, a constant "
            "factor that is not N, 1/N, the output width, 2, 1/2 or -1", evidence,
            {"factor": f"{c:.6g}"})


def _factor(ctx: _Context) -> Found:
    found = _common_factor(ctx)
    if found is None:
        return None
    c, factors, evidence, scope = found
    labels = _factor_labels(c, ctx.problem)
    if not labels:
        return None  # _unnamed_factor, after the slips
    names = [label for label, _ in labels]
    if len(labels) > 1:
        evidence.append(f"{' = '.join(names)} in this case (N = {ctx.problem.batch_size}, "
                        f"n_out = {ctx.problem.architecture.widths[-1]}): either reading fits")
    # The bias alone, if the weight gradients of its layers are right (not scaled as well,
    # which would be the whole gradient, only within tolerance where they are small).
    weights = [n for n in ctx.cand if n.startswith("dW") and np.any(ctx.ref[n])
               and ctx.matches(n, c * ctx.ref[n])]
    scaled_weights = [n for n in weights if not ctx.matches(n, ctx.ref[n])]
    meaning = "; or ".join(m for _, m in labels)
    if all(n.startswith("db") for n in factors) and names[0] in ("N", "1/N") \
            and not scaled_weights:
        how = ("summed over the batch where the loss averages" if names[0] == "N"
               else "averaged over the batch on top of the loss's own 1/N")
        bias = (f"the bias gradient is {names[0]} times the right value: {how}; db_l must be "
                "reduced over samples exactly like dW_l (Delta_l summed, the reduction's "
                "divisor already in Delta)")
        if weights:  # they fit both readings: too small here to tell whether they are scaled
            return ("constant_factor", f"{bias}; or, fitting this case as well, the whole "
                    f"gradient is {names[0]} times the right value ({meaning}): "
                    f"{', '.join(weights)} are too small here to tell", evidence,
                    {"factor": " = ".join(names), "also": ("bias_reduction",)})
        return ("bias_reduction", bias, evidence, {"factor": " = ".join(names)})
    return ("constant_factor", f"{scope} is {names[0]} times the right value: {meaning}",
            evidence, {"factor": " = ".join(names)})


def _factor_labels(c: float, problem: Problem) -> list[tuple[str, str]]:
    """Name a constant factor in the light of the batch size, output width and reduction:
    every reading that fits, the likeliest first (N = 2 fits both "N" and "2")."""
    n, k = problem.batch_size, problem.architecture.widths[-1]
    reduction, loss = problem.architecture.reduction, problem.architecture.loss
    per_element = not LOSSES[loss].per_sample
    averages = reduction in ("mean", "batch_mean")
    meanings = {
        "N": "summed over the batch instead of averaged (the mean's 1/N is missing)" if averages
        else "multiplied by the batch size N, though the loss is a plain sum",
        "1/N": "divided by the batch size N twice" if averages
        else "averaged over the batch while the loss (reduction 'sum') sums over it",
        "n_out": "averaged over samples only, while 'mean' averages over all N x n_out elements "
        "(the 1/n_out is missing)" if reduction == "mean" and per_element
        else "multiplied by the output width n_out",
        "1/n_out": "averaged over the output units too, while the reduction sums over them",
        "N*n_out": "summed over every element instead of averaged (the mean's 1/(N n_out) is "
        "missing)",
        "1/(N*n_out)": "divided by the number of elements though the reduction does not "
        "average over them all",
        "2": "twice the right value: a factor 2 counted twice, or a gradient added twice",
        "1/2": "the 2 of d/dyhat (yhat - y)^2 = 2 (yhat - y) is missing" if loss == "mse"
        else "half the right value: a stray 1/2",
        "-1": "the sign is flipped: (y - yhat) instead of (yhat - y), or the gradient of -L",
        "-N": "the sign is flipped and the batch summed instead of averaged",
        "-1/N": "the sign is flipped and divided by N once more",
    }
    order = [("-1", -1), ("N", n), ("1/N", 1 / n), ("n_out", k), ("1/n_out", 1 / k),
             ("N*n_out", n * k), ("1/(N*n_out)", 1 / (n * k)), ("2", 2), ("1/2", 0.5),
             ("-N", -n), ("-1/N", -1 / n)]
    if loss == "mse":  # the classic missing 2 comes first
        order.insert(0, order.pop(8))
    seen: set[float] = set()
    found = []
    for label, value in order:
        if value != 1 and math.isclose(c, value, rel_tol=1e-3) and label not in seen:
            found.append((label, meanings[label]))
            seen.add(label)
    return found


def _transposed(ctx: _Context) -> Found:
    weights = [n for n in ctx.failing if n.startswith("dW")]
    if not weights or len(weights) != len(ctx.failing):
        return None
    if not all(ctx.ref[n].shape[0] == ctx.ref[n].shape[1] and ctx.matches(n, ctx.ref[n].T)
               for n in weights):
        return None
    return ("transposed", f"{', '.join(weights)} {'is' if len(weights) == 1 else 'are'} the "
            "transpose of the right value: dW_l = Delta_l^T A_(l-1) has W_l's shape "
            "(n_l, n_(l-1)), outputs by inputs", [f"{n} equals reference {n}^T" for n in weights],
            {})


def _reversed(ctx: _Context) -> Found:
    """Every failing dW, db holds the reference of its mirror layer (L + 1 - l): a list built
    from the output down and never reversed."""
    depth = ctx.depth
    if depth < 2 or any(name[:2] not in ("dW", "db") for name in ctx.failing):
        return None
    for name in ctx.failing:
        mirror = f"{name[:2]}{depth + 1 - int(name[2:])}"
        if mirror not in ctx.ref or ctx.ref[mirror].shape != ctx.cand[name].shape or \
                not ctx.matches(name, ctx.ref[mirror]):
            return None
    return ("reversed_layers", "the gradients are in reverse layer order: dW_l holds "
            f"dW_(L+1-l) (L = {depth}), as a list built from the output down and never "
            "reversed", [f"{n} equals the reference {n[:2]}{depth + 1 - int(n[2:])}"
                         for n in ctx.failing], {})


def _shifted(ctx: _Context) -> Found:
    hits = []
    for name in ctx.failing:
        if name[:2] not in ("dW", "db"):
            return None
        l = int(name[2:])
        for other in (l - 1, l + 1):
            key = f"{name[:2]}{other}"
            if key in ctx.ref and ctx.ref[key].shape == ctx.cand[name].shape and ctx.matches(
                    name, ctx.ref[key]):
                hits.append(f"{name} equals the reference {key}")
                break
        else:
            return None
    return ("shifted_layer", "the gradients are shifted by one layer: each failing tensor holds "
            "the right value of its neighbour (an index off by one in the backward loop)", hits,
            {})


# Narrower types a gradient is computed in by mistake: unit roundoff, and what underflow may
# cost per term of a sum (half the spacing of its subnormals: float16 has them down to 2^-24).
NARROW_TYPES: dict[str, tuple[float, float]] = {"float16": (2.0**-11, 2.0**-25),
                                                "bfloat16": (2.0**-8, 2.0**-134)}


def _narrow(values: Array, narrow: str) -> Array:
    """Which values are numbers of the narrow type (they survive a round trip through it)."""
    with np.errstate(all="ignore"):
        if narrow == "float16":
            return values.astype(np.float16).astype(np.float64) == values
        single = values.astype(np.float32)
        return (single.astype(np.float64) == values) & (
            (single.view(np.uint32) & np.uint32(0xFFFF)) == 0)


def _reduced_precision(ctx: _Context) -> Found:
    """The failing tensors are numbers of a narrower type (every element survives a round trip
    through float16, or bfloat16) and within that type's rounding of the right values, where
    the right values rounded to the candidate's dtype mostly are not: computed in that type."""
    values = np.concatenate([ctx.cand[n].ravel() for n in ctx.failing])
    if 0 < np.count_nonzero(values) < 4:  # too few numbers to tell (all 0: underflow fits)
        return None
    dtype = ctx.problem.dtype_name
    exact = np.concatenate([ctx.ref[n].ravel() for n in ctx.failing]).astype(dtype)
    exact = exact[exact != 0].astype(np.float64)
    tol = Tolerance()
    for narrow, (u, underflow) in NARROW_TYPES.items():
        if not np.all(_narrow(values, narrow)) or np.mean(_narrow(exact, narrow)) > 0.5:
            continue
        # the same bounds in that type's unit roundoff, and what underflow costs in each sum
        ratio = tol.multiplier(dtype, unit_roundoff=u) / tol.multiplier(dtype)
        terms = ctx.problem.batch_size + max(ctx.problem.architecture.widths)
        if all(_close(ctx.cand[n], ctx.ref[n], ratio * ctx.allowed.tensors[n]
                      + tol.factor[dtype] * terms * underflow, dtype) for n in ctx.cand):
            names = ", ".join(ctx.failing)
            return ("reduced_precision", f"{names} {'is' if len(ctx.failing) == 1 else 'are'} "
                    f"computed in {narrow}: every element is a {narrow} number, within "
                    f"{narrow}'s rounding of the right value (unit roundoff {u:.2g}): a cast "
                    f"to {narrow} before a product, or arrays kept in {narrow}; compute in the "
                    f"problem's {dtype}",
                    [f"{values.size} elements of {names}, all {narrow} numbers; of the right "
                     f"values rounded to {dtype}, {np.mean(_narrow(exact, narrow)):.0%} are",
                     f"every tensor within {narrow}'s rounding of the reference"], {})
    return None


# -- slips replayed in float64 -------------------------------------------------------------------

@dataclass(frozen=True)
class _Slip:
    pattern: str
    summary: str
    layers: tuple[int, ...] = ()  # 0-based layers the slip applies to
    # layer -> what replaces f'(Z) there, as a function of (Z, A)
    derivatives: dict[int, Callable[[Array, Array], Array]] = field(default_factory=dict)
    softmax_diagonal: bool = False
    dw_same_layer: bool = False
    skip_weights: bool = False  # g_(l-1) = Delta_l where Delta_l W_l belongs (square layers)
    loss_derivative: Callable[[Array, Array], Array] | None = None
    # (A_L, Y) -> what replaces dL/dZ_L at the output, before the reduction's divisor (the
    # fused p - y of a softmax or sigmoid with cross-entropy, written by hand)
    output_delta: Callable[[Array, Array], Array] | None = None
    step: str = ""


def _sigmoid(z: Array) -> Array:
    return ACTIVATIONS["sigmoid"].forward(z)


# Common wrong derivative formulas, by activation: (what was written, f'(z, a) as written).
FORMULA_SLIPS: dict[str, list[tuple[str, Callable[[Array, Array], Array]]]] = {
    "tanh": [("1 - tanh(z) (the square is missing)", lambda z, a: 1 - a),
             ("1 - z^2 (z where tanh(z) belongs)", lambda z, a: 1 - z * z)],
    "sigmoid": [("sigmoid(z) (1 - z)", lambda z, a: a * (1 - z)),
                ("sigmoid(z) alone", lambda z, a: a),
                ("z (1 - z): the formula a (1 - a) with z where a = sigmoid(z) belongs",
                 lambda z, a: z * (1 - z))],
    "relu": [("z instead of the step (z > 0)", lambda z, a: np.maximum(z, 0.0)),
             ("1 everywhere (the step is missing)", lambda z, a: np.ones_like(z))],
    "softplus": [("exp(z) instead of sigmoid(z)", lambda z, a: np.exp(np.minimum(z, 700.0))),
                 ("softplus(z) itself", lambda z, a: a)],
    "silu": [("sigmoid(z) alone: the product rule's z sigmoid'(z) is missing",
              lambda z, a: _sigmoid(z))],
    "gelu": [("Phi(z) alone: the product rule's z phi(z) is missing",
              lambda z, a: ACTIVATIONS["gelu"].derivative(z, a) - z * np.exp(-z * z / 2)
              / math.sqrt(2 * math.pi))],
    "selu": [("elu's derivative, without the scale 1.0507",
              lambda z, a: ACTIVATIONS["selu"].derivative(z, a) / SELU_SCALE)],
    "gelu_tanh": [("the inner derivative √(2/π) (1 + 3 · 0.044715 z²) taken as √(2/π)",
                   lambda z, a: _gelu_tanh_without_inner_chain(z))],
}


def _leaky_relu_slips(slope: float) -> list[tuple[str, Callable[[Array, Array], Array]]]:
    """leaky_relu's slips at its slope s, and a slope hard-coded where the problem says s."""
    others = sorted({PARAMETERS["leaky_slope"].default, *PARAMETERS["leaky_slope"].drawn}
                    - {slope})
    return [(f"relu's derivative: 0 below zero instead of the slope {slope:g}",
             lambda z, a: (z > 0).astype(z.dtype)),
            (f"the slope {slope:g} above zero and 1 below (swapped)",
             lambda z, a: np.where(z > 0, slope, 1.0)),
            *((f"the slope {c:g} below zero where leaky_slope is {slope:g}",
               lambda z, a, c=c: np.where(z > 0, 1.0, c)) for c in others)]


def _elu_slips(alpha: float) -> list[tuple[str, Callable[[Array, Array], Array]]]:
    """elu's slips at its alpha: the value for the derivative, and alpha lost in it."""
    slips: list[tuple[str, Callable[[Array, Array], Array]]] = [
        ("1 below zero, as if it were relu plus identity", lambda z, a: np.ones_like(z)),
        (f"{'' if alpha == 1 else 'α '}(exp(z) - 1) below zero (the value, not its derivative)",
         lambda z, a: np.where(z > 0, 1.0, a))]
    if alpha != 1:
        slips += [(f"a + 1 below zero where a + α belongs (α = {alpha:g} taken as 1)",
                   lambda z, a: np.where(z > 0, 1.0, a + 1)),
                  (f"exp(z) below zero where α exp(z) belongs (α = {alpha:g} left out)",
                   lambda z, a: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))))]
    return slips


# The slips of an activation that takes a parameter, made for its value.
PARAMETER_SLIPS: dict[str, Callable[[float], list[tuple[str, Callable[[Array, Array], Array]]]]] \
    = {"leaky_relu": _leaky_relu_slips, "elu": _elu_slips}


def _at_activation(f: Activation) -> Callable[[Array, Array], Array]:
    return lambda z, a: f.derivative(a, f.forward(a))


def _gelu_tanh_without_inner_chain(z: Array) -> Array:
    t = np.tanh(GELU_K * (z + GELU_C * z ** 3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_K


def _formula_slips(f: Activation) -> list[tuple[str, Callable[[Array, Array], Array]]]:
    """Wrong derivatives of one activation: none at all, then the named formulas."""
    missing = ("1, no derivative at all (Delta_l = dL/dA_l)", lambda z, a: np.ones_like(z))
    if f.name in PARAMETER_SLIPS:
        assert f.value is not None
        return [missing, *PARAMETER_SLIPS[f.name](f.value)]
    return [missing, *FORMULA_SLIPS.get(f.name, [])]


def _slip_catalogue(problem: Problem) -> list[_Slip]:
    arch = problem.architecture
    slips: list[_Slip] = []
    by_name: dict[str, tuple[int, ...]] = {}
    for l, name in enumerate(problem.activations):
        by_name[name] = (*by_name.get(name, ()), l)
    # f'(A) for f'(Z): a learner's derivative helper called with the wrong argument, in every
    # activation it serves; so every set of the network's smooth activations is a hypothesis.
    smooth = [n for n in by_name if ACTIVATIONS[n].elementwise and n not in PIECEWISE_LINEAR]
    for size in range(1, len(smooth) + 1):
        for names in itertools.combinations(smooth, size):
            layers = tuple(sorted(l for n in names for l in by_name[n]))
            slips.append(_Slip(
                "derivative_at_activation", f"the derivative of {' and '.join(names)} is "
                f"evaluated at the activation A instead of the pre-activation Z "
                f"({_layer_list(layers)}): f'(a) where f'(z) belongs", layers,
                {l: _at_activation(arch.activation_spec(problem.activations[l]))
                 for l in layers}))
    # ... or in the hidden layers only, the output layer's delta being written out by hand
    output = arch.depth - 1
    for name in smooth:
        hidden = tuple(l for l in by_name[name] if l != output)
        if hidden and output in by_name[name]:
            slips.append(_Slip(
                "derivative_at_activation", f"the derivative of {name} is evaluated at the "
                f"activation A instead of the pre-activation Z in the hidden layers "
                f"({_layer_list(hidden)}): f'(a) where f'(z) belongs", hidden,
                {l: _at_activation(arch.activation_spec(name)) for l in hidden}))
    for name, layers in by_name.items():
        where = _layer_list(layers)
        if name == "softmax":
            slips.append(_Slip("softmax_elementwise", f"softmax's Jacobian is treated "
                               f"element-wise at {where}: Delta = g * a (1 - a) keeps only the "
                               "diagonal; the full vjp is a (g - <g, a>) per sample", layers,
                               softmax_diagonal=True))
            continue
        if name == "identity":
            continue
        for written, formula in _formula_slips(arch.activation_spec(name)):
            slips.append(_Slip("wrong_activation_derivative", f"the derivative of {name} is "
                               f"wrong at {where}: it computes {written}", layers,
                               dict.fromkeys(layers, formula)))
    # no activation derivative at all, in every hidden layer whatever its activation (or in
    # every layer): Delta_l = dL/dA_l, where the network mixes activations
    def one(z: Array, a: Array) -> Array:
        return np.ones_like(z)
    hidden = tuple(l for l in range(arch.depth - 1) if ACTIVATIONS[problem.activations[l]]
                   .elementwise and problem.activations[l] != "identity")
    everywhere = tuple(l for l in range(arch.depth) if ACTIVATIONS[problem.activations[l]]
                       .elementwise and problem.activations[l] != "identity")
    if hidden:
        slips.append(_Slip("wrong_activation_derivative", "the hidden layers' activation "
                           f"derivatives are missing ({_layer_list(hidden)}): Delta_l = dL/dA_l "
                           "where dL/dA_l * f'(Z_l) belongs", hidden, dict.fromkeys(hidden, one)))
    if len({problem.activations[l] for l in everywhere}) > 1 and everywhere != hidden:
        slips.append(_Slip("wrong_activation_derivative", "every layer's activation derivative "
                           f"is missing ({_layer_list(everywhere)}): Delta_l = dL/dA_l where "
                           "dL/dA_l * f'(Z_l) belongs", everywhere,
                           dict.fromkeys(everywhere, one)))
    # the derivative of the neighbouring layer's activation: an index off by one
    activations = problem.activations
    for step, side in ((1, "above"), (-1, "below")):
        moved = {l: arch.activation_spec(activations[l + step]) for l in range(arch.depth)
                 if 0 <= l + step < arch.depth and activations[l + step] != activations[l]
                 and ACTIVATIONS[activations[l + step]].elementwise
                 and ACTIVATIONS[activations[l]].elementwise}
        if moved:
            slips.append(_Slip(
                "shifted_layer", f"each layer uses the derivative of the activation of the "
                f"layer {side} it ({_layer_list(tuple(moved))}): an index off by one in the "
                "backward loop", tuple(moved),
                {l: _derivative_of(f) for l, f in moved.items()}))
    # another entry of the table's derivative in its place (tanh's helper called for sigmoid)
    for name, layers in by_name.items():
        if name in ("identity", "softmax"):
            continue
        for other in ACTIVATIONS:
            sibling = arch.activation_spec(other)
            if other in (name, "softmax") or not sibling.elementwise:
                continue
            slips.append(_Slip(
                "wrong_activation_derivative", f"the derivative of {name} at "
                f"{_layer_list(layers)} is {other}'s: it computes {other}'(z) where {name}'(z) "
                "belongs (the wrong helper called)", layers,
                dict.fromkeys(layers, _derivative_of(sibling))))
    square = tuple(l for l in range(1, arch.depth) if arch.widths[l] == arch.widths[l + 1])
    if square:
        slips.append(_Slip("propagation", f"the gradient is passed down from "
                           f"{_layer_list(square)} without W: g_(l-1) = Delta_l where "
                           "Delta_l W_l belongs (the product with the layer's weights is "
                           "missing)", square, skip_weights=True))
    own = tuple(l for l in range(arch.depth) if arch.widths[l] == arch.widths[l + 1])
    if own:
        slips.append(_Slip("shifted_layer", "dW_l pairs Delta_l with the activation of its own "
                           "layer, A_l, instead of the layer below, A_(l-1): shifted by one layer",
                           dw_same_layer=True))
    for l in own if arch.depth > 1 else ():  # one layer's input taken from its own output
        slips.append(_Slip("shifted_layer", f"dW{l + 1} pairs Delta_{l + 1} with its own "
                           f"layer's output A_{l + 1} instead of its input A_{l} (a cache "
                           "overwritten, or an index off by one there): shifted by one layer",
                           (l,), dw_same_layer=True))
    loss = arch.loss
    for written, derivative in LOSS_SLIPS.get(loss, []):
        slips.append(_Slip("wrong_loss_derivative", f"the derivative of {loss} is wrong: it "
                           f"computes {written}", loss_derivative=derivative))
    return slips


# f'(A) = f'(Z) for these, so evaluating at A is no slip at all
PIECEWISE_LINEAR = {"identity", "relu", "leaky_relu", "hardtanh"}


LOSS_SLIPS: dict[str, list[tuple[str, Callable[[Array, Array], Array]]]] = {
    "binary_cross_entropy_with_logits": [
        ("yhat - y, treating the logits as probabilities (sigmoid(yhat) - y belongs)",
         lambda yhat, y: yhat - y)],
    "softmax_cross_entropy": [
        ("softmax(yhat) without subtracting the one-hot target",
         lambda yhat, y: LOSSES["softmax_cross_entropy"].derivative(yhat, y)
         + np.eye(yhat.shape[1])[y])],
    "huber": [("yhat - y without clipping to [-1, 1] (the squared part only)",
               lambda yhat, y: yhat - y)],
    "mse": [("2 (y - yhat) ... with the target and output swapped in the square's derivative",
             lambda yhat, y: 2 * (y - yhat))],
    "categorical_cross_entropy": [
        ("p - y, the derivative with respect to the logits, and then takes the softmax's "
         "Jacobian again (p - y is dL/dz of softmax and cross-entropy together: use it in place "
         "of the softmax's backward, not as dL/dp)",
         lambda p, y: p - np.eye(p.shape[1])[y])],
    "binary_cross_entropy": [
        ("p - y, the derivative with respect to the logit, and then multiplies by the "
         "sigmoid's derivative again (p - y is dL/dz of sigmoid and cross-entropy together)",
         lambda p, y: p - y)],
    "l1": [("yhat - y, the squared error's derivative, where sign(yhat - y) belongs",
            lambda yhat, y: yhat - y)],
    "multiclass_hinge": [
        ("the target class's own margin as one more active margin (ŷ_y - ŷ_y + 1 = 1 > 0 "
         "always counts: leave j = y out of the count)",
         lambda yhat, y: LOSSES["multiclass_hinge"].derivative(yhat, y)
         - np.eye(yhat.shape[1])[y])],
}


def _derivative_of(f: Activation) -> Callable[[Array, Array], Array]:
    """f' evaluated at Z (with f's own A: the helper recomputes what it needs)."""
    return lambda z, a: f.derivative(z, f.forward(z))


def _layer_list(layers: tuple[int, ...]) -> str:
    numbers = [str(l + 1) for l in layers]
    return f"layer {numbers[0]}" if len(numbers) == 1 else f"layers {', '.join(numbers)}"


def _simulate(problem: Problem, slip: _Slip) -> dict[str, Array] | None:
    """The float64 gradients a candidate with exactly this slip would return."""
    p = problem.float64()
    arch = p.architecture
    activations: list[Activation] = list(arch.activation_specs)
    with np.errstate(all="ignore"):
        fwd = forward(p, activations)
        y_hat = fwd.a[-1]
        loss_derivative = slip.loss_derivative or arch.loss_spec.derivative
        g = loss_derivative(y_hat, p.Y) / fwd.divisor
        out: dict[str, Array] = {}
        for l in reversed(range(arch.depth)):
            z, a, f = fwd.z[l], fwd.a[l + 1], activations[l]
            if slip.output_delta is not None and l == arch.depth - 1:
                delta = slip.output_delta(a, p.Y) / fwd.divisor
            elif l in slip.derivatives:
                delta = g * slip.derivatives[l](z, a)
            elif l in slip.layers and slip.softmax_diagonal:
                delta = g * a * (1 - a)
            else:
                delta = f.backward(z, a, g)
            own = slip.dw_same_layer and (not slip.layers or l in slip.layers)
            a_in = fwd.a[l + 1] if own else fwd.a[l]
            if a_in.shape[1] != p.weights[l].shape[1]:
                return None
            out[f"dW{l + 1}"] = delta.T @ a_in
            if p.biases[l] is not None:
                out[f"db{l + 1}"] = delta.sum(axis=0)
            if slip.skip_weights and l > 0 and p.weights[l].shape[0] == p.weights[l].shape[1]:
                g = delta  # where the widths let it be written at all
            else:
                g = delta @ p.weights[l]
        out["dX"] = g
    _, dW, db = penalty(p)  # the penalty's gradient, which no slip here touches
    for l, (gw, gb) in enumerate(zip(dW, db, strict=True), start=1):
        out[f"dW{l}"] = out[f"dW{l}"] + gw
        if gb is not None:
            out[f"db{l}"] = out[f"db{l}"] + gb
    return out


def _penalty_slip(ctx: _Context) -> Found:
    """The L2 penalty's gradient missing, halved, doubled, or put on the biases wrongly."""
    arch = ctx.problem.architecture
    if not arch.l2:
        return None
    p = ctx.problem.float64()
    c = arch.penalty_coefficient()
    grads = {f"dW{l}": 2 * c * W for l, W in enumerate(p.weights, start=1)}
    bias_grads = {f"db{l}": 2 * c * b for l, b in enumerate(p.biases, start=1) if b is not None}
    on_b = arch.l2_biases
    penalised = {**grads, **(bias_grads if on_b else {})}  # what the penalty's gradient is

    def scaled(k: float) -> dict[str, Array]:
        return {n: k * g for n, g in penalised.items()}

    hypotheses = [
        ("is missing: the gradient has the data loss's part only", scaled(-1.0)),
        ("is half what l2·ΣW² gives (the gradient of l2/2·ΣW², l2·W, where 2·l2·W belongs)"
         if not arch.l2_half else "", scaled(-0.5)),
        ("is twice what l2/2·ΣW² gives (2·l2·W, the gradient of l2·ΣW², where l2·W belongs)"
         if arch.l2_half else "", scaled(1.0)),
        ("is applied to the biases too, though the penalty covers the weights only"
         if not on_b else "is left off the biases, though the penalty covers them too",
         {n: (g if not on_b else -g) for n, g in bias_grads.items()}),
    ]
    for sentence, change in hypotheses:
        if not sentence or not change:
            continue
        moved = {n: ctx.ref[n] + change.get(n, 0.0) for n in ctx.cand}
        if all(ctx.matches(n, moved[n]) for n in ctx.cand) and any(
                n in change for n in ctx.failing):
            return ("penalty", f"the L2 penalty's gradient {sentence} (penalty "
                    f"{arch.describe_penalty().strip(' +')})",
                    [f"the reference with that change reproduces {', '.join(ctx.cand)} to "
                     "within rounding"], {})
    return None


def _slips(ctx: _Context) -> Found:
    """The slip whose replay reproduces every tensor the candidate returned; where several
    different slips do, each is said (the case cannot tell them apart)."""
    fitting: list[_Slip] = []
    for slip in _slip_catalogue(ctx.problem):
        simulated = _simulate(ctx.problem, slip)
        if simulated is None:
            continue
        if all(ctx.matches(name, simulated[name]) for name in ctx.cand) or (
                slip.derivatives and _matches_with_slip_rounding(ctx, slip, simulated)):
            # The slip must explain the failure, not merely coincide with the right answer.
            if all(np.array_equal(simulated[n], ctx.ref[n]) for n in ctx.failing):
                continue
            if all(slip.summary != other.summary for other in fitting):
                fitting.append(slip)
    if not fitting:
        return None
    evidence = [f"replaying the slip in float64 reproduces every tensor the candidate "
                f"returned ({', '.join(ctx.cand)}) to within rounding"]
    summary = "; or, fitting this case as well: ".join(slip.summary for slip in fitting)
    return fitting[0].pattern, summary, evidence, {
        "also": tuple(dict.fromkeys(s.pattern for s in fitting[1:] if s.pattern !=
                                    fitting[0].pattern))}


def _matches_with_slip_rounding(ctx: _Context, slip: _Slip, simulated: dict[str, Array]) -> bool:
    """Does the candidate match the replayed slip within the slip's own rounding? A slip moves
    the error bounds with the values (a saturated layer's right gradient is exactly 0, with
    no rounding at all; the slip's is not)."""
    dtype = ctx.problem.dtype_name
    own = Tolerance().allowed(scales_replacing_derivatives(ctx.problem, dtype, slip.derivatives),
                              dtype)
    wide = ctx.allowed.at_least(own)
    return all(_close(ctx.cand[n], simulated[n], wide.tensors[n], dtype) for n in ctx.cand)


def _unknown_summary(ctx: _Context) -> str:
    where = ("the input gradient dX alone" if ctx.layer == 0 else
             f"layer {ctx.layer}" if ctx.layer else "no gradient tensor")
    if ctx.layer and ctx.layer < ctx.depth:
        f = ctx.problem.activations[ctx.layer - 1]
        return (f"no known pattern: gradients agree above layer {ctx.layer} and diverge from "
                f"there down, so look at Delta_{ctx.layer}: the derivative of {f} at layer "
                f"{ctx.layer}, or the propagation from layer {ctx.layer + 1}")
    return f"no known pattern; the first divergence from the output is at {where}"


# -- shapes and NaN ------------------------------------------------------------------------------

def _shape_diagnosis(problem: Problem, kind: str, number: str, got_text: str,
                     expected_text: str) -> Diagnosis | None:
    got = tuple(int(x) for x in got_text.replace(" ", "").split(",") if x)
    expected = tuple(int(x) for x in expected_text.replace(" ", "").split(",") if x)
    name = f"{kind}{number}"
    layer = int(number) if number else 0
    widths, n = problem.architecture.widths, problem.batch_size
    evidence = [f"{name} has shape {got}, expected {expected}"]
    # another layer's shape too (layers in reverse order, shifted): the shape cannot tell
    elsewhere = [other for other in range(1, len(widths)) if other != layer
                 and got == (widths[other], widths[other - 1])] if kind == "dW" else []
    if kind == "dW" and got == expected[::-1] and got != expected and elsewhere:
        return Diagnosis("unknown", f"{name} has the shape of dW{layer} transposed and of "
                         f"dW{elsewhere[0]}: either it is transposed, or the gradients are in "
                         "another layer's place (the layers in reverse order, or shifted)",
                         tuple(evidence), layer, (name,))
    if kind == "dW" and got == expected[::-1] and got != expected:
        return Diagnosis("transposed", f"{name} is transposed: dW_l = Delta_l^T A_(l-1) has "
                         "W_l's shape (n_l, n_(l-1)), outputs by inputs", tuple(evidence), layer,
                         (name,), step=f"the weight-gradient product of layer {layer}")
    if kind == "db" and got == (n, widths[layer]):
        return Diagnosis("bias_reduction", f"{name} is not reduced over the batch: it has one "
                         "row per sample; sum Delta_l over the samples (the reduction's divisor "
                         "is already in Delta)", tuple(evidence), layer, (name,),
                         step=f"the bias reduction of layer {layer}")
    if kind == "dW" and got == (widths[layer], widths[layer]):
        return Diagnosis("shifted_layer", f"{name} pairs Delta_{layer} with A_{layer}, the "
                         f"activation of its own layer, instead of A_{layer - 1}: shifted by one "
                         "layer", tuple(evidence), layer, (name,),
                         step=f"the weight-gradient product of layer {layer}")
    if kind == "dW":
        for other in (layer - 1, layer + 1):
            if 1 <= other < len(widths) and got == (widths[other], widths[other - 1]):
                return Diagnosis("shifted_layer", f"{name} has the shape of dW{other}: the "
                                 "gradients are shifted by one layer", tuple(evidence), layer,
                                 (name,))
    return Diagnosis("unknown", f"{name} has the wrong shape, in no pattern we know",
                     tuple(evidence), layer, (name,))


# Activations and losses people write with an exp that overflows where the argument is large
# (1 / (1 + e^-z), log(1 + e^z), (e^z - e^-z) / (e^z + e^-z), e^z / sum e^z).
EXP_ACTIVATIONS = frozenset({"sigmoid", "softplus", "elu", "selu", "silu", "softmax", "tanh",
                             "gelu_tanh"})
EXP_LOSSES = frozenset({"softmax_cross_entropy", "binary_cross_entropy_with_logits"})


def _overflow(problem: Problem, name: str, reason: str,
              nonfinite: tuple[str, ...] = ()) -> Diagnosis:
    """NaN or inf where the oracles are finite, placed where an exp first overflows: the first
    layer, in forward order, whose activation is written with an exp and whose |Z| passes
    exp's limit in the candidate's dtype; the loss only when the loss value itself is not
    finite. Where only weight gradients overflow (their layer's delta is finite: its db, the
    tensors below, the loss), the overflow is in the product forming them, and where that
    product's terms pass float16's largest number it was computed in float16. Where no value
    is that large, no cause is named, only where to look."""
    dtype = problem.dtype_name
    arch = problem.architecture
    nonfinite = nonfinite or (name,)
    limit = math.log(float(np.finfo(dtype).max))
    with np.errstate(all="ignore"):
        fwd = forward(problem.float64())
    logits = float(np.max(np.abs(fwd.a[-1])))
    sizes = [(l + 1, f.name, float(np.max(np.abs(z))))
             for l, (f, z) in enumerate(zip(arch.activation_specs, fwd.z, strict=True))]
    # a finite dX = Delta_1 W_1 shows every Delta finite (an inf in one reaches all below it)
    dx_finite = reason.endswith(FINITE_DX)
    if all(n.startswith("dW") and (dx_finite or _delta_finite(problem, int(n[2:]), nonfinite,
                                                              sizes, limit))
           for n in nonfinite):
        return _overflow_in_the_product(problem, nonfinite, reason, fwd)
    first = next(((at, f, big) for at, f, big in sizes
                  if f in EXP_ACTIVATIONS and big > limit), None)
    layer = int(name[2:]) if name[:2] in ("dW", "db") else (0 if name == "dX" else None)
    biggest = max(sizes, key=lambda s: s[2])
    evidence = [reason, f"largest |logit| {logits:.4g}; exp overflows in {dtype} above "
                f"{limit:.4g}", f"largest |Z| {biggest[2]:.4g}, at layer {biggest[0]} "
                f"({biggest[1]})"]
    if name == "loss" and arch.loss in EXP_LOSSES and logits > limit:
        summary = (f"the loss overflows at large logits: |yhat| reaches {logits:.4g}, and exp of "
                   f"anything above {limit:.4g} is inf in {dtype}, where the oracles stay "
                   f"finite; compute {arch.loss} stably (log-sum-exp, subtract the row max, "
                   "exp(-|z|))")
    elif first is not None:
        at, f, big = first
        layer = at
        summary = (f"overflow at layer {at} ({f}): |Z| reaches {big:.4g}, past where exp "
                   f"overflows in {dtype} ({limit:.4g}); compute {f} and its derivative in a "
                   "form that stays finite there")
    elif logits > limit and (arch.loss in EXP_LOSSES or sizes[-1][1] in EXP_ACTIVATIONS):
        summary = (f"NaN or inf in {name} where the oracles are finite, while the loss value is "
                   f"finite; |yhat| reaches {logits:.4g}, past where exp overflows in {dtype} "
                   f"({limit:.4g}): if the loss's derivative is computed with a plain exp "
                   "(softmax(yhat) - y, sigmoid(yhat) - y), it overflows there; else look for "
                   "0/0, inf - inf, log(0), or arithmetic in a narrower type than the problem's")
    else:
        finite = "" if name == "loss" else ", while the loss value is finite"
        summary = (f"NaN or inf in {name} where the oracles are finite{finite}, and no value "
                   f"here is large enough to overflow exp in {dtype}: look for 0/0, inf - inf, "
                   "log(0), or arithmetic in a narrower type than the problem's")
    return Diagnosis("overflow", summary, tuple(evidence), layer, (name,))


def _delta_finite(problem: Problem, l: int, nonfinite: tuple[str, ...],
                  sizes: list[tuple[int, str, float]], limit: float) -> bool:
    """Whether Delta_l is finite, as far as the finite tensors show: its db_l is, or the layer
    below's dW is (its input is Delta_l W_l), or Delta_(l+1) is and layer l's activation has no
    exp that could overflow at its |Z|."""
    if problem.biases[l - 1] is not None or (l > 1 and f"dW{l - 1}" not in nonfinite):
        return True
    _, f, big = sizes[l - 1]
    return l < len(sizes) and not (f in EXP_ACTIVATIONS and big > limit) and _delta_finite(
        problem, l + 1, nonfinite, sizes, limit)


def _overflow_in_the_product(problem: Problem, nonfinite: tuple[str, ...], reason: str,
                             fwd: Any) -> Diagnosis:
    """Only dW tensors are NaN or inf, while each one's Delta is finite (its db, or the layer
    below, is), as is the loss: no activation or its derivative overflowed, which would reach
    them too."""
    sizes = _product_sizes(problem.float64(), fwd)
    biggest = {n: sizes[int(n[2:]) - 1] for n in nonfinite}
    layer = max(int(n[2:]) for n in nonfinite)
    names = ", ".join(nonfinite)
    evidence = [reason, *(f"{n}: the terms of Delta^T A add up to {v:.4g} in absolute value"
                          for n, v in biggest.items())]
    largest = float(np.finfo(np.float16).max)
    if all(v > largest for v in biggest.values()):
        one = len(nonfinite) == 1
        return Diagnosis("reduced_precision", f"{names} overflow{'s' if one else ''} where "
                         f"nothing else does: the terms of {'its' if one else 'their'} product "
                         f"Delta^T A reach {max(biggest.values()):.4g}, "
                         f"past float16's largest number ({largest:g}), where {problem.dtype_name}"
                         f" is far from its limit: the product is computed in float16 (a cast "
                         f"before it, or arrays kept in float16); compute it in "
                         f"{problem.dtype_name}", tuple(evidence), layer, nonfinite)
    return Diagnosis("overflow", f"NaN or inf in {names} alone, where the oracles are finite, "
                     "while the loss value is finite and so is each one's Delta (its db, or the "
                     "layer below): no activation overflowed; the overflow is in forming "
                     f"{names} from Delta and A (the product, or what is done to it after): look "
                     "for arithmetic in a narrower type than the problem's, or a division by "
                     "something near 0 there", tuple(evidence), layer, nonfinite)


def _product_sizes(p: Problem, fwd: Any) -> list[float]:
    """Per layer, the largest sum of absolute terms in dW_l = Delta_l^T A_(l-1) (float64),
    from the float64 forward pass `fwd`."""
    with np.errstate(all="ignore"):
        g = p.architecture.loss_spec.derivative(fwd.a[-1], p.Y) / fwd.divisor
        sizes = [0.0] * p.architecture.depth
        for l in reversed(range(p.architecture.depth)):
            f = p.architecture.activation_specs[l]
            delta = f.backward(fwd.z[l], fwd.a[l + 1], g)
            sizes[l] = float(np.max(np.abs(delta).T @ np.abs(fwd.a[l])))
            g = delta @ p.weights[l]
    return sizes


# -- steps, from the candidate's intermediates ---------------------------------------------------

def _step(ctx: _Context, reference: dict[str, list[Array]]) -> str:
    """The first step, in the order the computation runs, whose output is wrong for its inputs."""
    p = ctx.problem.float64()
    mine = {k: [a.astype(np.float64) for a in v] for k, v in ctx.answer.intermediates.items()}
    allowed = ctx.allowed.intermediates
    dtype = ctx.problem.dtype_name

    def wrong(key: str, l: int, value: Array | None = None) -> bool:
        return not _close(mine[key][l], reference[key][l] if value is None else value,
                          allowed[key][l], dtype)

    specs = p.architecture.activation_specs
    for l in range(ctx.depth):
        if wrong("Z", l):
            return f"forward pass: Z_{l + 1} = A_{l} W_{l + 1}^T + b_{l + 1} (layer {l + 1})"
        if wrong("A", l):
            return f"forward pass: the activation {p.activations[l]} of layer {l + 1}"
    if ctx.loss_failed:
        return "the loss value"
    top = ctx.depth - 1
    if wrong("delta", top):
        loss = p.architecture.loss_spec
        divisor = p.architecture.reduction_spec.divisor(
            p.batch_size, loss.terms_per_sample(mine["A"][top].shape[1]))
        g = loss.derivative(mine["A"][top], p.Y) / divisor
        slip = _derivative_slip(specs[top], p.activations[top], mine["Z"][top], mine["A"][top],
                                g, mine["delta"][top], allowed["delta"][top], dtype)
        if slip:
            return f"the activation derivative of layer {ctx.depth} ({p.activations[top]}): " \
                   f"it computes {slip}"
        return "the loss derivative (Delta at the output is wrong for the candidate's own A)"
    for l in reversed(range(ctx.depth)):
        name = f"dW{l + 1}"
        a_prev = p.X if l == 0 else mine["A"][l - 1]
        if name in ctx.failing and not ctx.matches(name, mine["delta"][l].T @ a_prev):
            return f"the weight-gradient product of layer {l + 1} (dW = Delta^T A_{l})"
        if f"db{l + 1}" in ctx.failing and not ctx.matches(
                f"db{l + 1}", mine["delta"][l].sum(axis=0)):
            return f"the bias reduction of layer {l + 1} (db = Delta summed over samples)"
        if l == 0:
            break
        z, a, delta = mine["Z"][l - 1], mine["A"][l - 1], mine["delta"][l - 1]
        propagated = mine["delta"][l] @ p.weights[l]
        f, f_name = specs[l - 1], p.activations[l - 1]
        if _close(delta, f.backward(z, a, propagated), allowed["delta"][l - 1], dtype):
            continue
        slip = _derivative_slip(f, f_name, z, a, propagated, delta, allowed["delta"][l - 1], dtype)
        if slip:
            return f"the activation derivative of layer {l} ({f_name}): it computes {slip}"
        return (f"from Delta_{l + 1} to Delta_{l}: the derivative of {f_name} at layer {l} or "
                f"the propagation through W_{l + 1} (Delta_{l} != {f_name}'(Z_{l}) * "
                f"Delta_{l + 1} W_{l + 1})")
    if "dX" in ctx.failing:
        return "the propagation to the input (dX = Delta_1 W_1)"
    return ""


def _derivative_slip(f: Activation, name: str, z: Array, a: Array, g: Array, delta: Array,
                     allowed: Array, dtype: str) -> str:
    """Which common slip in f' makes delta = h(Z, A) * g, if one does."""
    if not f.elementwise:
        return ""
    for written, h in [(f"{name}'(A) for {name}'(Z)", _at_activation(f)),
                       *_formula_slips(f)]:
        with np.errstate(all="ignore"):
            slipped = h(z, a) * g
        if _close(delta, slipped, allowed, dtype):
            return written
    return ""
