"""Run one case: the oracles and the candidate on the same problem, ending in exactly one verdict.

Verdicts (DESIGN.md): pass, fail, oracle_disagreement, error, skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mybackprop.diagnosis.diagnose import FINITE_DX, Diagnosis, diagnose_error, diagnose_fail
from mybackprop.harness import formulation
from mybackprop.harness.contract import (
    Candidate,
    CandidateError,
    Refusal,
    Unsupported,
    to_gradients,
)
from mybackprop.harness.conventions import AnswerError, Conventions
from mybackprop.judging.compare import TensorComparison, compare, flat, tensor_names, within
from mybackprop.judging.kinks import convention_note, followed_convention, kink_derivatives
from mybackprop.judging.tolerance import (
    Scales,
    Tolerance,
    scales_for,
    scales_replacing_derivatives,
)
from mybackprop.levels.matrix import matrix
from mybackprop.spec.problem import Gradients, Problem

VERDICTS: tuple[str, ...] = ("pass", "fail", "oracle_disagreement", "error", "skipped")
FAILING: tuple[str, ...] = ("fail", "error")  # the verdicts that make a run exit 1
DEFAULT_TIME_LIMIT = 10.0  # the element level takes ~1 s on its largest declared case


class CandidateTimeout(BaseException):
    """Raised inside a candidate that runs past the time limit. A BaseException, so that a
    candidate's own `except Exception:` cannot swallow it; it is raised again every tenth of a
    second until the call returns, so neither can one `except BaseException:`."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` with CandidateTimeout (SIGALRM; main thread only:
    elsewhere the block runs unlimited, and --isolate is the hard limit)."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise CandidateTimeout

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """The verdict of one case and the evidence for it."""

    verdict: str
    candidate: str
    problem: Problem = field(repr=False)
    reason: str = ""  # one line: why error, skipped, fail or oracle_disagreement
    comparisons: list[TensorComparison] = field(default_factory=list)  # candidate vs reference
    # oracle pair -> the tensors it disagrees on (none kept when the pair agrees)
    oracle_comparisons: dict[str, list[TensorComparison]] = field(default_factory=dict)
    oracles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> version, settings
    seconds: dict[str, float] = field(default_factory=dict)
    reference: str = ""  # the oracle the candidate was judged against
    diagnosis: Diagnosis | None = None  # for fail, and for errors that are numbers (shape, NaN)
    reference_answer: Gradients | None = field(default=None, repr=False)  # for repro scripts
    allowed: Scales | None = field(default=None, repr=False)  # the tolerance it was judged by
    # The candidate's conventions: messages and records show tensors in its shapes
    conventions: Conventions = field(default_factory=Conventions, repr=False)
    # Set when its float32 answer is its float64 result rounded (a note, not a verdict)
    upcast: str = ""

    def ends(self, verdict: str, reason: str = "") -> Outcome:
        self.verdict, self.reason = verdict, reason
        if verdict == "error" and reason:
            self.diagnosis = _safely(lambda: diagnose_error(self.problem, reason))
        return self

    @property
    def failing(self) -> list[TensorComparison]:
        return [c for c in self.comparisons if not c.passed]

    def context(self) -> str:
        """'[mybackprop:matrix vs torch+jax, 3-4(relu)-1(identity) mse/mean, N=5, float64]'."""
        return (f"[{self.candidate} vs {'+'.join(self.oracles) or 'no oracle'}, "
                f"{self.problem.architecture.describe()}, N={self.problem.batch_size}, "
                f"{self.problem.dtype_name}]")

    def message(self) -> str:
        """The verdict and context, then one line per failing tensor: place first, then numbers."""
        head = f"{self.verdict} {self.context()}"
        diagnosis = [f"  {line}" for line in self.diagnosis.lines()] if self.diagnosis else []
        if self.verdict == "fail":
            return "\n".join([head, *(f"  {self._framed(c).describe()}" for c in self.failing),
                              *diagnosis])
        return "\n".join([f"{head}: {self.reason}", *diagnosis])

    def _framed(self, c: TensorComparison) -> TensorComparison:
        """A comparison with its shape and worst element as the candidate numbers them."""
        if self.conventions.canonical:
            return c
        return dataclasses.replace(c, shape=self.conventions.frame_shape(c.name, c.shape),
                                   worst_index=self.conventions.frame_index(c.name,
                                                                            c.worst_index))

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
            "dtype": self.problem.dtype_name,
            "depth": arch.depth,
            "max_width": max(arch.widths),
            "batch_size": self.problem.batch_size,
            "max_err_over_tol": max((c.err_over_tol for c in self.comparisons), default=None),
            "comparisons": [self._framed(c).to_dict() for c in self.comparisons],
            "oracle_comparisons": {pair: [c.to_dict() for c in cs if not c.passed]
                                   for pair, cs in self.oracle_comparisons.items()},
            "oracles": self.oracles,
            "reference": self.reference,
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
            **({"upcast": self.upcast} if self.upcast else {}),
        }


