"""Reference gradients: PyTorch autograd and JAX autodiff, each in float64, imported lazily.

``load_oracle(name)`` imports the framework only when asked, so ``mybackprop --help`` and the
NumPy candidates never pay for torch or jax. A missing framework is one clear line, not a crash.
The folder sits at the top of the repository and installs as ``mybackprop.oracles``.
``layer_vjp`` answers for one layer alone: its forward and vector-Jacobian product.

May import: spec, levels, judging.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any, Protocol

from mybackprop.spec.problem import Gradients, Problem

# name -> (module holding the oracle class, class name, the package to import, how to install it)
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "torch": ("mybackprop.oracles.torch_oracle", "TorchOracle", "torch",
              "pip install 'mybackprop[torch]' (torch==2.13.0, the CPU build)"),
    "jax": ("mybackprop.oracles.jax_oracle", "JaxOracle", "jax", "pip install 'mybackprop[jax]'"),
}
ORACLE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


class OracleUnavailable(Exception):
    """The oracle's framework is not installed; the message says how to install it."""


class Oracle(Protocol):
    name: str

    def gradients(self, problem: Problem) -> Gradients:
        """Loss, dW, db and dX in float64 for the problem upcast to float64."""

    def describe(self) -> dict[str, Any]:
        """Version and settings, recorded with every case."""


def versions() -> dict[str, str | None]:
    """Each oracle's framework version, read from package metadata (nothing is imported)."""
    found: dict[str, str | None] = {}
    for name, (_, _, package, _) in _REGISTRY.items():
        try:
            found[name] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def installed() -> list[str]:
    """The oracles whose framework can be imported (checked without importing it)."""
    return [name for name, (_, _, package, _) in _REGISTRY.items()
            if importlib.util.find_spec(package) is not None]


def load_oracle(name: str) -> Oracle:
    if name not in _REGISTRY:
        raise OracleUnavailable(f"unknown oracle {name!r}: choose from {', '.join(_REGISTRY)}")
    module_name, class_name, package, how = _REGISTRY[name]
    if importlib.util.find_spec(package) is None:
        raise OracleUnavailable(f"oracle {name} needs {package}, which is not installed: {how}")
    return getattr(importlib.import_module(module_name), class_name)()
