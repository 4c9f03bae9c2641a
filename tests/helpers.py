"""The one comparison helper every test uses: run a candidate on a problem, demand a verdict."""

from __future__ import annotations

from typing import Any

from mybackprop._candidate import Candidate, Supports
from mybackprop._problem import Problem
from mybackprop._runner import Checker, Outcome


def as_candidate(function: Any, name: str | None = None, **supports: Any) -> Candidate:
    return Candidate(name or getattr(function, "__name__", "candidate"), function,
                     Supports.coerce(supports or getattr(function, "supports", None)))


def check(function: Any, problem: Problem, oracles: list[Any], **supports: Any) -> Outcome:
    return Checker(oracles).check(as_candidate(function, **supports), problem)


def assert_verdict(outcome: Outcome, verdict: str) -> None:
    assert outcome.verdict == verdict, f"expected {verdict}, got {outcome.message()}"


def oracle_as_candidate(oracle: Any) -> Candidate:
    """An oracle in the candidate's seat: its float64 answer as a contract dict."""
    def answer(problem: Problem) -> dict[str, Any]:
        g = oracle.gradients(problem)
        return {"loss": g.loss, "dW": g.dW, "db": g.db, "dX": g.dX}
    return as_candidate(answer, name=f"oracle:{oracle.name}", dtypes={"float64"})