@dataclass
class References:
    """The oracles' answers to one problem (or why there are none), shared by all candidates."""

    answers: dict[str, Gradients]
    seconds: dict[str, float]
    error: str = ""


@dataclass
class Checker:
    """Feeds problems to a candidate and to every oracle, and judges the candidate.

    When the oracles disagree, `tie_breaker` (finite differences) picks the one it agrees with;
    where it cannot (at a kink), the verdict is oracle_disagreement with the convention named.
    """

    oracles: list[Any]  # objects with .name, .gradients(problem) and .describe()
    tolerance: Tolerance = field(default_factory=Tolerance)
    tie_breaker: Any = None  # an object with .estimate(problem), e.g. FiniteDifferenceOracle
    time_limit: float | None = DEFAULT_TIME_LIMIT  # seconds a candidate may take on one case

    def __post_init__(self) -> None:
        self._descriptions = {o.name: o.describe() for o in self.oracles}
        self._layer_verdicts: dict[int, list[Any]] = {}  # a layer kit's, checked once
        # how each candidate computes the activations people write two ways, per dtype,
        # measured once (harness/formulation.py); the candidate is kept, so its id stays its own
        self._formulations: dict[tuple[int, str], tuple[Candidate, dict[str, str]]] = {}

    def references(self, problem: Problem) -> References:
        """Every oracle's answer, with its time, or the reason one failed."""
        answers, seconds = {}, {}
        for oracle in self.oracles:
            one = self.references_for(oracle, problem)
            if one.error:
                return References({}, seconds, one.error)
            answers.update(one.answers)
            seconds.update(one.seconds)
        return References(answers, seconds,
                          "" if answers else "no oracle available to judge against")

    def references_many(self, problems: list[Problem]) -> list[References]:
        """Every oracle's answers to many problems, through its batched path where it has one
        (gradients_many): the sweeps' way. The time of a batch is shared out evenly. An oracle
        that raises on the batch answers one problem at a time, so the error lands on its case."""
        if not problems:
            return []
        found = [References({}, {}) for _ in problems]
        for oracle in self.oracles:
            batched = getattr(oracle, "gradients_many", None)
            started = time.perf_counter()
            try:
                answers = batched(problems) if batched else None
            except Exception:  # retried case by case below, which names the error
                answers = None
            if answers is None:
                for problem, refs in zip(problems, found, strict=True):
                    one = self.references_for(oracle, problem)
                    refs.answers.update(one.answers)
                    refs.seconds.update(one.seconds)
                    refs.error = refs.error or one.error
                continue
            share = (time.perf_counter() - started) / len(problems)
            for answer, refs in zip(answers, found, strict=True):
                refs.answers[oracle.name], refs.seconds[oracle.name] = answer, share
        for refs in found:
            if refs.error:
                refs.answers = {}
            elif not refs.answers:
                refs.error = "no oracle available to judge against"
        return found

    def references_for(self, oracle: Any, problem: Problem) -> References:
        """One oracle's answer to one problem, or why there is none."""
        started = time.perf_counter()
        try:
            answer = oracle.gradients(problem)
        except Exception as exc:  # an oracle crash is ours to fix: record it, carry on
            return References({}, {}, f"oracle {oracle.name} raised {type(exc).__name__}: {exc}")
        return References({oracle.name: answer}, {oracle.name: time.perf_counter() - started})

    def check(self, candidate: Candidate, problem: Problem,
              references: References | None = None) -> Outcome:
        """Run one case and return its verdict with the evidence."""
        outcome = Outcome("pass", candidate.name, problem, oracles=self._descriptions,
                          conventions=candidate.supports.conventions)
        skip = candidate.supports.reason_to_skip(problem)
        if skip:
            return outcome.ends("skipped", skip)
        references = references or self.references(problem)
        outcome.seconds.update(references.seconds)
        if references.error:
            return outcome.ends("error", references.error)
        outcome.reference_answer = next(iter(references.answers.values()))

        started = time.perf_counter()
        answer, problem_error = self._call(candidate, problem)
        outcome.seconds["candidate"] = time.perf_counter() - started
        if problem_error:
            refused = isinstance(problem_error, Refusal)
            return outcome.ends("skipped" if refused else "error", problem_error)
        assert answer is not None
        answers = references.answers
        if not candidate.supports.returns_dX:
            answers = {name: Gradients(g.loss, g.dW, g.db, None) for name, g in answers.items()}
        nonfinite = _nonfinite_where_reference_finite(answer, next(iter(answers.values())))
        if nonfinite:
            at, dx_finite = nonfinite
            return outcome.ends("error", f"{at} is NaN or inf where the oracles are finite"
                                + (FINITE_DX if dx_finite else ""))
        outcome = self._judge(outcome, answer, answers, self._looser(candidate, problem))
        if outcome.verdict == "fail" and outcome.diagnosis is not None:
            outcome.diagnosis = self._with_layers(candidate, outcome.diagnosis)
        return outcome

    def _with_layers(self, candidate: Candidate, diagnosis: Diagnosis) -> Diagnosis:
        """A network of a layer kit that fails: what its layers say alone (checked once per
        run, 50 cases each): a layer that fails alone is named; where every one passes, the
        mistake is in how they work together."""
        from mybackprop.harness.layer_check import check_each_layer, kit_of

        function = candidate.function
        while kit_of(function) is None and hasattr(function, "__wrapped__"):
            function = function.__wrapped__
        kit = kit_of(function)
        if kit is None:
            return diagnosis
        if id(kit) not in self._layer_verdicts:
            self._layer_verdicts[id(kit)] = check_each_layer(kit, 50, shrink=False)
        failing = [r for r in self._layer_verdicts[id(kit)] if r.verdict != "pass"]
        if failing:
            said = "; ".join(f"{r.layer} ({r.names}) fails alone"
                             + (f": {r.diagnosis}" if r.diagnosis else "") for r in failing)
            note = f"{said}: fix it first (mybackprop layers)"
        else:
            note = ("every layer of the kit passes alone (50 cases each), so the mistake is in how "
                    "they work together: state one layer shares with another (a class "
                    "attribute, a module-level cache) or a cache a later call overwrites; "
                    "mybackprop layers checks their state across calls")
        return dataclasses.replace(diagnosis, summary=f"{diagnosis.summary}; {note}")

    def _call(self, candidate: Candidate, problem: Problem) -> tuple[Gradients | None, str]:
        """The candidate's answer to one problem, or the reason there is none: in its isolated
        worker where it has one, else in this process."""
        if candidate.isolated is not None:
            return candidate.isolated.run(problem, self.time_limit)
        return run_in_process(candidate, problem, self.time_limit)

    def _looser(self, candidate: Candidate, problem: Problem) -> dict[str, str]:
        """The activations of this problem that the candidate computes in a looser formulation
        (or could not be measured on), measured on its first problem that has one."""
        if not any(name in formulation.LOOSER for name in problem.activations):
            return {}
        key = (id(candidate), problem.dtype_name)
        if key not in self._formulations:
            self._formulations[key] = (candidate, formulation.measure(
                candidate, problem.dtype_name, lambda probe: self._call(candidate, probe)))
        found = self._formulations[key][1]
        return {name: how for name, how in found.items() if name in problem.activations}

    def _judge(self, outcome: Outcome, answer: Gradients, references: dict[str, Gradients],
               looser: dict[str, str] | None = None) -> Outcome:
        """pass, fail or oracle_disagreement, for an answer that kept to the contract.
        `looser`: activations the candidate is judged on with their looser formulation's
        rounding, measured (harness/formulation.py); the oracles never are."""
        problem = outcome.problem
        dtype = problem.dtype_name
        loose = frozenset(looser or ())
        found = scales_for(problem)  # the candidate's dtype, then float64 where that differs
        tight, oracle_scales = found[0], found[-1]
        # loosened only where the candidate is measured to write an activation the looser way
        scales = scales_for(problem, (dtype,), loose=loose)[0] if loose else tight
        oracle_allowed = self.tolerance.allowed(oracle_scales, "float64")
        allowed = outcome.allowed = (oracle_allowed if dtype == "float64" and not loose
                                     else self.tolerance.allowed(scales, dtype))
        names = list(references)
        for other in names[1:]:  # only disagreements are kept: skip the details when none
            outcome.oracle_comparisons[f"{names[0]}~{other}"] = [] if within(
                references[other], references[names[0]], oracle_allowed) else [
                c for c in compare(references[other], references[names[0]], oracle_allowed)
                if not c.passed]
        disagreements = [f"{pair}: {c.describe()}" for pair, cs in
                         outcome.oracle_comparisons.items() for c in cs if not c.passed]
        reference, notes = names[0], []
        if disagreements:
            side, note = self._break_tie(problem, references, oracle_allowed, disagreements[0])
            if side is None:
                agrees = [n for n, g in references.items()
                          if all(c.passed for c in compare(answer, g, allowed, dtype))]
                convention = "" if agrees else _followed_convention(problem, answer, allowed,
                                                                     self.tolerance)
                follows = (f"the candidate takes {convention}" if convention else
                           f"the candidate agrees with {' and '.join(agrees) or 'neither'}")
                # its errors measured against the oracle it agrees with, where one
                outcome.comparisons = compare(answer, references[(agrees or [reference])[0]],
                                              allowed, dtype)
                return outcome.ends("oracle_disagreement", f"{note}; {follows}")
            reference, notes = side, [note]
        outcome.reference, outcome.reference_answer = reference, references[reference]
        outcome.comparisons = compare(answer, references[reference], allowed, dtype)
        outcome.upcast = computed_in_float64(problem, answer, references[reference])
        if outcome.failing:
            convention = _followed_convention(problem, answer, allowed, self.tolerance)
            if not convention:
                failing = ", ".join(c.name for c in outcome.failing)
                outcome.diagnosis = _safely(lambda: diagnose_fail(
                    problem, answer, references[reference], outcome.comparisons, allowed,
                    self._intermediates(problem), self._linear(problem, allowed, loose)))
                return outcome.ends("fail", "; ".join(
                    [*notes, f"{len(outcome.failing)} of {len(outcome.comparisons)} tensors "
                              f"out of tolerance: {failing}"]))
            notes.append(f"differs from {reference} only at kinks, where it takes "
                         f"{convention}: a convention, not a bug")
        elif loose and not within(answer, references[reference],
                                  self.tolerance.allowed(tight, dtype)):
            # the looser formulation's allowance made the difference: say so
            notes.append(f"{formulation.NOTE_PREFIX}{formulation.describe(looser or {})}; "
                         "held to the usual formula's rounding it would not")
        return outcome.ends("pass", "; ".join(notes))

    def _linear(self, problem: Problem, allowed: Scales,
                loose: frozenset[str] = frozenset()) -> Scales:
        """The linear bound a diagnosis judges its explanations by (the verdict's, in float64)."""
        if problem.dtype_name == "float64":
            return allowed
        return self.tolerance.allowed(scales_for(problem, measured=False, loose=loose)[0],
                                      problem.dtype_name)

    def _intermediates(self, problem: Problem) -> Any:
        """A function giving the reference's Z, A, delta, from the first oracle that has them."""
        for oracle in self.oracles:
            if hasattr(oracle, "intermediates"):
                return lambda: oracle.intermediates(problem)
        return None

    def _break_tie(self, problem: Problem, references: dict[str, Gradients],
                   allowed: Scales, disagreement: str) -> tuple[str | None, str]:
        """The oracle finite differences side with (or None), and a sentence saying why."""
        convention = convention_note(problem, list(references))
        if self.tie_breaker is None:
            return None, convention or f"{disagreement}; no tie-breaker"
        estimate = self.tie_breaker.estimate(problem)
        if estimate.kinked:
            return None, convention or f"{disagreement}; the loss has a kink here, so finite " \
                                       "differences cannot arbitrate"
        agreeing = [name for name, g in references.items()
                    if estimate.disagreement(g, allowed) <= 1.0]
        if len(agreeing) == 1:
            return agreeing[0], f"oracles disagree ({disagreement}); finite differences " \
                                f"side with {agreeing[0]}"
        verdict = "agree with all of them" if agreeing else "agree with none of them"
        return None, convention or f"{disagreement}; finite differences {verdict}"


