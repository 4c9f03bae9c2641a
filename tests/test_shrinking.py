"""Hypothesis shrinks a failing case to the smallest network that shows the bug."""

from __future__ import annotations

import dataclasses
import functools

from helpers import check
from hypothesis import find, settings

import mybackprop as mb
from mybackprop.strategies import problems

# tanh'(z) written as 1 - z^2 instead of 1 - tanh(z)^2: the derivative taken at the wrong place.
TANH_AT_Z = dataclasses.replace(mb.ACTIVATIONS["tanh"], derivative=lambda z, a: 1 - z * z)
tanh_at_z = functools.partial(mb.matrix, table={**mb.ACTIVATIONS, "tanh": TANH_AT_Z})


def test_a_wrong_tanh_derivative_shrinks_to_one_tanh_unit(jax_oracle):
    smallest = find(
        problems(),
        lambda problem: check(tanh_at_z, problem, [jax_oracle]).verdict == "fail",
        settings=settings(database=None, max_examples=2000, derandomize=True),
    )
    arch = smallest.architecture
    # One tanh layer and one sample. (A single unit can hide the bug: with the shrunk seed its
    # z is ~0.017, where 1 - z^2 and 1 - tanh(z)^2 differ by less than float32 resolves.)
    assert smallest.activations == ["tanh"] and smallest.batch_size == 1
    assert max(arch.widths) <= 2
    # The first loss and reduction of the table: nothing about them matters to the bug.
    assert (arch.loss, arch.reduction) == ("mse", "mean")
