"""mybackprop: check hand-written backpropagation against PyTorch, JAX and finite differences.

This is the one public module a plug-in author imports; the rooms under it (spec, levels,
judging, oracles, diagnosis, harness, reporting, sweep) may change, these names do not.
A candidate is any callable ``candidate(problem) -> {"loss": ..., "dW": [...], "db": [...],
"dX": ...}``. Heavy frameworks (torch, jax) are imported only by the oracles, when used.

    import mybackprop
    checked = mybackprop.check("my_backprop.py:backprop", cases=200)  # like `mybackprop check`
    problem = mybackprop.problem_from_config(record)  # a case of cases.jsonl, rebuilt
"""

from mybackprop._version import __version__
from mybackprop.api import check, run_settings
from mybackprop.harness.cases import problem_from_config
from mybackprop.harness.contract import Candidate, Supports, Unsupported, candidate
from mybackprop.harness.layer_check import LayerResult
from mybackprop.harness.layer_state import check_layers
from mybackprop.harness.layers import layer_functions, layer_objects
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.settings import RunSettings, SettingsError
from mybackprop.levels.element import element
from mybackprop.levels.matrix import matrix
from mybackprop.levels.vector import vector
from mybackprop.spec.problem import Architecture, Gradients, Layer, Problem, SpecError
from mybackprop.spec.table import (
    ACTIVATIONS,
    DTYPES,
    KINKED_ACTIVATIONS,
    LOSSES,
    REDUCTIONS,
    SMOOTH_ACTIVATIONS,
)

# The element level costs ~1.2 us per parameter and sample (up to ~10 us on tiny layers), so
# 5000 parameters x 64 samples stays near a second; the default case space needs 1360 x 64.
ELEMENT_MAX_PARAMETERS = 5000
ELEMENT_MAX_BATCH = 64

# The built-in candidates declare themselves through the same contract a third party uses:
# --impl mybackprop:element, mybackprop:vector, mybackprop:matrix.
# They read the L2 penalty from the problem (any coefficient, either form, biases or not) and
# the activations' parameters (any leaky_relu slope, any elu alpha).
READS_PROBLEM = {"l2": None, "l2_half": None, "l2_biases": None, "leaky_slope": None,
                 "elu_alpha": None}
element = candidate(max_parameters=ELEMENT_MAX_PARAMETERS, max_batch=ELEMENT_MAX_BATCH,
                    **READS_PROBLEM)(element)
vector = candidate(**READS_PROBLEM)(vector)
matrix = candidate(**READS_PROBLEM)(matrix)

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
    "LayerResult",
    "Problem",
    "RunSettings",
    "SettingsError",
    "SpecError",
    "Supports",
    "Unsupported",
    "__version__",
    "candidate",
    "check",
    "check_layers",
    "element",
    "layer_functions",
    "layer_objects",
    "load_candidate",
    "matrix",
    "problem_from_config",
    "run_settings",
    "vector",
]