# A float32 answer is "the float64 result rounded" when at least UPCAST_SAME of its nonzero
# elements equal the float64 reference rounded to float32, in a case where float32 arithmetic
# (the matrix level) matches it in at most UPCAST_FLOAT32 of them, so the case can tell the
# two apart. Measured over 300 float32 cases: a candidate computing in float64 matched 98.4%
# or more in 95% of them; the matrix level in float32, 27% at the median, 71% at the 95th.
UPCAST_SAME, UPCAST_FLOAT32, UPCAST_MIN_ELEMENTS = 0.98, 0.8, 8


def computed_in_float64(problem: Problem, answer: Gradients, reference: Gradients) -> str:
    """A note when a float32 answer is the float64 result rounded: its float32 checks then
    test float64 arithmetic. '' otherwise (and for float64 cases)."""
    if problem.dtype_name != "float32":
        return ""
    names = tensor_names(answer)
    rounded = flat(reference, names).astype(np.float32).astype(np.float64)
    nonzero = rounded != 0
    if nonzero.sum() < UPCAST_MIN_ELEMENTS:
        return ""
    same = float(np.mean(flat(answer, names)[nonzero] == rounded[nonzero]))
    if same < UPCAST_SAME:
        return ""
    with np.errstate(all="ignore"):  # float32 arithmetic may overflow where float64 does not
        native = matrix(problem)
    in_float32 = flat(Gradients.from_answer(native), names)
    native_same = float(np.mean(in_float32[nonzero] == rounded[nonzero]))
    if native_same > UPCAST_FLOAT32:
        return ""  # float32 arithmetic gets the same numbers here: nothing to tell apart
    return (f"its float32 answer is the float64 result rounded ({same:.0%} of "
            f"{int(nonzero.sum())} elements; float32 arithmetic gives {native_same:.0%}): it "
            "computes in float64, so its float32 checks test float64 arithmetic")


