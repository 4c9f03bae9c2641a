"""Standalone repro scripts: one failing case, its arrays inline, runnable with numpy alone.

    python reports/RUN/repro/case-00017-my_backprop.py

The script rebuilds the problem (a small stand-in with the attributes the contract promises),
loads the candidate by its --impl spec, calls it, and prints every tensor that is out of
tolerance against the reference recorded in the run, with the run's diagnosis. It exits 1 while
the discrepancy is there and 0 once it is gone. Numbers are written with repr, which round-trips
float64 exactly (and float32, through float64).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mybackprop._version import __version__
from mybackprop.judging.tolerance import Tolerance, gradient_scales
from mybackprop.spec.problem import Gradients, Problem
from mybackprop.spec.table import PARAMETERS

_TEMPLATE = '''\
"""{title}

Run with `python {filename}` from where `--impl {spec}` resolves (needs numpy and the
candidate, nothing else). Prints the tensors out of tolerance; exit 1 while there are any.
Written by mybackprop {version}.
"""
import importlib
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CANDIDATE = {spec!r}
DIAGNOSIS = {diagnosis!r}
inf, nan = float("inf"), float("nan")


class Problem(SimpleNamespace):
    """The attributes the contract promises: X, Y, weights, biases, activations, loss,
    reduction, architecture, dtype, batch_size, the penalty's and the activations' parameters."""

    def copy(self):
        return Problem(**{{k: (v.copy() if hasattr(v, "copy") else v)
                          for k, v in vars(self).items()}})


LAYERS = {layers!r}  # (width, activation, bias)
PENALTY = {penalty!r}  # the L2 penalty: coefficient (0: none), half form, on the biases too
PARAMETERS = {parameters!r}  # the activations' parameters (leaky_relu's slope, elu's alpha)
# How the candidate declared it wants its data ({{}}: the canonical form). Converting needs
# mybackprop's own conversions, so a script with conventions imports mybackprop.
CONVENTIONS = {conventions!r}
X = np.array({X}, dtype=np.{dtype}).reshape({X_shape})
Y = np.array({Y}, dtype=np.{Y_dtype}).reshape({Y_shape})
WEIGHTS = [{weights}]
BIASES = [{biases}]
problem = Problem(
    X=X, Y=Y, weights=WEIGHTS, biases=BIASES,
    activations=[a for _, a, _ in LAYERS], loss={loss!r}, reduction={reduction!r},
    dtype=X.dtype, batch_size=len(X), **PENALTY, **PARAMETERS,
    architecture=SimpleNamespace(
        input_width={input_width}, loss={loss!r}, reduction={reduction!r},
        widths=({input_width}, *(w for w, _, _ in LAYERS)), depth=len(LAYERS),
        layers=tuple(SimpleNamespace(width=w, activation=a, bias=b) for w, a, b in LAYERS),
        **PENALTY, **PARAMETERS))

# The float64 reference ({reference}) and the allowed absolute difference, per element.
REFERENCE = {{{reference_items}}}
ALLOWED = {{{allowed_items}}}


def load(spec):
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    for part in attr.split("."):
        module = getattr(module, part)
    return module


def tensors(answer):
    named = {{"loss": np.asarray(answer["loss"], dtype=np.float64)}}
    for kind in ("dW", "db"):
        for l, value in enumerate(answer[kind], start=1):
            if value is not None:
                named[f"{{kind}}{{l}}"] = np.asarray(value)
    if answer.get("dX") is not None:
        named["dX"] = np.asarray(answer["dX"])
    return named


def call(candidate):
    """The candidate's answer, in the canonical form."""
    if not CONVENTIONS:
        return candidate(problem.copy())
    import mybackprop
    from mybackprop.harness.conventions import Conventions, adapted

    real = mybackprop.Problem(
        mybackprop.Architecture(problem.architecture.input_width, tuple(
            mybackprop.Layer(w, a, b) for w, a, b in LAYERS), problem.loss, problem.reduction,
            **PENALTY, **PARAMETERS), WEIGHTS, BIASES, X, Y)
    return adapted(candidate, Conventions(**CONVENTIONS), "dX" in REFERENCE, False)(real)


