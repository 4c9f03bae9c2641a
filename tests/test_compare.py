"""compare() finds each tensor's worst element in one pass over all of them: it must say what a
tensor-by-tensor reading says, ties and non-finite values included."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from mybackprop.oracles.torch_oracle import TorchOracle

from mybackprop.judging.compare import compare, within
from mybackprop.judging.tolerance import Scales, Tolerance, gradient_scales
from mybackprop.spec.problem import Gradients
from mybackprop.strategies import problems


def one_by_one(answer: Gradients, reference: Gradients, allowed: Scales) -> list[tuple]:
    """The worst element of each tensor, found the slow, obvious way."""
    found = []
    mine = {"loss": np.asarray(answer.loss), **answer.tensors()}
    ref = {"loss": np.asarray(reference.loss), **reference.tensors()}
    tol = {"loss": np.asarray(allowed.loss), **allowed.tensors}
    for name, value in mine.items():
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            err = np.atleast_1d(np.abs(value.astype(np.float64) - ref[name]))
            err[np.isnan(err)] = np.inf
            ratio = np.where(err == 0, 0.0, err / np.atleast_1d(tol[name]))
        k = int(np.argmax(ratio))
        worst = tuple(int(i) for i in np.unravel_index(k, value.shape))
        found.append((name, worst, float(np.ravel(ratio)[k]), float(err.max()),
                      float(np.ravel(value)[k])))
    return found


def comparable(row: tuple) -> tuple:
    return tuple("nan" if isinstance(x, float) and np.isnan(x) else x for x in row)


@given(problems(max_depth=3, max_width=5, max_batch=6), st.data())
def test_the_worst_element_of_every_tensor_is_the_one_a_tensor_by_tensor_reading_finds(
        problem, data):
    reference = TorchOracle().gradients(problem)
    allowed = Tolerance().allowed(gradient_scales(problem), problem.dtype.name)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def perturbed(g: np.ndarray) -> np.ndarray:
        # some elements exact, some off by a few tolerances, a few NaN or inf; ties on purpose
        out = g + rng.choice([0.0, 1.0, 3.0, 3.0], size=g.shape) * np.abs(g).max()
        out[rng.random(g.shape) < 0.05] = rng.choice([np.nan, np.inf])
        return out.astype(problem.dtype)

    answer = Gradients(float(reference.loss), [perturbed(w) for w in reference.dW],
                       [None if b is None else perturbed(b) for b in reference.db],
                       perturbed(reference.dX))
    found = compare(answer, reference, allowed, problem.dtype.name)
    assert [comparable((c.name, c.worst_index, c.err_over_tol, c.max_abs_err, c.candidate))
            for c in found] == [comparable(row) for row in one_by_one(answer, reference, allowed)]
    assert within(answer, reference, allowed) == all(c.passed for c in found)