def _safely(diagnose: Any) -> Diagnosis | None:
    """A diagnosis, or one saying why there is none: a bug in it must not stop the run."""
    try:
        return diagnose()
    except Exception as exc:  # pragma: no cover - reported in the record, and a test catches it
        return Diagnosis("unknown", f"the diagnosis raised {type(exc).__name__}: {exc}")


def _followed_convention(problem: Problem, answer: Gradients, allowed: Scales,
                         tolerance: Tolerance) -> str:
    """The kink convention under which the answer matches, if the problem sits on kinks. A
    convention's answer is judged by bounds replayed with its slopes (at least the reference's):
    where the reference's slope is 0 its gradients through that unit are exactly 0, and so are
    their bounds, while the convention's are not."""
    dtype = problem.dtype_name

    def allowed_for(slopes: Any) -> Scales:
        return allowed.at_least(tolerance.allowed(scales_replacing_derivatives(
            problem, dtype, kink_derivatives(problem, slopes)), dtype))

    def worst(mine: Gradients, reference: Gradients, bounds: Scales) -> float:
        return max((c.err_over_tol for c in compare(mine, reference, bounds, dtype)),
                   default=0.0)

    return followed_convention(problem, answer, allowed_for, worst)


def run_in_process(candidate: Candidate, problem: Problem,
                   time_limit: float | None) -> tuple[Gradients | None, str]:
    """Call the candidate on a copy; return its checked answer, or the reason it is an error.

    The answer is read (generators consumed, lazy arrays made) inside the time limit, and
    what a call may change of this process is put back after it: NumPy's error state, the
    working directory, sys.stdout and sys.stderr."""
    given = problem.copy()
    stdout = io.StringIO()
    read: Gradients | CandidateError | None = None
    harness = os.getpid()
    try:
        with _kept_state(), contextlib.redirect_stdout(stdout), _time_limit(time_limit):
            try:
                raw = candidate.function(given)
            finally:
                if os.getpid() != harness:  # a child the candidate forked never runs the harness
                    os._exit(1)
            try:
                read = to_gradients(raw, problem, candidate.supports)
            except CandidateError as exc:  # said after the checks below, as before
                read = exc
    except CandidateTimeout:
        return None, f"hung: no answer within the time limit of {time_limit:g} s"
    except Unsupported as exc:
        return None, Refusal(f"refused: {exc}".splitlines()[0] if str(exc) else "refused")
    except NotImplementedError as exc:
        return None, Refusal(f"refused: raised NotImplementedError: {exc}".splitlines()[0]
                             if str(exc) else "refused: raised NotImplementedError")
    except AnswerError as exc:  # its answer, read in its own conventions, breaks the contract
        return None, str(exc)
    except SystemExit as exc:
        return None, f"called sys.exit({exc.code})"
    except MemoryError:
        return None, "ran out of memory"
    except KeyboardInterrupt:
        if _user_interrupted():  # Ctrl-C from the user stops the run, as ever
            raise
        return None, "raised KeyboardInterrupt"
    except Exception as exc:
        return None, f"raised {type(exc).__name__}: {exc}".splitlines()[0][:300] + _raised_at(exc)
    printed = stdout.getvalue() if not stdout.closed else ""
    if printed:  # output of its own would corrupt a harness's (pytest -n, --isolate, a CI log)
        first = printed.strip().splitlines()[0][:60] if printed.strip() else repr(printed[:20])
        return None, f"printed {len(printed)} characters to stdout (first: {first!r})"
    for name, before, after in zip(_array_names(problem), problem.arrays(), given.arrays(),
                                   strict=True):
        if not _unchanged(before, after):
            return None, f"changed its input {name} in place"
    if isinstance(read, CandidateError):
        return None, str(read)
    return read, ""