def main():
    answer = tensors(call(load(CANDIDATE)))
    bad = 0
    for name, reference in REFERENCE.items():
        value = answer.get(name)
        if value is None or value.shape != reference.shape:
            shape = None if value is None else value.shape
            print(f"{{name}}: candidate shape {{shape}}, expected {{reference.shape}}")
            bad += 1
            continue
        with np.errstate(all="ignore"):
            error = np.abs(value.astype(np.float64) - reference)
            ratio = np.where(np.isnan(error), np.inf, error / ALLOWED[name])
        if np.all(ratio <= 1):
            continue
        bad += 1
        worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        where = f"[{{', '.join(map(str, worst))}}]" if worst else ""
        print(f"{{name}}{{where}}: candidate {{value[worst]:.9g}}, reference "
              f"{{reference[worst]:.9g}} ({{ratio[worst]:.3g}}x tolerance); "
              f"{{int(np.sum(ratio > 1))}} of {{ratio.size}} elements out of tolerance")
    if bad:
        print(DIAGNOSIS)
    else:
        print("every tensor within tolerance: the discrepancy is gone")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def write_repro(path: Path, outcome: Any, spec: str, tolerance: Tolerance) -> Path:
    """Write the repro script of one outcome (it must carry its reference answer) to `path`."""
    problem: Problem = outcome.problem
    reference: Gradients = outcome.reference_answer
    # A fail was judged with a tolerance already; an error (wrong shape, NaN) was not.
    allowed = outcome.allowed or tolerance.allowed(gradient_scales(problem), problem.dtype_name)
    arch = problem.architecture
    dtype = problem.dtype_name
    diagnosis = "\n".join(outcome.diagnosis.lines()) if outcome.diagnosis else outcome.reason
    title = outcome.message().splitlines()[0]
    names = set(reference.tensors())
    reference_items = {"loss": np.asarray(reference.loss), **reference.tensors()}
    allowed_items = {"loss": np.asarray(allowed.loss),
                     **{k: v for k, v in allowed.tensors.items() if k in names}}
    if spec.partition(":")[0].endswith(".py"):
        file, _, attr = spec.rpartition(":")
        spec = f"{Path(file).resolve()}:{attr}"
    text = _TEMPLATE.format(
        title=title.replace('"""', "'''"), filename=path.name, spec=spec, version=__version__,
        diagnosis=diagnosis, layers=[(l.width, l.activation, l.bias) for l in arch.layers],
        X=_numbers(problem.X), X_shape=problem.X.shape, dtype=dtype,
        Y=_numbers(problem.Y), Y_shape=problem.Y.shape, Y_dtype=problem.Y.dtype.name,
        weights=", ".join(_array(w, dtype) for w in problem.weights),
        biases=", ".join("None" if b is None else _array(b, dtype) for b in problem.biases),
        loss=arch.loss, reduction=arch.reduction, input_width=arch.input_width,
        penalty={"l2": arch.l2, "l2_half": arch.l2_half, "l2_biases": arch.l2_biases},
        parameters={name: getattr(arch, name) for name in PARAMETERS},
        conventions={} if outcome.conventions.canonical else outcome.conventions.to_dict(),
        reference=outcome.reference or "the oracles",
        reference_items=", ".join(f"{k!r}: {_array(v, 'float64')}"
                                  for k, v in reference_items.items()),
        allowed_items=", ".join(f"{k!r}: {_array(v, 'float64')}"
                                for k, v in allowed_items.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _numbers(a: np.ndarray) -> str:
    """A flat list literal that round-trips every element exactly (repr of float64)."""
    return "[" + ", ".join(repr(float(x)) if a.dtype.kind == "f" else repr(int(x))
                           for x in a.ravel()) + "]"


def _array(a: np.ndarray, dtype: str) -> str:
    return f"np.array({_numbers(np.asarray(a))}, dtype=np.{dtype}).reshape({a.shape})"
