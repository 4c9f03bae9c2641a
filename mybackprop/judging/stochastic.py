"""Stochastic arithmetic: how far a correct float32 computation strays from the truth *here*.

The linear model of tolerance.py adds every rounding error's bound as if all of them pushed the
same way. Through a few layers that sum of absolute values grows far past what rounding does:
errors of both signs meet in every matrix product and mostly cancel, as independent errors do.
Monte Carlo arithmetic (Parker 1997; the idea behind Verificarlo and CADNA) measures instead of
bounding: the float64 computation is run again several times with every operation's result moved
by a random relative error of up to u, and the spread of the results is how far rounding moves
them at this input. Propagation is then the computation's own, signed: a cancellation shows as a
wide spread, a unit saturated on one side as none.

What is perturbed, per run (all runs at once, on a leading axis):
- a sum of products (a matrix product, a batch sum) as recursive summation does it: each
  product, and each partial sum, moved by its own rounding. This is the least accurate common
  order; BLAS's blocked sums and NumPy's pairwise sums stray less.
- an activation, its derivative and the loss's derivative: by u times the size of the terms
  their usual formulas add up (the linear model's value_terms and derivative_terms), so a
  formulation the model allows for (softmax as exp(z - logsumexp z), sigmoid through tanh, ...)
  is allowed for here too.
- every result, by up to the dtype's smallest normal number (it may be flushed to 0).
Each draw is a hash of the result it moves, its run and the operation's kind: like a real
rounding error, the same operation on the same numbers errs the same way (a batch of one sample
repeated sums one error batch times; independent draws would let them cancel and fail correct
code). So the same case always gets the same answer.

`spread` returns the root mean square deviation of the runs from the unperturbed result, per
gradient element, in units of u. The tolerance (tolerance.py, scales_for) takes the smaller of
STOCHASTIC_MARGIN times it and the linear bound; where a run is not finite (a perturbed
probability past 1 under a log) the linear bound stands. Measured in bench/stochastic.py.
"""

from __future__ import annotations

import math

import numpy as np

from mybackprop.spec.problem import Problem
from mybackprop.spec.table import logsumexp

RUNS = 16  # perturbed runs per case
SEED = 20240613
# Matrix products are emulated term by term up to this many products in all (runs x rows x n
# x columns); past it each output moves by up to the rounding bound sqrt(n) |x| @ |y| instead.
_EMULATED = 1 << 20