_LIBRARIES = tuple(str(Path(p).resolve()) + os.sep for p in {
    Path(np.__file__).parent, Path(os.__file__).parent, Path(__file__).parent.parent})


def _raised_at(exc: BaseException) -> str:
    """' (at my_backprop.py line 42, in backward: dW = delta.T @ A)': the deepest frame of the
    traceback in the candidate's own code (not NumPy's, the standard library's or ours), so an
    error is placed where it was written. '' where there is none."""
    import linecache
    import traceback

    where, frames = None, None
    for summary, (frame, _) in zip(traceback.extract_tb(exc.__traceback__),
                                   traceback.walk_tb(exc.__traceback__), strict=True):
        try:
            path = str(Path(summary.filename).resolve())
        except (OSError, ValueError):
            continue
        if not path.startswith(_LIBRARIES) and not summary.filename.startswith("<frozen"):
            where, frames = summary, frame
    if where is None:
        return ""
    line = (where.line or linecache.getline(where.filename, where.lineno or 0)).strip()
    # the shapes of the arrays the line names, as they were when it raised
    shapes = []
    for name in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", line)):
        value = frames.f_locals.get(name) if frames is not None else None
        if isinstance(value, np.ndarray):
            shapes.append(f"{name} {value.shape}")
    return (f" (at {Path(where.filename).name} line {where.lineno}, in {where.name}"
            + (f": {line[:120]}" if line else "")
            + (f"; shapes: {', '.join(shapes[:6])}" if shapes else "") + ")")


