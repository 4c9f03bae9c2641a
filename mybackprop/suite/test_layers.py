"""The layer checks for a candidate declared as a layer kit (mybackprop.layer_functions or
layer_objects): each layer alone, its state across calls, and a training trajectory, one test
each, named after the layer. Collected for a kit only (the plugin's pytest_ignore_collect).
"""

from __future__ import annotations

from typing import Any

import pytest

from mybackprop.harness.contract import CandidateLoadError
from mybackprop.harness.layer_check import check_layer, kit_named, layer_roles
from mybackprop.harness.layer_state import check_state
from mybackprop.harness.trajectory import train


def _kit(config: pytest.Config) -> Any:
    candidate = getattr(config, "_mybackprop_candidate", None)
    if candidate is None:
        return None
    try:
        return kit_named(candidate.function)
    except CandidateLoadError:
        return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kit = _kit(metafunc.config)
    if "momentum" in metafunc.fixturenames:  # a kit's own update step is plain SGD: one
        metafunc.parametrize("momentum", [0.0] if kit.update is not None else [0.0, 0.9])
    if "layer" not in metafunc.fixturenames:
        return
    roles = [(role, kind) for role, kind in layer_roles(kit)]
    metafunc.parametrize("layer", roles, ids=[role if role == "dense" else f"{role}-{kind}"
                                              for role, kind in roles])


def test_layer_alone(request: pytest.FixtureRequest, layer: tuple[str, str],
                     mybackprop_examples: int) -> None:
    """Forward and VJP against PyTorch's and JAX's on random shapes (10 per example)."""
    kit = _kit(request.config)
    result = check_layer(kit, *layer, cases=10 * mybackprop_examples)
    assert result.verdict == "pass", "\n".join(result.lines())


def test_layer_state(request: pytest.FixtureRequest, layer: tuple[str, str]) -> None:
    """Stale cache, accumulation, parameters (aliasing is a note: printed, never failed)."""
    kit = _kit(request.config)
    results = [r for r in check_state(kit, layers={
        layer[0] if layer[0] == "dense" else f"{layer[0]} {layer[1]}"})]
    bad = [r for r in results if r.verdict != "pass"]
    assert not bad, "\n".join(line for r in bad for line in r.lines())


def test_training_trajectory(request: pytest.FixtureRequest, momentum: float) -> None:
    """5 steps of SGD against torch.optim.SGD and optax.sgd, the first wrong step named."""
    trajectory = train(_kit(request.config), momentum=momentum)
    if trajectory is None:
        pytest.skip("no loss the kit's layers can feed")
    assert trajectory.verdict == "pass", "\n".join(trajectory.lines())