def spread(problem: Problem, dtype: str, runs: int = RUNS,
           seed: int = SEED, loose: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Root mean square of (perturbed - unperturbed) over `runs` runs, in units of the dtype's
    unit roundoff u, for every element of every dW, db and dX; inf where a run was not
    finite. `loose`: the activations computed in their looser formulation (table.Formulation),
    whose rounding moves them further."""
    p = problem.float64()
    u = float(np.finfo(dtype).eps) / 2
    floor = float(np.finfo(dtype).tiny)  # a result below it may be flushed to 0
    with np.errstate(all="ignore"):
        exact = _Run(p, u, floor, None).gradients()
        moved = _Run(p, u, floor, np.random.default_rng(seed), runs, loose).gradients()
        result = {}
        for name, value in exact.items():
            gap = moved[name] - value[0]
            rms = np.sqrt(np.mean(gap * gap, axis=0))
            result[name] = np.where(np.all(np.isfinite(gap), axis=0), rms / u, np.inf)
    return result


class _Run:
    """The forward and backward pass in float64, every operation moved by a random rounding
    error of up to u (rng None: none). Every value carries a leading axis of runs."""

    def __init__(self, p: Problem, u: float, floor: float, rng: np.random.Generator | None,
                 runs: int = 1, loose: frozenset[str] = frozenset()) -> None:
        self.p, self.u, self.floor, self.rng, self.runs = p, u, floor, rng, runs
        self.loose = loose
        self.salts = None if rng is None else rng.integers(0, 2**63, runs, dtype=np.uint64)

    def _draw(self, of: np.ndarray, stream: int) -> np.ndarray:
        """A number in [-1, 1) for each element of `of`, a function of its bits, its run and the
        stream: like a real rounding error, the same operation on the same numbers errs the same
        way (a batch of identical rows sums identical errors, which independent draws would
        let cancel)."""
        assert self.salts is not None
        bits = np.ascontiguousarray(of, dtype=np.float64).view(np.uint64)
        x = bits ^ (self.salts.reshape((-1,) + (1,) * (of.ndim - 1)) + np.uint64(stream))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
        return (x >> np.uint64(11)).astype(np.float64) * 2.0**-52 - 1.0

    def moved(self, value: np.ndarray, term: np.ndarray, stream: int = 0) -> np.ndarray:
        """value moved by up to u * term, and by up to the underflow floor."""
        if self.rng is None:
            return value
        value = np.broadcast_to(value, np.broadcast_shapes(value.shape, term.shape))
        return value + (self.u * term + self.floor) * self._draw(value, stream)

    def matmul(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """x @ y, each product and each partial sum of recursive summation rounded."""
        exact = x @ y
        if self.rng is None:
            return exact
        n = x.shape[-1]
        if self.runs * x.shape[-2] * n * y.shape[-1] > _EMULATED:
            return self.moved(exact, math.sqrt(n) * (np.abs(x) @ np.abs(y)), 4)
        products = x[..., :, :, None] * y[..., None, :, :]  # (runs, rows, n, columns)
        products = np.broadcast_to(products, (self.runs, *products.shape[-3:]))
        partial = np.cumsum(products, axis=-2)[..., 1:, :]  # the first sum adds nothing
        error = np.sum(products * self._draw(products, 1), axis=-2)
        error += np.sum(partial * self._draw(partial, 2), axis=-2)
        return exact + self.u * error + self.floor * math.sqrt(n) * self._draw(exact, 3)

    def gradients(self) -> dict[str, np.ndarray]:
        p = self.p
        arch = p.architecture
        specs = arch.activation_specs
        a = np.broadcast_to(p.X, (self.runs, *p.X.shape))
        inputs, derivatives, outputs = [], [], []
        for W, b, f in zip(p.weights, p.biases, specs, strict=True):
            inputs.append(a)
            z = self.matmul(a, W.T)
            if b is not None:
                z = self.moved(z + b, np.abs(z + b))
            out = f.forward(z)
            loose = f.name in self.loose
            out = self.moved(out, f.value_scale(z, out, loose))
            if f.elementwise:
                d = f.derivative(z, out)
                scale = f.derivative_scale(z, out, np.abs(d), loose)
                if f.saturation is not None:  # what cancels is at most what is left
                    scale = scale * np.minimum(1.0, 2 * f.saturation(z, out) / self.u)
                derivatives.append(self.moved(d, scale))
            else:
                derivatives.append(None)
            outputs.append((z, out))
            a = out

        loss, Y = arch.loss_spec, p.Y
        divisor = arch.reduction_spec.divisor(p.batch_size, loss.terms_per_sample(a.shape[-1]))

        def per_run(function):  # the loss's functions take one (N, n_L) batch
            return np.stack([function(y_hat, Y) for y_hat in a])

        term = per_run(loss.derivative_terms)
        if loss.through_softmax:  # softmax(yhat) - y, its softmax maybe exp(yhat - logsumexp)
            term = term + np.abs(per_run(loss.curvature)) * (1 + np.abs(logsumexp(a)))
        g = self.moved(per_run(loss.derivative), term) / divisor
        tensors: dict[str, np.ndarray] = {}
        for l in reversed(range(arch.depth)):
            f, W, a_prev = specs[l], p.weights[l], inputs[l]
            if f.elementwise:
                product = g * derivatives[l]
                delta = self.moved(product, np.abs(product))
            else:
                z, out = outputs[l]
                s = np.sum(g * out, axis=-1, keepdims=True)
                rounding = np.abs(g) + np.abs(s) + math.sqrt(out.shape[-1]) * np.sum(
                    np.abs(out * g), axis=-1, keepdims=True)
                delta = self.moved(f.vjp(z, out, g), np.abs(out) * rounding)
            tensors[f"dW{l + 1}"] = self.matmul(delta.swapaxes(-1, -2), a_prev)
            if p.biases[l] is not None:  # the batch sum, as a product with ones
                tensors[f"db{l + 1}"] = self.matmul(
                    np.ones((1, delta.shape[-2])), delta)[..., 0, :]
            g = self.matmul(delta, W)
        tensors["dX"] = g
        if arch.l2:
            c = arch.penalty_coefficient()
            for l, (W, b) in enumerate(zip(p.weights, p.biases, strict=True), start=1):
                tensors[f"dW{l}"] = self._penalised(tensors[f"dW{l}"], c, W)
                if b is not None and arch.l2_biases:
                    tensors[f"db{l}"] = self._penalised(tensors[f"db{l}"], c, b)
        return tensors

    def _penalised(self, gradient: np.ndarray, c: float, w: np.ndarray) -> np.ndarray:
        """gradient + 2 c w: the product and the sum each rounded."""
        penalty = self.moved(np.broadcast_to(2 * c * w, gradient.shape), np.abs(2 * c * w), 3)
        total = gradient + penalty
        return self.moved(total, np.abs(total))

