"""mybackprop's property suite for one candidate: run it with ``pytest --impl module:attr``.

Every test draws its cases from what the candidate declares it supports, so an unsupported
activation is a skipped test, not a crash. Examples are derandomized: the same cases on every
run and in every pytest-xdist worker, so grading is reproducible.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from mybackprop.harness.cases import CaseConfig, CaseSpace, build_problem
from mybackprop.harness.shrink import shrink, size
from mybackprop.harness.strategies import case_configs, problem_or_reject
from mybackprop.pytest_plugin import count_example
from mybackprop.spec.problem import Architecture, Layer, SpecError
from mybackprop.spec.table import (
    ACTIVATIONS,
    DTYPES,
    KINKED_ACTIVATIONS,
    KINKED_LOSSES,
    LOSSES,
    PARAMETERS,
    REDUCTIONS,
    parameterized,
)


def _space(candidate: Any, activations: tuple[str, ...], losses: tuple[str, ...],
           kinks: str = "avoid") -> CaseSpace:
    """The cases of one test, within what the candidate declares; a test its declaration
    leaves nothing to check is skipped, saying why."""
    supports = candidate.supports
    missing = [a for a in activations if a not in supports.activations]
    missing += [loss for loss in losses if loss not in supports.losses]
    if missing:
        pytest.skip(f"{candidate.name} declares no support for {', '.join(missing)}")
    max_batch = min(64, supports.max_batch or 64)
    # Widths small enough that even the largest drawn network stays within max_parameters.
    max_width, max_depth = 16, CaseSpace().max_depth
    if supports.max_parameters is not None:
        while (max_width > 1
               and max_depth * (max_width * max_width + max_width) > supports.max_parameters):
            max_width -= 1
    outputs = {LOSSES[loss].output for loss in losses} - {None}
    if len(losses) == 1 and outputs and not outputs <= set(activations):
        # a loss written for an output activation (cross-entropy on softmax probabilities):
        # the test's activations in the hidden layers, that one in the output layer
        (output,) = outputs
        if output not in supports.activations:
            pytest.skip(f"{candidate.name} declares no support for {output}, the output "
                        f"activation {losses[0]} is written for")
        hidden, activations = activations, (*activations, output)
    else:
        hidden = None
    space = CaseSpace(max_width=max_width, max_batch=max_batch, activations=activations,
                      losses=losses, reductions=tuple(sorted(supports.reductions)),
                      dtypes=tuple(sorted(supports.dtypes)), kinks=kinks,
                      hidden_activations=hidden,
                      output_activations=None if hidden is None else tuple(outputs))
    if len(activations) == 1 and (supports.hidden_activations is not None
                                  or supports.output_activations is not None):
        # One activation, for a network with a fixed hidden/output split: the activation
        # wherever the declaration allows it, what it declares elsewhere.
        (name,) = activations
        hidden = supports.hidden_activations is None or name in supports.hidden_activations
        output = supports.output_activations is None or name in supports.output_activations
        if not (hidden or output):
            pytest.skip(f"{candidate.name} declares {name} neither for hidden layers nor for "
                        "the output layer")
        space = dataclasses.replace(space, activations=tuple(sorted(supports.activations)),
                                    hidden_activations=(name,) if hidden else None,
                                    output_activations=(name,) if output else None)
    try:
        return supports.within(space, candidate.name)
    except SpecError as exc:
        pytest.skip(str(exc))


def _check_cases(candidate: Any, checker: Any, space: CaseSpace, examples: int,
                 allowed: tuple[str, ...] = ("pass",)) -> None:
    """Check `examples` Hypothesis cases: drawn first, then judged together; the first that
    fails is shrunk by mybackprop's own shrinker, which knows networks (fewer samples, layers,
    units, biases, while the diagnosis stays), once per diagnosis and session.

    Derandomized Hypothesis draws the same cases from the same test function on every run and
    in every worker. They are only drawn here; the oracles then answer them all through their
    batched paths (the sweeps' way: a stack per shape rather than a call per case; the answers
    differ only by rounding, tests/test_oracles.py), and each case gets the verdict it would
    get alone. Shrinking through Hypothesis instead ran every test again case by case, ~7 s a
    failing test: a broken candidate fails dozens of tests with the same few mistakes.
    """
    drawn: list[tuple[Any, Any]] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(config=case_configs(space))
    def draw(config: Any) -> None:
        drawn.append((config, _problem(candidate, config)))

    draw()
    references = checker.references_many([problem for _, problem in drawn])
    checked, refusals = 0, collections.Counter()
    for (config, problem), refs in zip(drawn, references, strict=True):
        outcome = checker.check(candidate, problem, refs)
        if outcome.verdict == "skipped":  # the candidate refused it
            refusals[outcome.reason] += 1
            continue
        checked += 1
        count_example()
        if outcome.verdict not in allowed:
            pytest.fail(f"{_failure(outcome, config)}\n{_smallest(candidate, checker, outcome)}",
                        pytrace=False)
    if not checked:  # nothing checked is never a pass
        reason, count = refusals.most_common(1)[0] if refusals else ("no case drawn", 0)
        pytest.skip(f"nothing checked: {candidate.name} refused all {len(drawn)} cases "
                    f"({reason}{'' if count == len(drawn) else ', and others'})")


# (candidate, verdict, diagnosis) -> what shrinking found: each mistake is shrunk once a session
_SHRUNK: dict[tuple[str, str, str], str] = {}


def _smallest(candidate: Any, checker: Any, outcome: Any) -> str:
    """The smallest case that keeps the failure's diagnosis, found by mybackprop's shrinker
    (or said once found, for a diagnosis an earlier test shrank already)."""
    again = checker.check(candidate, outcome.problem)
    if again.verdict != outcome.verdict:
        return (f"  (run again alone it gave {again.verdict}, so it was not shrunk: a result "
                "within rounding of the tolerance, or a candidate that does not give the same "
                "answer twice)")
    pattern = again.diagnosis.pattern if again.diagnosis else again.reason
    key = (candidate.name, again.verdict, pattern)
    if key in _SHRUNK:
        return f"{_SHRUNK[key]}\n  (shrunk once for this diagnosis, in an earlier test)"
    smallest, tries = shrink(checker, candidate, again)
    before, after = size(again.problem), size(smallest.problem)
    lines = [f"  smallest case that keeps this diagnosis ({tries} tries): "
             f"{smallest.problem.architecture.describe()}, N={smallest.problem.batch_size} "
             f"({after[0]} parameters, was {before[0]})"]
    if smallest is not again:
        lines += [f"    {line}" for line in smallest.message().splitlines()]
    _SHRUNK[key] = "\n".join(lines)
    return _SHRUNK[key]


def _problem(candidate: Any, config: Any) -> Any:
    """The case's problem; Hypothesis rejects those with units stuck on a kink, and those the
    candidate declares out of its limits (a skipped case counts as no example)."""
    problem = problem_or_reject(config)
    assume(candidate.supports.reason_to_skip(problem) is None)
    return problem


def _failure(outcome: Any, config: Any) -> str:
    return (f"{outcome.message()}\n  reproduce: {reproduce_line(config)}")


def reproduce_line(config: Any) -> str:
    """A line of Python that rebuilds the case's problem, runnable exactly as printed."""
    return (f"from mybackprop import problem_from_config; "
            f"problem = problem_from_config({config.to_dict()!r})")


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients(mybackprop_candidate, mybackprop_checker, mybackprop_examples,
                   activation, loss):
    """Random networks whose layers all use `activation`, under `loss`, any reduction."""
    space = _space(mybackprop_candidate, (activation,), (loss,))
    _check_cases(mybackprop_candidate, mybackprop_checker, space, mybackprop_examples)


