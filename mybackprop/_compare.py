"""One comparison path: a candidate's (or an oracle's) gradients against a reference, per tensor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mybackprop._problem import Gradients
from mybackprop._tolerance import Scales


@dataclass(frozen=True)
class TensorComparison:
    """How one tensor (or the loss) compares: its worst element in units of the tolerance."""

    name: str  # dW1, db1, ..., dX, or loss
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]  # the element with the largest error over tolerance
    candidate: float  # value at the worst element
    reference: float
    tolerance: float  # allowed absolute error at the worst element
    err_over_tol: float  # > 1 fails; reports read "3.1x tol" or "0.02x tol"
    ulps: float  # the worst element's error in units in the last place of the candidate's dtype

    @property
    def passed(self) -> bool:
        return self.err_over_tol <= 1.0

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["shape"], record["worst_index"] = list(self.shape), list(self.worst_index)
        record["passed"] = self.passed
        return record

    def describe(self) -> str:
        """'dW2[3, 1]: candidate 0.31, reference 0.29 (rel err 7e-02, 3.1e+09x tol 4e-12)'."""
        where = f"[{', '.join(map(str, self.worst_index))}]" if self.worst_index else ""
        error = abs(self.candidate - self.reference)
        relative = error / abs(self.reference) if self.reference else (math.inf if error else 0.0)
        return (f"{self.name}{where}: candidate {self.candidate:.6g}, reference "
                f"{self.reference:.6g} (rel err {relative:.1e}, {self.ulps:.3g} ulp, "
                f"{self.err_over_tol:.2g}x tol {self.tolerance:.1e})")


def compare(answer: Gradients, reference: Gradients, allowed: Scales,
            dtype: str = "float64") -> list[TensorComparison]:
    """Compare every tensor the answer has with the reference, under the allowed errors.

    `dtype` is the answer's: errors are also counted in its units in the last place.
    """
    results = [_compare_one("loss", np.asarray(answer.loss), np.asarray(reference.loss),
                            np.asarray(allowed.loss), dtype)]
    ref = reference.tensors()
    for name, value in answer.tensors().items():
        results.append(_compare_one(name, value, ref[name], allowed.tensors[name], dtype))
    return results


def _compare_one(name: str, value: np.ndarray, reference: np.ndarray,
                 tolerance: np.ndarray, dtype: str) -> TensorComparison:
    value = value.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(value - reference)
        err = np.where(np.isnan(err), np.inf, err)
        ratio = np.where(err == 0, 0.0, err / tolerance)
        rel = err / np.maximum(np.abs(reference), np.finfo(np.float64).tiny)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    return TensorComparison(
        name=name,
        shape=tuple(value.shape),
        max_abs_err=float(err.max(initial=0.0)),
        max_rel_err=float(rel.max(initial=0.0)),
        worst_index=tuple(int(i) for i in worst),
        candidate=float(value[worst]) if ratio.size else 0.0,
        reference=float(reference[worst]) if ratio.size else 0.0,
        tolerance=float(tolerance[worst]) if ratio.size else 0.0,
        err_over_tol=float(ratio.max(initial=0.0)),
        ulps=_ulps(float(err[worst]), float(reference[worst]), dtype) if ratio.size else 0.0,
    )


def _ulps(error: float, reference: float, dtype: str) -> float:
    """error / (the spacing of the dtype's numbers at the reference value)."""
    with np.errstate(over="ignore"):
        spacing = float(np.spacing(np.abs(np.asarray(reference, dtype=dtype))))
    return error / spacing if spacing > 0 else math.inf
