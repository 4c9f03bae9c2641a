"""Hypothesis profiles and the shared oracles.

HYPOTHESIS_PROFILE=ci (the default) fits CI on 2 cores; HYPOTHESIS_PROFILE=thorough is for local
and nightly runs. The example database (.hypothesis/) is kept, so a found failure replays first.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=150, **_COMMON)
settings.register_profile("thorough", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def torch_oracle():
    from mybackprop.oracles import load_oracle

    return load_oracle("torch")


@pytest.fixture(scope="session")
def jax_oracle():
    from mybackprop.oracles import load_oracle

    return load_oracle("jax")


@pytest.fixture(scope="session")
def both_oracles(torch_oracle, jax_oracle):
    return [torch_oracle, jax_oracle]
