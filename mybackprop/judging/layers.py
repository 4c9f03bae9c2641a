"""Error bounds for one layer alone: the network model's rules (tolerance.py) on one step.

A layer checked alone gets exact inputs (x, W, b, z, dout, y_hat in its dtype), so only the
layer's own rounding counts, in units of u, per output element:

    dense        out = x W^T + b   sqrt(n_in) |x| @ |W|^T + |b|
                 dx  = dout W      sqrt(n_out) |dout| @ |W|
                 dW  = dout^T x    sqrt(N) |dout|^T @ |x|
                 db  = sum dout    sqrt(N) sum |dout|
    activation   a   = f(z)        terms_f(z)
                 dz  = dout f'(z)  |dout| terms_f'(z) + |dout f'(z)|   (softmax: its vjp's terms)
    loss         dL/dy_hat         terms_loss'(y_hat, y) / divisor (+ softmax's shift on logits)
                 L                 sqrt(n) sum terms / divisor

The allowed difference is Tolerance.allowed's: (factor u[dtype] + factor u[float64]) times it.
"""

from __future__ import annotations

import math

import numpy as np

from mybackprop.judging.tolerance import Tolerance
from mybackprop.spec.table import ACTIVATIONS, LOSSES, REDUCTIONS, logsumexp


def allowed(bounds: dict[str, np.ndarray | float], dtype: str,
            tolerance: Tolerance | None = None, reference: str = "float64"
            ) -> dict[str, np.ndarray | float]:
    """The allowed absolute difference per element for an answer in `dtype`."""
    k = (tolerance or Tolerance()).multiplier(dtype, reference)
    floor = float(np.finfo(dtype).tiny)
    return {name: k * bound + floor for name, bound in bounds.items()}


def dense(x: np.ndarray, W: np.ndarray, b: np.ndarray, dout: np.ndarray
          ) -> dict[str, np.ndarray]:
    ax, aW, ag = np.abs(x), np.abs(W), np.abs(dout)
    return {"out": math.sqrt(x.shape[-1]) * (ax @ aW.T) + np.abs(b),
            "dx": math.sqrt(W.shape[0]) * (ag @ aW),
            "dW": math.sqrt(len(x)) * (ag.T @ ax),
            "db": math.sqrt(len(x)) * ag.sum(axis=0)}


def activation(name: str, z: np.ndarray, dout: np.ndarray,
               loose: bool = False) -> dict[str, np.ndarray]:
    """`loose`: with the looser formulation's rounding (table.Formulation), for a layer measured
    to compute it that way (harness/formulation.py, kit_looser)."""
    spec = ACTIVATIONS[name]
    with np.errstate(all="ignore"):
        a = spec.forward(z)
        if spec.elementwise:
            d = spec.derivative(z, a)
            dx = (np.abs(dout) * spec.derivative_scale(z, a, np.abs(d), loose)
                  + np.abs(dout * d))
        else:  # a (g - <g, a>): its rounding, and a's own (value_terms) moving g - s and s
            s = np.sum(dout * a, axis=-1, keepdims=True)
            terms = spec.value_scale(z, a)
            dx = (np.abs(a) * (np.abs(dout) + np.abs(s) + math.sqrt(a.shape[-1]) * np.sum(
                np.abs(a * dout), axis=-1, keepdims=True))
                + terms * np.abs(dout - s)
                + np.abs(a) * np.sum(terms * (np.abs(dout) + np.abs(s)), axis=-1, keepdims=True))
    return {"out": spec.value_scale(z, a, loose), "dx": dx}


def loss(name: str, reduction: str, y_hat: np.ndarray, y: np.ndarray
         ) -> dict[str, np.ndarray | float]:
    spec = LOSSES[name]
    divisor = REDUCTIONS[reduction].divisor(len(y_hat), spec.terms_per_sample(y_hat.shape[-1]))
    with np.errstate(all="ignore"):
        dx = spec.derivative_terms(y_hat, y)
        if spec.through_softmax:
            dx = dx + np.abs(spec.curvature(y_hat, y)) * (1 + np.abs(logsumexp(y_hat)))
        terms = spec.value_scale(y_hat, y)
        value = (math.sqrt(terms.size) * float(np.sum(terms))
                 + float(np.sum(np.abs(spec.derivative(y_hat, y)) * (
                     np.abs(y_hat) + (0.0 if spec.per_sample else np.abs(y))))))
    return {"loss": value / divisor, "dx": dx / divisor}