@pytest.mark.parametrize("loss", LOSSES)
def test_mixed_networks(mybackprop_candidate, mybackprop_checker, mybackprop_examples, loss):
    """Random networks mixing every activation the candidate supports."""
    supported = tuple(a for a in ACTIVATIONS if a in mybackprop_candidate.supports.activations)
    space = _space(mybackprop_candidate, supported, (loss,))
    _check_cases(mybackprop_candidate, mybackprop_checker, space, mybackprop_examples)


@pytest.mark.parametrize("activation", KINKED_ACTIVATIONS)
def test_kinks(mybackprop_candidate, mybackprop_checker, mybackprop_examples, activation):
    """Units exactly on a kink: any framework's convention is accepted, a bug is not."""
    losses = tuple(loss for loss in LOSSES if loss in mybackprop_candidate.supports.losses)
    if not losses:
        pytest.skip(f"{mybackprop_candidate.name} declares no loss")
    space = _space(mybackprop_candidate, (activation,), losses[:1] or losses, kinks="hit")
    parameter = ACTIVATIONS[activation].parameter
    if parameter is not None and not any(
            parameterized(activation, v).kinks for v in space.parameter_values(parameter)):
        pytest.skip(f"{mybackprop_candidate.name} declares {parameter} "
                    f"{getattr(mybackprop_candidate.supports, parameter):g}, where "
                    f"{activation} has no kink")
    _check_cases(mybackprop_candidate, mybackprop_checker, space, mybackprop_examples,
                 allowed=("pass", "oracle_disagreement"))


