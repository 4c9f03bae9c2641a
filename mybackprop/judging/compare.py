"""One comparison path: a candidate's (or an oracle's) gradients against a reference, per tensor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mybackprop.judging.tolerance import Scales
from mybackprop.spec.problem import Gradients


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
        return {"name": self.name, "shape": list(self.shape), "max_abs_err": self.max_abs_err,
                "max_rel_err": self.max_rel_err, "worst_index": list(self.worst_index),
                "candidate": self.candidate, "reference": self.reference,
                "tolerance": self.tolerance, "err_over_tol": self.err_over_tol,
                "ulps": self.ulps, "passed": self.passed}

    def describe(self) -> str:
        """'dW2[3, 1]: candidate 0.31, reference 0.29 (rel err 7e-02, 3.1e+09x tol 4e-12)'."""
        where = f"[{', '.join(map(str, self.worst_index))}]" if self.worst_index else ""
        error = abs(self.candidate - self.reference)
        relative = error / abs(self.reference) if self.reference else (math.inf if error else 0.0)
        return (f"{self.name}{where}: candidate {self.candidate:.6g}, reference "
                f"{self.reference:.6g} (rel err {relative:.1e}, {self.ulps:.3g} ulp, "
                f"{self.err_over_tol:.2g}x tol {self.tolerance:.1e})")


def flat(owner: Gradients | Scales, names: tuple[str, ...]) -> np.ndarray:
    """The loss and the named tensors of an answer (or of a tolerance) in one float64 vector,
    made once per owner and names: an oracle's answer is read by every comparison of its case.
    Answers and tolerances are never changed once made, so the vector cannot go stale."""
    cache = owner.__dict__.setdefault("_flat", {})
    found = cache.get(names)
    if found is None:
        tensors = owner.tensors() if isinstance(owner, Gradients) else owner.tensors
        found = cache[names] = np.concatenate(  # casts as it copies: one pass, one call
            [np.reshape(owner.loss, 1), *(tensors[n].ravel() for n in names[1:])],
            dtype=np.float64)
    return found


def tensor_names(answer: Gradients) -> tuple[str, ...]:
    """'loss' and the answer's tensor names: the order of its flat() vector."""
    return ("loss", *answer.tensors())


def compare(answer: Gradients, reference: Gradients, allowed: Scales,
            dtype: str = "float64") -> list[TensorComparison]:
    """Compare every tensor the answer has with the reference, under the allowed errors.

    `dtype` is the answer's: errors are also counted in its units in the last place. Every
    tensor is flattened into one vector, so the arithmetic is a few NumPy calls per case, not
    a few per tensor; each tensor's worst element is then found in its own segment (tensors are
    never empty: widths and batches are >= 1).
    """
    names = tensor_names(answer)
    shapes = [(), *(v.shape for v in answer.tensors().values())]
    value, expected, tolerance = (flat(x, names) for x in (answer, reference, allowed))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(value - expected)
        err[np.isnan(err)] = np.inf
        ratio = np.where(err == 0, 0.0, err / tolerance)
        ratio[np.isnan(ratio)] = np.inf  # an infinite error against an infinite tolerance
        rel = err / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    sizes = [math.prod(shape) for shape in shapes]
    starts = np.cumsum([0, *sizes[:-1]])
    # each segment's worst element: the first place its largest ratio is reached
    top = np.maximum.reduceat(ratio, starts)
    at_top = np.flatnonzero(ratio == np.repeat(top, sizes))
    worst = at_top[np.searchsorted(at_top, starts)]
    max_abs, max_rel = np.maximum.reduceat(err, starts), np.maximum.reduceat(rel, starts)
    ulps = _ulps_at(err[worst], expected[worst], dtype)
    columns = (max_abs, max_rel, value[worst], expected[worst], tolerance[worst], ratio[worst],
               ulps, worst - starts)
    return [TensorComparison(
        name=name, shape=tuple(shape), max_abs_err=a, max_rel_err=r,
        worst_index=_unravel(offset, shape), candidate=c, reference=e, tolerance=t,
        err_over_tol=q, ulps=w)
        for name, shape, a, r, c, e, t, q, w, offset in zip(
            names, shapes, *(column.tolist() for column in columns), strict=True)]


def _unravel(offset: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """np.unravel_index for one offset, in plain ints (tensors have at most 2 axes)."""
    if len(shape) == 2:
        return divmod(offset, shape[1])
    return (offset,) if shape else ()


def within(answer: Gradients, reference: Gradients, allowed: Scales) -> bool:
    """Whether every tensor of the answer (and the loss) is within tolerance: compare()'s
    verdict without its details, for the common case where nothing is out of tolerance."""
    names = tensor_names(answer)
    value, expected, tolerance = (flat(x, names) for x in (answer, reference, allowed))
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(value - expected) <= tolerance))


def _ulps_at(error: np.ndarray, reference: np.ndarray, dtype: str) -> np.ndarray:
    """error / (the spacing of the dtype's numbers at each reference value)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        spacing = np.spacing(np.abs(reference.astype(dtype))).astype(np.float64)
        return np.where(spacing > 0, error / np.where(spacing > 0, spacing, 1.0), np.inf)
