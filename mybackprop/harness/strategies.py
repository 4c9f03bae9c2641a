"""Hypothesis strategies for random backprop cases, built to shrink to the smallest network.

Hypothesis draws the structure (depth, widths, activations, biases, loss, reduction, batch size,
dtype, scales) and one data seed; the arrays follow from the seed. Shrinking therefore moves
toward fewer layers, narrower layers, smaller batches, the first activation and loss of the
table, and unit scales, which is what a person wants to read.

    from hypothesis import given
    from mybackprop.harness.strategies import problems

    @given(problems(max_depth=2, activations=["tanh", "relu"], kinks="hit"))
    def test_my_backprop(problem): ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from mybackprop.harness.cases import (
    DEFAULT_L2,
    CaseConfig,
    CaseSpace,
    KinkUnavoidable,
    build_problem,
)
from mybackprop.spec.problem import Architecture, Layer, Problem
from mybackprop.spec.table import ACTIVATIONS, DTYPES, LOSSES, PARAMETERS, REDUCTIONS


def architectures(*, max_depth: int = 5, max_width: int = 16,
                  activations: Sequence[str] = tuple(ACTIVATIONS),
                  losses: Sequence[str] = tuple(LOSSES),
                  reductions: Sequence[str] = tuple(REDUCTIONS),
                  l2: Sequence[float] = (0.0,)) -> st.SearchStrategy[Architecture]:
    """Dense architectures of depth 1..max_depth and widths 1..max_width; `l2`: the L2
    penalty coefficients drawn (default none)."""
    space = CaseSpace(max_depth=max_depth, max_width=max_width, activations=tuple(activations),
                      losses=tuple(losses), reductions=tuple(reductions), l2=tuple(l2))
    return _architectures(space)


def _architectures(space: CaseSpace) -> st.SearchStrategy[Architecture]:
    """Architectures of the space: its depths and widths (or its exact widths), hidden and
    output activations, biases and parameter budget. A space that does not narrow the
    architecture gets the plain strategy it always had (the same examples)."""
    bias = st.booleans() if space.bias is None else st.just(space.bias)
    if space.widths is not None:
        depth = len(space.widths) - 1
        layers: st.SearchStrategy[Any] = st.tuples(*(
            st.builds(Layer, st.just(w), st.sampled_from(space.output if l == depth
                                                          else space.hidden), bias)
            for l, w in enumerate(space.widths[1:], start=1)))
        input_width: st.SearchStrategy[int] = st.just(space.widths[0])
    else:
        input_width = st.integers(space.min_width, space.max_width)
        layer = st.builds(Layer, input_width, st.sampled_from(space.hidden), bias)
        layers = st.lists(layer, min_size=space.min_depth, max_size=space.max_depth)
        if space.hidden_activations is not None or space.output_activations is not None:
            layers = st.builds(_with_output, layers, st.sampled_from(space.output))
    def flag(fixed: bool | None) -> st.SearchStrategy[bool]:
        return st.booleans() if fixed is None else st.just(fixed)

    architectures = st.builds(
        _architecture, input_width, layers, st.sampled_from(space.usable_losses()),
        st.sampled_from(space.reductions),
        st.sampled_from(DEFAULT_L2 if space.l2 is None else space.l2),
        flag(space.l2_half), flag(space.l2_biases),
        st.fixed_dictionaries({name: st.sampled_from(space.parameter_values(name))
                               for name in PARAMETERS}))
    budget = space.max_parameters
    return architectures if budget is None else architectures.filter(
        lambda arch: arch.n_parameters <= budget)


def _architecture(input_width: int, layers: list[Layer], loss: str, reduction: str, l2: float,
                  half: bool, biases: bool, parameters: dict[str, float]) -> Architecture:
    """The architecture, its output layer made what its loss is written for (a loss on softmax
    probabilities takes a softmax output); an activation parameter is kept only where its
    activation is in the network (else the default: it changes nothing)."""
    output = LOSSES[loss].output
    if output is not None:
        layers = _with_output(layers, output)
    names = {layer.activation for layer in layers}
    kept = {name: value for name, value in parameters.items()
            if PARAMETERS[name].activation in names}
    return Architecture(input_width, layers, loss, reduction, l2, half and bool(l2),
                        biases and bool(l2), **kept)


def _with_output(layers: list[Layer], activation: str) -> list[Layer]:
    """The layers with the output layer's activation replaced."""
    return [*layers[:-1], dataclasses.replace(layers[-1], activation=activation)]


def case_configs(space: CaseSpace | None = None) -> st.SearchStrategy[CaseConfig]:
    """Configs of random cases from a CaseSpace (defaults: the ranges of the design)."""
    space = space or CaseSpace()
    lo, hi = space.input_log10_scale
    return st.builds(
        CaseConfig,
        architecture=_architectures(space),
        batch_size=st.integers(space.min_batch, space.max_batch),
        dtype=st.sampled_from(space.dtypes),
        # Exponents shrink toward 0, i.e. toward unit scales.
        input_scale=st.floats(lo, hi).map(lambda e: float(10**e)),
        output_scale=st.integers(0, space.max_output_log10_scale).map(lambda e: float(10**e)),
        seed=st.integers(0, 2**32 - 1),
        kinks=st.just(space.kinks),
    )


def problem_or_reject(config: CaseConfig) -> Problem:
    """The config's problem; inside a Hypothesis test, a config whose units stay on a kink
    (e.g. a dead relu layer feeding a relu layer with no bias) is rejected, not an error."""
    try:
        return build_problem(config)
    except KinkUnavoidable:
        assume(False)
        raise  # unreachable: assume(False) always raises


@st.composite
def _problems(draw: st.DrawFn, space: CaseSpace) -> Problem:
    return problem_or_reject(draw(case_configs(space)))


def problems(*, max_depth: int = 5, max_width: int = 16, max_batch: int = 64,
             activations: Sequence[str] = tuple(ACTIVATIONS),
             losses: Sequence[str] = tuple(LOSSES),
             reductions: Sequence[str] = tuple(REDUCTIONS),
             dtypes: Sequence[str] = tuple(DTYPES),
             kinks: str = "avoid", l2: Sequence[float] = (0.0,)) -> st.SearchStrategy[Problem]:
    """Whole problems (architecture, parameters, batch).

    kinks="avoid" keeps every pre-activation off the kinks of relu and leaky_relu; kinks="hit"
    puts one unit of every kinked layer exactly on its kink. `l2`: the L2 penalty coefficients
    drawn (default none; the form and the bias rule are drawn). Arguments are checked before the
    strategy is built, so a bad one fails at once.
    """
    space = CaseSpace(max_depth=max_depth, max_width=max_width, max_batch=max_batch,
                      activations=tuple(activations), losses=tuple(losses),
                      reductions=tuple(reductions), dtypes=tuple(dtypes), kinks=kinks,
                      l2=tuple(l2))
    return _problems(space)