@pytest.mark.parametrize("loss", KINKED_LOSSES)
def test_loss_kinks(mybackprop_candidate, mybackprop_checker, mybackprop_examples, loss):
    """Loss terms exactly on the loss's own kink (l1 at yhat = y, a hinge margin at 0): any
    framework's convention is accepted, a bug is not."""
    supported = tuple(a for a in ACTIVATIONS if a in mybackprop_candidate.supports.activations)
    space = _space(mybackprop_candidate, supported, (loss,), kinks="hit")
    _check_cases(mybackprop_candidate, mybackprop_checker, space, mybackprop_examples,
                 allowed=("pass", "oracle_disagreement"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits(mybackprop_candidate, mybackprop_checker, mybackprop_examples, dtype):
    """Output logits 1e3 times the hidden scale: a naive exp overflows; the answer must not."""
    if dtype not in mybackprop_candidate.supports.dtypes:
        pytest.skip(f"{mybackprop_candidate.name} declares no support for {dtype}")
    supported = tuple(a for a in ACTIVATIONS if a in mybackprop_candidate.supports.activations)
    losses = tuple(loss for loss in LOSSES if loss in mybackprop_candidate.supports.losses)
    space = _space(mybackprop_candidate, supported, losses)
    space = CaseSpace(**{**vars(space), "dtypes": (dtype,), "input_log10_scale": (2.0, 3.0)})
    _check_cases(mybackprop_candidate, mybackprop_checker, space, mybackprop_examples)


@pytest.mark.parametrize("dtype", DTYPES)
def test_smallest_network(mybackprop_candidate, mybackprop_checker, dtype):
    """One input, one unit, one sample: the simplest case, and the first to read if it fails
    (as small as the candidate's declaration allows)."""
    supports = mybackprop_candidate.supports
    if dtype not in supports.dtypes:
        pytest.skip(f"{mybackprop_candidate.name} declares no support for {dtype}")
    loss = next(loss for loss in LOSSES if loss in supports.losses)
    space = _space(mybackprop_candidate, tuple(a for a in ACTIVATIONS if a in
                                               supports.activations), (loss,))
    depth = space.depths()[0]
    widths = space.widths or (1,) * (depth + 1)
    layers = tuple(Layer(widths[l], space.output[0] if l == depth else space.hidden[0],
                         True if space.bias is None else space.bias)
                   for l in range(1, depth + 1))
    reduction = next(r for r in REDUCTIONS if r in space.reductions)
    # the activations' parameters: the candidate's declared ones (the first drawn if it reads them)
    arch = Architecture(widths[0], layers, loss, reduction,
                        **{name: space.parameter_values(name)[0] for name in PARAMETERS})
    problem = build_problem(CaseConfig(arch, space.min_batch, dtype, 1.0, 1.0, seed=0))
    outcome = mybackprop_checker.check(mybackprop_candidate, problem)
    if outcome.verdict != "pass":
        pytest.fail(outcome.message(), pytrace=False)
