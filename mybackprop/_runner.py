"""Run one case: the oracles and the candidate on the same problem, ending in exactly one verdict.

Verdicts (DESIGN.md): pass, fail, oracle_disagreement, error, skipped.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop._candidate import Candidate, CandidateError, to_gradients
from mybackprop._compare import TensorComparison, compare
from mybackprop._problem import Gradients, Problem
from mybackprop._tolerance import Tolerance, gradient_scales

VERDICTS: tuple[str, ...] = ("pass", "fail", "oracle_disagreement", "error", "skipped")


@dataclass
class Outcome:
    """The verdict of one case and the evidence for it."""

    verdict: str
    candidate: str
    problem: Problem = field(repr=False)
    reason: str = ""  # one line: why error, skipped, fail or oracle_disagreement
    comparisons: list[TensorComparison] = field(default_factory=list)  # candidate vs reference
    oracle_comparisons: dict[str, list[TensorComparison]] = field(default_factory=dict)
    oracles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> version, settings
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failing(self) -> list[TensorComparison]:
        return [c for c in self.comparisons if not c.passed]

    def context(self) -> str:
        """'[mybackprop:matrix vs torch+jax, 3-4(relu)-1(identity) mse/mean, N=5, float64]'."""
        return (f"[{self.candidate} vs {'+'.join(self.oracles) or 'no oracle'}, "
                f"{self.problem.architecture.describe()}, N={self.problem.batch_size}, "
                f"{self.problem.dtype.name}]")

    def message(self) -> str:
        """The verdict and context, then one line per failing tensor: place first, then numbers."""
        head = f"{self.verdict} {self.context()}"
        if self.verdict == "fail":
            return "\n".join([head, *(f"  {c.describe()}" for c in self.failing)])
        return f"{head}: {self.reason}"

    def to_record(self) -> dict[str, Any]:
        arch = self.problem.architecture
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "candidate": self.candidate,
            "config": self.problem.meta.get("config"),
            "architecture": arch.describe(),
            "activations": sorted(set(self.problem.activations)),
            "loss": arch.loss,
            "reduction": arch.reduction,
            "dtype": self.problem.dtype.name,
            "depth": arch.depth,
            "max_width": max(arch.widths),
            "batch_size": self.problem.batch_size,
            "max_err_over_tol": max((c.err_over_tol for c in self.comparisons), default=None),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "oracle_comparisons": {pair: [c.to_dict() for c in cs if not c.passed]
                                   for pair, cs in self.oracle_comparisons.items()},
            "oracles": self.oracles,
            "seconds": self.seconds,
        }


@dataclass
class Checker:
    """Feeds problems to a candidate and to every oracle, and judges the candidate."""

    oracles: list[Any]  # objects with .name, .gradients(problem) and .describe()
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        self._descriptions = {o.name: o.describe() for o in self.oracles}

    def check(self, candidate: Candidate, problem: Problem) -> Outcome:
        outcome = Outcome("pass", candidate.name, problem, oracles=self._descriptions)
        skip = candidate.supports.reason_to_skip(problem)
        if skip:
            outcome.verdict, outcome.reason = "skipped", skip
            return outcome

        references: dict[str, Gradients] = {}
        for oracle in self.oracles:
            started = time.perf_counter()
            try:
                references[oracle.name] = oracle.gradients(problem)
            except Exception as exc:  # an oracle crash is ours to fix: record it, carry on
                outcome.verdict = "error"
                outcome.reason = f"oracle {oracle.name} raised {type(exc).__name__}: {exc}"
                return outcome
            outcome.seconds[oracle.name] = time.perf_counter() - started

        started = time.perf_counter()
        answer, problem_error = _run_candidate(candidate, problem)
        outcome.seconds["candidate"] = time.perf_counter() - started
        if problem_error:
            outcome.verdict, outcome.reason = "error", problem_error
            return outcome
        assert answer is not None
        if not references:
            outcome.verdict, outcome.reason = "error", "no oracle available to judge against"
            return outcome

        scales = gradient_scales(problem)
        names = list(references)
        reference = references[names[0]]
        if not candidate.supports.returns_dX:
            reference = Gradients(reference.loss, reference.dW, reference.db, None)
        nonfinite = _nonfinite_where_reference_finite(answer, reference)
        if nonfinite:
            outcome.verdict, outcome.reason = "error", f"{nonfinite} is NaN or inf where the " \
                                                       "oracles are finite"
            return outcome

        oracle_scales = scales if problem.dtype.name == "float64" else gradient_scales(
            problem, "float64")
        oracle_allowed = self.tolerance.allowed(oracle_scales, "float64")
        for other in names[1:]:
            pair = f"{names[0]}~{other}"
            outcome.oracle_comparisons[pair] = compare(references[other], references[names[0]],
                                                       oracle_allowed)
        outcome.comparisons = compare(answer, reference,
                                      self.tolerance.allowed(scales, problem.dtype.name))
        disagreeing = {pair: [c for c in cs if not c.passed]
                       for pair, cs in outcome.oracle_comparisons.items()}
        disagreeing = {pair: cs for pair, cs in disagreeing.items() if cs}
        if disagreeing:
            outcome.verdict = "oracle_disagreement"
            outcome.reason = "; ".join(f"{pair}: {cs[0].describe()}"
                                       for pair, cs in disagreeing.items())
        elif outcome.failing:
            outcome.verdict = "fail"
            outcome.reason = f"{len(outcome.failing)} of {len(outcome.comparisons)} tensors " \
                             f"out of tolerance: {', '.join(c.name for c in outcome.failing)}"
        return outcome


def _run_candidate(candidate: Candidate, problem: Problem) -> tuple[Gradients | None, str]:
    """Call the candidate on a copy; return its checked answer, or the reason it is an error."""
    given = problem.copy()
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            raw = candidate.function(given)
    except SystemExit as exc:
        return None, f"called sys.exit({exc.code})"
    except Exception as exc:
        return None, f"raised {type(exc).__name__}: {exc}".splitlines()[0]
    for name, before, after in zip(_array_names(problem), problem.arrays(), given.arrays(),
                                   strict=True):
        if not np.array_equal(before, after, equal_nan=True):
            return None, f"changed its input {name} in place"
    try:
        return to_gradients(raw, problem, candidate.supports), ""
    except CandidateError as exc:
        return None, str(exc)


def _array_names(problem: Problem) -> list[str]:
    depth = problem.architecture.depth
    return ["X", "Y", *(f"W{l}" for l in range(1, depth + 1)),
            *(f"b{l}" for l, b in enumerate(problem.biases, start=1) if b is not None)]


def _nonfinite_where_reference_finite(answer: Gradients, reference: Gradients) -> str:
    if not np.isfinite(answer.loss) and np.isfinite(reference.loss):
        return "loss"
    ref = reference.tensors()
    for name, value in answer.tensors().items():
        bad = ~np.isfinite(value) & np.isfinite(ref[name])
        if np.any(bad):
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            return f"{name}[{', '.join(map(str, index))}]"
    return ""