_INTERRUPTS: list[float] = []  # when the user last pressed Ctrl-C (SIGINT) in this process


def _user_interrupted() -> bool:
    """Whether the last KeyboardInterrupt came from a real SIGINT (within the last second),
    not from a candidate's own raise."""
    return bool(_INTERRUPTS) and time.monotonic() - _INTERRUPTS[-1] < 1.0


@contextlib.contextmanager
def _kept_state() -> Iterator[None]:
    """Put back what a candidate's call may change of the harness's process, and note a real
    Ctrl-C (SIGINT) so that it is told from a candidate raising KeyboardInterrupt."""
    errors, cwd, streams = np.geterr(), os.getcwd(), (sys.stdout, sys.stderr)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    # a candidate that ignores SIGTERM or SIGHUP must not make `kill` ineffective for the run
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)} if main else {}

    def interrupted(signum: int, frame: Any) -> None:
        _INTERRUPTS.append(time.monotonic())
        raise KeyboardInterrupt

    if main and previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        if main and previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)
        for number, handler in handlers.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        np.seterr(**errors)
        try:
            if os.getcwd() != cwd:
                os.chdir(cwd)
        except OSError:  # it removed the folder it moved to
            os.chdir(cwd)
        sys.stdout, sys.stderr = streams


def _unchanged(before: np.ndarray, after: Any) -> bool:
    """Whether the candidate left its copy of an input as it was, bit for bit (the inputs are
    finite, so no NaN needs equal_nan; a bytes comparison is several times array_equal's speed)."""
    if not isinstance(after, np.ndarray) or after.dtype != before.dtype:
        return False
    return after.shape == before.shape and after.tobytes() == before.tobytes()


