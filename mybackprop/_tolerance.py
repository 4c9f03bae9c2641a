"""Tolerance: how far a gradient element may be from the oracles, given the dtype and the data.

A first version of the model (a principled one is issue 5). The allowed error of an element is

    tol = factor[dtype] * u[dtype] * scale

where u is the unit roundoff and ``scale`` is a running bound on the size of everything that
was summed into that element. It comes from a second pass, in float64, that repeats the forward
and backward passes on magnitudes: |W|, the size of each activation's terms, the size of each
derivative's terms (1 + a^2 for tanh's 1 - a^2, so saturation is judged by what cancelled), plus
the error a rounded pre-activation causes through f''. A near-zero gradient produced by
cancellation is therefore judged by the size of what cancelled, not by its own size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mybackprop._problem import Problem

UNIT_ROUNDOFF: dict[str, float] = {"float32": 2.0**-24, "float64": 2.0**-53}
# Smallest normal number over u: added to every scale, so that underflow in the candidate's dtype
# (sigmoid(-100) in float32 is subnormal) is allowed an error of a few tiny numbers, not 0.
_UNDERFLOW_FLOOR: dict[str, float] = {
    name: float(np.finfo(name).tiny) / u for name, u in UNIT_ROUNDOFF.items()}


@dataclass(frozen=True)
class Scales:
    """Per-element magnitude bounds, in float64, keyed like Gradients.tensors(), plus the loss."""

    loss: float
    tensors: dict[str, np.ndarray]


@dataclass(frozen=True)
class Forward:
    """The float64 forward pass with its magnitude bounds, layer by layer (index 0 is X)."""

    z: list[np.ndarray]
    z_scale: list[np.ndarray]  # Zbar_l = Abar_{l-1} |W_l|^T + |b_l|: what was summed into Z_l
    a: list[np.ndarray]
    a_scale: list[np.ndarray]  # Abar_l: |A_l|-sized terms plus the error Z's rounding causes


def forward_scales(problem: Problem) -> Forward:
    """Run the forward pass in float64, carrying a magnitude bound beside every value."""
    p = problem.as_float64()
    a, a_scale = [p.X], [np.abs(p.X)]
    z_list, z_scale = [], []
    for W, b, f in zip(p.weights, p.biases, p.architecture.activation_specs, strict=True):
        z = a[-1] @ W.T
        zbar = a_scale[-1] @ np.abs(W).T
        if b is not None:
            z, zbar = z + b, zbar + np.abs(b)
        out = f.forward(z)
        if f.elementwise:
            abar = f.value_scale(z, out) + np.abs(f.derivative(z, out)) * zbar
        else:  # softmax: relative error of each output ~ rounding of z_j and of max(z)
            abar = np.abs(out) * (1 + zbar + zbar.max(axis=-1, keepdims=True))
        z_list.append(z)
        z_scale.append(zbar)
        a.append(out)
        a_scale.append(abar)
    return Forward(z_list, z_scale, a, a_scale)


def gradient_scales(problem: Problem, dtype: str | None = None,
                    fwd: Forward | None = None) -> Scales:
    """Magnitude bounds for the loss and every dW, db and dX element, for results in `dtype`.

    `dtype` (default: the problem's) sets the underflow floor added at every step of the pass.
    """
    p = problem.as_float64()
    arch = p.architecture
    fwd = fwd or forward_scales(problem)
    loss = arch.loss_spec
    y_hat, y_hat_scale = fwd.a[-1], fwd.a_scale[-1]
    floor = _UNDERFLOW_FLOOR[dtype or problem.dtype.name]
    divisor = arch.reduction_spec.divisor(p.batch_size, loss.terms_per_sample(y_hat.shape[1]))

    # Every loss here has |second derivative| <= 2, so a rounded Yhat moves dL/dYhat by <= 2x that.
    g_scale = (loss.derivative_terms(y_hat, p.Y) + 2 * y_hat_scale + floor) / divisor
    loss_scale = (np.abs(loss.terms(y_hat, p.Y)).sum()
                  + (np.abs(loss.derivative(y_hat, p.Y)) * y_hat_scale).sum()) / divisor + floor

    tensors: dict[str, np.ndarray] = {}
    for l in reversed(range(arch.depth)):
        f = arch.activation_specs[l]
        z, zbar, a = fwd.z[l], fwd.z_scale[l], fwd.a[l + 1]
        if f.elementwise:
            d_scale = f.derivative_scale(z, a) + np.abs(f.second_derivative(z, a)) * zbar
            delta_scale = g_scale * d_scale + floor
        else:
            a_bar = fwd.a_scale[l + 1]
            delta_scale = a_bar * (g_scale + np.sum(g_scale * a_bar, axis=-1, keepdims=True))
            delta_scale += floor
        tensors[f"dW{l + 1}"] = delta_scale.T @ fwd.a_scale[l] + floor
        if p.biases[l] is not None:
            tensors[f"db{l + 1}"] = delta_scale.sum(axis=0) + floor
        g_scale = delta_scale @ np.abs(p.weights[l]) + floor
    tensors["dX"] = g_scale
    return Scales(float(loss_scale), tensors)


@dataclass(frozen=True)
class Tolerance:
    """Allowed error = factor[dtype] * unit roundoff * scale. Override factor per dtype."""

    factor: dict[str, float] = field(default_factory=lambda: {"float32": 256.0, "float64": 256.0})

    def allowed(self, scales: Scales, dtype: str) -> Scales:
        """The allowed absolute error for the loss and every element, for results in `dtype`."""
        k = self.factor[dtype] * UNIT_ROUNDOFF[dtype]
        return Scales(k * scales.loss, {name: k * s for name, s in scales.tensors.items()})
