"""Property suite: the three levels, PyTorch and JAX agree on random networks.

Hypothesis draws depth 1-5, widths 1-16, any activation per layer, any loss and reduction,
batch 1-64, float32 and float64, biases on and off, inputs from 1e-3 to 1e3 and logits up to
1e3 times larger; kinks are avoided. A failure shrinks to the smallest network that shows it.
"""

from __future__ import annotations

import pytest
from helpers import LEVELS, assert_verdict, check, level_disagreements, oracle_as_candidate
from hypothesis import given

from mybackprop.harness.cases import on_kink
from mybackprop.harness.runner import Checker
from mybackprop.strategies import problems


@pytest.mark.parametrize("level", LEVELS)
@given(problem=problems())
def test_level_agrees_with_pytorch(torch_oracle, level, problem):
    assert_verdict(check(LEVELS[level], problem, [torch_oracle]), "pass")


@pytest.mark.parametrize("level", LEVELS)
@given(problem=problems())
def test_level_agrees_with_jax(jax_oracle, level, problem):
    assert_verdict(check(LEVELS[level], problem, [jax_oracle]), "pass")


@given(problems())
def test_the_three_levels_agree_with_each_other(problem):
    for level in ("element", "vector"):
        assert not level_disagreements(LEVELS[level], LEVELS["matrix"], problem), level


@given(problems(dtypes=["float64"]))
def test_pytorch_agrees_with_jax(torch_oracle, jax_oracle, problem):
    outcome = Checker([jax_oracle]).check(oracle_as_candidate(torch_oracle), problem)
    assert_verdict(outcome, "pass")


@given(problems(activations=("relu", "leaky_relu"), max_width=2))
def test_default_strategies_keep_pre_activations_off_kinks(problem):
    assert not on_kink(problem)