def _array_names(problem: Problem) -> list[str]:
    depth = problem.architecture.depth
    return ["X", "Y", *(f"W{l}" for l in range(1, depth + 1)),
            *(f"b{l}" for l, b in enumerate(problem.biases, start=1) if b is not None)]


def _nonfinite_where_reference_finite(answer: Gradients, reference: Gradients
                                      ) -> tuple[str, bool] | None:
    """Where the answer is NaN or inf and the reference is not (the first element, then the
    other tensors), and whether its dX is finite (then every Delta is: the diagnosis places
    the overflow by it); None where it is finite wherever the reference is."""
    if np.isfinite(flat(answer, tensor_names(answer))).all():  # the vector compare() reads
        return None
    if not np.isfinite(answer.loss) and np.isfinite(reference.loss):
        return "loss", False
    mine, ref = answer.tensors(), reference.tensors()
    found = []  # the first element, then every other tensor that has one (the diagnosis reads
    for name, value in mine.items():  # which tensors overflow to place it)
        bad = ~np.isfinite(value) & np.isfinite(ref[name])
        if np.any(bad):
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            found.append(f"{name}[{', '.join(map(str, index))}]" if not found else name)
    if not found:
        return None
    said = f"{found[0]} (and {', '.join(found[1:])})" if len(found) > 1 else found[0]
    dx = mine.get("dX")
    return said, dx is not None and bool(np.all(np.isfinite(dx)))
