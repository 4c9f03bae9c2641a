"""mybackprop: check hand-written backpropagation against PyTorch, JAX and finite differences.

This is the one public module a plug-in author imports. A candidate is any callable
``candidate(problem) -> {"loss": ..., "dW": [...], "db": [...], "dX": ...}``; see README.md.
Heavy frameworks (torch, jax) are imported only by the oracles, and only when used.
"""

from mybackprop._candidate import Candidate, Supports, candidate, load_candidate
from mybackprop._matrix import matrix
from mybackprop._problem import Architecture, Gradients, Layer, Problem, SpecError
from mybackprop._spec import (
    ACTIVATIONS,
    DTYPES,
    KINKED_ACTIVATIONS,
    LOSSES,
    REDUCTIONS,
    SMOOTH_ACTIVATIONS,
)

__version__ = "0.1.0"

# The built-in candidates declare themselves through the same contract a third party uses.
matrix = candidate()(matrix)

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "KINKED_ACTIVATIONS",
    "LOSSES",
    "REDUCTIONS",
    "SMOOTH_ACTIVATIONS",
    "Architecture",
    "Candidate",
    "Gradients",
    "Layer",
    "Problem",
    "SpecError",
    "Supports",
    "candidate",
    "load_candidate",
    "matrix",
]
