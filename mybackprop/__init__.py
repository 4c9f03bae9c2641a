"""mybackprop: check hand-written backpropagation against PyTorch, JAX and finite differences.

This is the one public module a plug-in author imports. A candidate is any callable
``candidate(problem) -> {"loss": ..., "dW": [...], "db": [...], "dX": ...}``; see README.md.
Heavy frameworks (torch, jax) are imported only by the oracles, and only when used.
"""

from mybackprop._candidate import Candidate, Supports, candidate, load_candidate
from mybackprop._element import element
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
from mybackprop._vector import vector

__version__ = "0.1.0"
# The element level costs ~1.2 us per parameter and sample (up to ~10 us on tiny layers), so
# 5000 parameters x 64 samples stays near a second; the default case space needs 1360 x 64.
ELEMENT_MAX_PARAMETERS = 5000
ELEMENT_MAX_BATCH = 64

# The built-in candidates declare themselves through the same contract a third party uses:
# --impl mybackprop:element, mybackprop:vector, mybackprop:matrix.
element = candidate(max_parameters=ELEMENT_MAX_PARAMETERS, max_batch=ELEMENT_MAX_BATCH)(element)
vector = candidate()(vector)
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
    "element",
    "load_candidate",
    "matrix",
    "vector",
]
