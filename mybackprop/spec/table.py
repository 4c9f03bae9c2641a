"""The declarative table of activations, losses and reductions that every part reads.

Each entry carries its NumPy forward and derivative (used by the hand-written levels and by the
tolerance model), its kinks, its domain, and how each oracle spells it. The oracle spellings are
functions of the framework module (``torch`` or ``jax``), so this table imports neither.
Adding an activation is one entry here; nothing else branches on names.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
HUBER_DELTA = 1.0

def _erfc(x: Array) -> Array:
    """math.erfc, elementwise (exact to an ulp; NumPy has no erf). Through a list: on the few
    hundred numbers of a random case's layer that is ~2x np.vectorize's speed (same values)."""
    numbers = x.ravel().tolist()
    return np.fromiter(map(math.erfc, numbers), np.float64, len(numbers)).reshape(x.shape)


def _sigmoid(z: Array) -> Array:
    # Stable on both tails: exp only ever sees -|z|, so large logits cannot overflow.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _normal_cdf(z: Array) -> Array:
    # erfc(-z/sqrt2)/2 rather than (1 + erf)/2: no cancellation on the left tail.
    return (0.5 * _erfc(-np.asarray(z, dtype=np.float64) * SQRT_HALF)).astype(z.dtype)


def _normal_pdf(z: Array) -> Array:
    return INV_SQRT_2PI * np.exp(-0.5 * np.minimum(z * z, 1e4))


def _softmax(z: Array) -> Array:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sech_squared(z: Array) -> Array:
    """1 - tanh(z)^2 without the cancellation: 4 e^(-2|z|) / (1 + e^(-2|z|))^2."""
    e = np.exp(-2 * np.abs(z))
    return 4 * e / (1 + e) ** 2


def logsumexp(z: Array) -> Array:
    """log(sum(exp(z))) over the last axis, kept (stable: the row's max taken out first)."""
    m = z.max(axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def _softmax_jacobian(z: Array, a: Array) -> Array:
    """da_i/dz_j = a_i (1[i=j] - a_j), shape (N, n, n)."""
    eye = np.eye(a.shape[-1], dtype=a.dtype)
    return a[..., :, None] * (eye - a[..., None, :])


def _softmax_vjp(z: Array, a: Array, grad_a: Array) -> Array:
    """The Jacobian contraction without forming it: a * (g - <g, a>)."""
    return a * (grad_a - np.sum(grad_a * a, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Kink:
    """A point where the derivative is not defined, and the value each framework uses there."""

    at: float  # the pre-activation z where left and right derivatives differ (kink mode aims here)
    left: float  # derivative just left of the kink
    right: float  # derivative just right of the kink
    conventions: dict[str, float]  # f'(at) per framework; a difference is a convention, not a bug


@dataclass(frozen=True)
class Formulation:
    """A common way of writing an activation that is less accurate than its usual formula
    somewhere: sigmoid as (1 + tanh(z/2)) / 2 is off by an ulp of 1 below zero, where sigmoid
    itself is small. A candidate is judged with `terms` (units of u, added to the value's and
    the derivative's) only where it is measured to compute that way (harness/formulation.py
    probes its loss at `probes[dtype]`, pre-activations where the two ways differ by more than
    1e-3 of the value); everyone else is held to the usual formula's rounding."""

    formula: str
    forward: Callable[[Array], Array]  # f(z) that way, in z's own dtype (the probe's self-check)
    terms: Callable[[Array, Array], Array]
    probes: dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class Activation:
    """One activation function: the single source for every candidate, oracle and tolerance."""

    name: str  # the name used in architectures, CLI options and reports
    formula: str  # f(z) for people: docs/reference/table.md is generated from it
    forward: Callable[[Array], Array]  # a = f(z), NumPy, stable for |z| up to float max
    derivative: Callable[[Array, Array], Array]  # f'(z) from (z, a); softmax: Jacobian (N, n, n)
    second_derivative: Callable[[Array, Array], Array] | None  # f''(z); feeds the tolerance
    torch: Callable[[Any, Any], Any]  # (torch, z) -> a: the PyTorch oracle's spelling
    jax: Callable[[Any, Any, Any], Any]  # (jax, z, unit_mask) -> a: the JAX oracle's spelling
    kinks: tuple[Kink, ...] = ()  # points where f' is undefined; strategies avoid them by default
    domain: tuple[float, float] = (-math.inf, math.inf)  # the z where f is defined
    elementwise: bool = True  # False for softmax: its Jacobian is a full matrix per sample
    # (z, a, dL/da) -> dL/dz where the Jacobian is not diagonal (softmax)
    vjp: Callable[[Array, Array, Array], Array] | None = None
    # Size of the terms a usual formula sums to get f(z) and f'(z): the tolerance model judges a
    # result by what cancelled in it (1 - tanh^2 near saturation), not by its own size.
    value_terms: Callable[[Array, Array], Array] | None = None
    derivative_terms: Callable[[Array, Array], Array] | None = None
    # Where f'(z)'s usual formula cancels toward saturation (a(1 - a) as a -> 1, 1 - a^2 as
    # |a| -> 1), the exact distance left, computed without the cancellation: once it is below
    # an ulp, a rounds to its limit and f' to exactly 0, so the error is that distance, not an
    # ulp of 1 (a gradient through a unit saturated on one side is then judged to its digits).
    saturation: Callable[[Array, Array], Array] | None = None
    # A constant of the formula (leaky_relu's slope, elu's alpha): the name of the Parameter
    # that sets it, and its value in this entry. The oracles' spellings with it as data:
    # (jax, z, unit_mask, value) -> a, so one compiled function serves every value.
    parameter: str | None = None
    value: float | None = None
    jax_with: Callable[[Any, Any, Any, Any], Any] | None = None
    # A less accurate way people also write it, allowed for those measured to write it so
    looser: Formulation | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"activation name {self.name!r} must be an identifier")
        if not self.elementwise and self.vjp is None:
            raise ValueError(f"activation {self.name}: a non-elementwise entry needs a vjp")
        if self.domain[0] >= self.domain[1]:
            raise ValueError(f"activation {self.name}: empty domain {self.domain}")
        if (self.parameter is None) != (self.value is None) or \
                (self.parameter is None) != (self.jax_with is None):
            raise ValueError(f"activation {self.name}: a parameter needs its value and a JAX "
                             "spelling that takes it, and only a parameter does")

    def backward(self, z: Array, a: Array, grad_a: Array) -> Array:
        """dL/dz from dL/da, for a batch (N, n)."""
        if self.vjp is not None:
            return self.vjp(z, a, grad_a)
        return grad_a * self.derivative(z, a)

    def value_scale(self, z: Array, a: Array, loose: bool = False) -> Array:
        """The size of what f(z)'s formula adds up; `loose`: with the looser formulation's
        extra rounding, for a candidate measured to compute that way."""
        scale = np.abs(a) if self.value_terms is None else self.value_terms(z, a)
        return scale + self.looser.terms(z, a) if loose and self.looser else scale

    def derivative_scale(self, z: Array, a: Array, abs_derivative: Array | None = None,
                         loose: bool = False) -> Array:
        """The size of what f'(z)'s formula adds up; `abs_derivative`, |f'(z)| if the caller has
        it, is the answer where the formula adds nothing up (it is not computed again)."""
        if self.derivative_terms is not None:
            scale = self.derivative_terms(z, a)
        else:
            scale = np.abs(self.derivative(z, a)) if abs_derivative is None else abs_derivative
        return scale + self.looser.terms(z, a) if loose and self.looser else scale


def _silu_derivative(z: Array, a: Array) -> Array:
    s = _sigmoid(z)
    return s * (1 + z * (1 - s))


def _silu_second(z: Array, a: Array) -> Array:
    s = _sigmoid(z)
    return s * (1 - s) * (2 + z * (1 - 2 * s))


def _sigmoid_prime(z: Array) -> Array:
    s = _sigmoid(z)
    return s * (1 - s)


# gelu's tanh approximation: z (1 + tanh(u)) / 2, u = k (z + c z^3)
GELU_K, GELU_C = math.sqrt(2.0 / math.pi), 0.044715
# selu's constants (Klambauer et al. 2017), as PyTorch and JAX spell them
SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def _gelu_tanh_parts(z: Array) -> tuple[Array, Array, Array, Array]:
    """t = tanh(u), u' = du/dz, u'' and |u|'s size, for u = k (z + c z^3)."""
    u = GELU_K * (z + GELU_C * z ** 3)
    return (np.tanh(u), GELU_K * (1 + 3 * GELU_C * z * z), 6 * GELU_K * GELU_C * z,
            GELU_K * (np.abs(z) + GELU_C * np.abs(z) ** 3))


def _gelu_tanh_derivative(z: Array, a: Array) -> Array:
    t, du, _, _ = _gelu_tanh_parts(z)
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du


def _gelu_tanh_second(z: Array, a: Array) -> Array:
    t, du, ddu, _ = _gelu_tanh_parts(z)
    return (1 - t * t) * (du + 0.5 * z * (ddu - 2 * t * du * du))


def _gelu_tanh_derivative_terms(z: Array, a: Array) -> Array:
    """1 + t, the product z (1 - t^2) u', and what a rounded u moves through tanh's slope."""
    t, du, _, size = _gelu_tanh_parts(z)
    return 1 + np.abs(t) + np.abs(z) * du * (1 + t * t) + (1 - t * t) * size * (1 + np.abs(z) * du)


def _selu_forward(z: Array) -> Array:
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))

@dataclass(frozen=True)
class Parameter:
    """A constant in an activation's formula that code writes in many ways (leaky_relu's slope:
    0.01, 0.1, 0.2, 0.3 in published code). A problem carries its value; a candidate declares
    the one it hard-codes (the default unless it says otherwise) or None to read it."""

    name: str  # the attribute of Architecture and Problem, the supports key, the CLI option
    activation: str  # the activation whose formula takes it
    default: float  # the table entry's value, and what a candidate that declares nothing has
    drawn: tuple[float, ...]  # what a run draws for a candidate that reads it
    meaning: str  # for messages and docs: "the slope below zero"
    low: float = 0.0  # the smallest value allowed (inclusive)
    # The largest (inclusive): past it, float32 overflows within a few layers, and no run
    # judges anything but overflow (a slope of 1e30 made every correct answer an error).
    high: float = 10.0

    def check(self, value: Any) -> float:
        """The value as a float, or ValueError naming the problem and the range."""
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
                or not math.isfinite(value) or not self.low <= value <= self.high:
            raise ValueError(f"{self.name} is {value!r}: {self.activation}'s {self.meaning} is "
                             f"a number from {self.low:g} to {self.high:g}")
        return float(value)


PARAMETER_TABLE: tuple[Parameter, ...] = (
    Parameter("leaky_slope", "leaky_relu", 0.01, (0.01, 0.1, 0.2, 0.3), "slope below zero"),
    Parameter("elu_alpha", "elu", 1.0, (1.0, 0.5, 1.5), "alpha (the scale below zero)"),
)
PARAMETERS: dict[str, Parameter] = {p.name: p for p in PARAMETER_TABLE}
PARAMETER_DEFAULTS: dict[str, float] = {p.name: p.default for p in PARAMETER_TABLE}


def _leaky_relu(slope: float) -> Activation:
    return Activation(
        name="leaky_relu",
        formula="z for z > 0, else s z (s: leaky_slope, default 0.01)",
        forward=lambda z: np.where(z > 0, z, slope * z),
        derivative=lambda z, a: np.where(z > 0, 1, slope).astype(z.dtype),
        second_derivative=lambda z, a: np.zeros_like(z),
        torch=lambda torch, z: torch.nn.functional.leaky_relu(z, slope),
        jax=lambda jax, z, mask: jax.nn.leaky_relu(z, slope),
        # PyTorch takes the slope at 0, JAX takes 1 (jnp.where(x >= 0, ...)).
        kinks=(Kink(at=0.0, left=slope, right=1.0, conventions={"torch": slope, "jax": 1.0}),),
        parameter="leaky_slope",
        value=slope,
        jax_with=lambda jax, z, mask, s: jax.nn.leaky_relu(z, s),
    )


def _elu(alpha: float) -> Activation:
    # alpha e^z - alpha below zero: f' = a + alpha there. At alpha = 1 it is smooth at 0;
    # otherwise the slope jumps from alpha to 1, and both frameworks take alpha at 0 (their
    # where(z > 0, ...) sends 0 to the exponential side).
    kinks = () if alpha == 1.0 else (
        Kink(at=0.0, left=alpha, right=1.0, conventions={"torch": alpha, "jax": alpha}),)
    return Activation(
        name="elu",
        formula="z for z > 0, else α (e^z - 1) (α: elu_alpha, default 1; a kink at 0 where "
                "α ≠ 1)",
        forward=lambda z: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
        derivative=lambda z, a: np.where(z > 0, 1, a + alpha).astype(z.dtype),
        second_derivative=lambda z, a: np.where(z > 0, 0, a + alpha).astype(z.dtype),
        torch=lambda torch, z: torch.nn.functional.elu(z, alpha=alpha),
        jax=lambda jax, z, mask: jax.nn.elu(z, alpha=alpha),
        kinks=kinks,
        # α (exp(z) - 1) and a + α are both fine formulas whose error is an ulp of α, not of a.
        value_terms=lambda z, a: np.abs(a) + alpha * (z <= 0),
        derivative_terms=lambda z, a: np.where(z > 0, 1, np.abs(a) + alpha).astype(z.dtype),
        parameter="elu_alpha",
        value=alpha,
        jax_with=lambda jax, z, mask, al: jax.nn.elu(z, alpha=al),
    )


_BUILDERS: dict[str, Callable[[float], Activation]] = {"leaky_relu": _leaky_relu, "elu": _elu}


@functools.lru_cache(maxsize=256)
def parameterized(name: str, value: float) -> Activation:
    """The entry of activation `name` with its parameter at `value` (the table's own entry at
    the default), one object per value."""
    parameter = PARAMETERS[ACTIVATIONS[name].parameter]  # type: ignore[index]
    if value == parameter.default:
        return ACTIVATIONS[name]
    return _BUILDERS[name](parameter.check(value))


ACTIVATION_TABLE: tuple[Activation, ...] = (
    Activation(
        name="identity",
        formula="z",
        forward=lambda z: z,
        derivative=lambda z, a: np.ones_like(z),
        second_derivative=lambda z, a: np.zeros_like(z),
        torch=lambda torch, z: z,
        jax=lambda jax, z, mask: z,
    ),
    Activation(
        name="relu",
        formula="max(z, 0)",
        forward=lambda z: np.maximum(z, 0),
        derivative=lambda z, a: (z > 0).astype(z.dtype),
        second_derivative=lambda z, a: np.zeros_like(z),
        torch=lambda torch, z: torch.relu(z),
        jax=lambda jax, z, mask: jax.nn.relu(z),
        kinks=(Kink(at=0.0, left=0.0, right=1.0, conventions={"torch": 0.0, "jax": 0.0}),),
    ),
    _leaky_relu(PARAMETER_DEFAULTS["leaky_slope"]),
    Activation(
        name="sigmoid",
        formula="1 / (1 + e^(-z))",
        forward=_sigmoid,
        derivative=lambda z, a: a * (1 - a),
        second_derivative=lambda z, a: a * (1 - a) * (1 - 2 * a),
        torch=lambda torch, z: torch.sigmoid(z),
        jax=lambda jax, z, mask: jax.nn.sigmoid(z),
        # a(1 - a) with a rounded to 1 loses everything: the error scale is |a|(1 + |a|).
        derivative_terms=lambda z, a: np.abs(a) * (1 + np.abs(a)),
        saturation=lambda z, a: _sigmoid(-z),  # 1 - a
        # (1 + tanh(z / 2)) / 2, a common form, is off by an ulp of 1 below zero, where a is
        # small: an absolute error there, in the value and in a(1 - a). Probed where a is
        # about 100 of those ulps (1e-2 of a); 1 / (1 + e^-z) is right to an ulp of a there.
        looser=Formulation("(1 + tanh(z / 2)) / 2", lambda z: (1 + np.tanh(z / 2)) / 2,
                           lambda z, a: (z < 0).astype(np.float64),
                           {"float32": (-12.7, -13.3, -14.1), "float64": (-31.3, -32.1, -33.7)}),
    ),
    Activation(
        name="tanh",
        formula="tanh(z)",
        forward=np.tanh,
        derivative=lambda z, a: 1 - a * a,
        second_derivative=lambda z, a: -2 * a * (1 - a * a),
        torch=lambda torch, z: torch.tanh(z),
        jax=lambda jax, z, mask: jax.numpy.tanh(z),
        derivative_terms=lambda z, a: 1 + a * a,
        saturation=lambda z, a: _sech_squared(z),  # 1 - a^2
    ),
    Activation(
        name="softplus",
        formula="log(1 + e^z) (no threshold switch)",
        forward=lambda z: np.logaddexp(z, 0),
        derivative=lambda z, a: _sigmoid(z),
        second_derivative=lambda z, a: _sigmoid_prime(z),
        # torch.nn.functional.softplus switches to z above a threshold; logaddexp never does.
        torch=lambda torch, z: torch.logaddexp(z, torch.zeros_like(z)),
        jax=lambda jax, z, mask: jax.numpy.logaddexp(z, 0.0),
        value_terms=lambda z, a: np.abs(a) + np.abs(z),
    ),
    _elu(PARAMETER_DEFAULTS["elu_alpha"]),
    Activation(
        name="gelu",
        formula="z Φ(z) = z (1 + erf(z / √2)) / 2 (exact, erf form)",
        forward=lambda z: z * _normal_cdf(z),
        derivative=lambda z, a: _normal_cdf(z) + z * _normal_pdf(z),
        second_derivative=lambda z, a: _normal_pdf(z) * (2 - z * z),
        torch=lambda torch, z: torch.nn.functional.gelu(z, approximate="none"),
        # jax.nn.gelu defaults to the tanh approximation; the design asks for the exact erf form.
        jax=lambda jax, z, mask: jax.nn.gelu(z, approximate=False),
        # z * (1 + erf(z/sqrt2)) / 2 cancels on the left tail: its error is an ulp of |z|.
        value_terms=lambda z, a: np.abs(z),
        derivative_terms=lambda z, a: 1 + np.abs(z) * _normal_pdf(z),
    ),
    Activation(
        name="silu",
        formula="z sigmoid(z)",
        forward=lambda z: z * _sigmoid(z),
        derivative=_silu_derivative,
        second_derivative=_silu_second,
        torch=lambda torch, z: torch.nn.functional.silu(z),
        jax=lambda jax, z, mask: jax.nn.silu(z),
        derivative_terms=lambda z, a: _sigmoid(z) * (1 + np.abs(z) * (1 + _sigmoid(z))),
    ),
    Activation(
        name="gelu_tanh",
        formula="z (1 + tanh(√(2/π) (z + 0.044715 z³))) / 2 (the tanh approximation)",
        forward=lambda z: 0.5 * z * (1 + _gelu_tanh_parts(z)[0]),
        derivative=_gelu_tanh_derivative,
        second_derivative=_gelu_tanh_second,
        torch=lambda torch, z: torch.nn.functional.gelu(z, approximate="tanh"),
        jax=lambda jax, z, mask: jax.nn.gelu(z, approximate=True),
        # z (1 + tanh u) / 2 cancels on the left tail, and a rounded u moves tanh by 1 - t^2
        value_terms=lambda z, a: np.abs(z) * (1 + (1 - _gelu_tanh_parts(z)[0] ** 2)
                                              * _gelu_tanh_parts(z)[3]),
        derivative_terms=_gelu_tanh_derivative_terms,
    ),
    Activation(
        name="selu",
        formula="1.0507 z for z > 0, else 1.0507 · 1.6733 (e^z - 1) (kink at 0)",
        forward=_selu_forward,
        derivative=lambda z, a: np.where(z > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA
                                         ).astype(z.dtype),
        second_derivative=lambda z, a: np.where(z > 0, 0.0, a + SELU_SCALE * SELU_ALPHA
                                                ).astype(z.dtype),
        torch=lambda torch, z: torch.nn.functional.selu(z),
        jax=lambda jax, z, mask: jax.nn.selu(z),
        # left slope scale * alpha = 1.758, right slope scale = 1.051: both frameworks take the
        # left one at 0 (their elu's where(z > 0, ...))
        kinks=(Kink(at=0.0, left=SELU_SCALE * SELU_ALPHA, right=SELU_SCALE,
                    conventions={"torch": SELU_SCALE * SELU_ALPHA,
                                 "jax": SELU_SCALE * SELU_ALPHA}),),
        value_terms=lambda z, a: np.abs(a) + SELU_SCALE * SELU_ALPHA * (z <= 0),
        derivative_terms=lambda z, a: np.where(z > 0, SELU_SCALE,
                                               np.abs(a) + SELU_SCALE * SELU_ALPHA
                                               ).astype(z.dtype),
    ),
    Activation(
        name="hardtanh",
        formula="z clipped to [-1, 1] (kinks at -1 and 1)",
        forward=lambda z: np.clip(z, -1.0, 1.0),
        derivative=lambda z, a: (np.abs(z) < 1).astype(z.dtype),
        second_derivative=lambda z, a: np.zeros_like(z),
        torch=lambda torch, z: torch.nn.functional.hardtanh(z),
        jax=lambda jax, z, mask: jax.nn.hard_tanh(z),
        # PyTorch's slope at -1 and 1 is 0 (open interval), JAX's 1 (its where keeps z there)
        kinks=(Kink(at=-1.0, left=0.0, right=1.0, conventions={"torch": 0.0, "jax": 1.0}),
               Kink(at=1.0, left=1.0, right=0.0, conventions={"torch": 0.0, "jax": 1.0})),
    ),
    Activation(
        name="softmax",
        formula="e^(z_i) / Σ_j e^(z_j) over the features (not elementwise: a Jacobian per sample)",
        forward=_softmax,
        derivative=_softmax_jacobian,
        second_derivative=None,
        torch=lambda torch, z: torch.softmax(z, dim=-1),
        # The JAX oracle pads layers to shared shapes; `where` keeps padding out of the sum.
        jax=lambda jax, z, mask: jax.nn.softmax(z, axis=-1, where=mask),
        elementwise=False,
        vjp=_softmax_vjp,
        # exp(z - m) / sum, or exp(z - logsumexp(z)): the exponent z - m - log(sum) is rounded
        # to an ulp of the shift it subtracts, |m| + log(sum), and exp makes that a relative
        # error of a. (Found by a correct library's exp(z - logsumexp(z)) at |z| ~ 200.)
        value_terms=lambda z, a: np.abs(a) * (1 + np.abs(logsumexp(z))),
    ),
)


@dataclass(frozen=True)
class Loss:
    """One loss: per-sample or per-element terms, their derivative, and the oracles' spellings."""

    name: str  # the name used in architectures, CLI options and reports
    formula: str  # one term for people: docs/reference/table.md is generated from it
    targets: str  # "dense" (N, n_L) reals, "probabilities" (N, n_L) in [0, 1], "classes" (N,) ints
    terms: Callable[[Array, Array], Array]  # the loss before reduction, stable for large logits
    derivative: Callable[[Array, Array], Array]  # d terms / d yhat, shape (N, n_L)
    per_sample: bool  # True when there is one term per sample (cross-entropy), else one per element
    torch: Callable[[Any, Any, Any, str], Any]  # (torch, yhat, y, "mean"|"sum") -> scalar loss
    jax: Callable[[Any, Any, Any, Any], Any]  # (jax, yhat, y, unit_mask) -> terms, unreduced
    derivative_terms: Callable[[Array, Array], Array]  # error scale of the derivative's terms
    # |d2 terms / d yhat2| (for cross-entropy: the softmax p, whose Jacobian is diag(p) - p p^T):
    # how much a rounding error in yhat moves the derivative. Feeds the tolerance.
    curvature: Callable[[Array, Array], Array]
    # Size of what a usual formula adds up to get each term (default: the term itself).
    value_terms: Callable[[Array, Array], Array] | None = None
    domain: str = "any finite targets"  # what the targets must satisfy; validation enforces it
    # Points where d terms / d yhat jumps, in the variable `kink_variable` names (l1: yhat - y;
    # multiclass_hinge: each margin yhat_j - yhat_y + 1). Draws keep away from them by default.
    kinks: tuple[Kink, ...] = ()
    # (yhat, y) -> the kink variable, one per term element (l1) or per (sample, class) (hinge)
    kink_variable: Callable[[Array, Array], Array] | None = None
    # The output activation the loss is written for: a loss on probabilities takes the output of
    # a softmax (or sigmoid) layer. None: any.
    output: str | None = None
    # (output pre-activations Z_L, dtype name) -> (how far the case is toward where the usual
    # formula cannot represent it in that dtype, 1 at the limit; what goes wrong past it):
    # drawn cases are scaled to stay inside, and a case past it is named for what it is.
    soundness: Callable[[Array, str], tuple[float, str]] | None = None
    # True: an error in yhat moves the derivative through a softmax of yhat (cross-entropy on
    # logits: softmax(yhat) - y), whose Jacobian is the curvature; else by |curvature| e.
    through_softmax: bool = False
    # (yhat, y, s) -> d terms / d yhat taking the slope s at the kinks (kink mode compares
    # each framework's convention); derivative() is one of them.
    kink_derivative: Callable[[Array, Array, float], Array] | None = None

    def __post_init__(self) -> None:
        if self.targets not in ("dense", "probabilities", "classes"):
            raise ValueError(f"loss {self.name}: unknown target kind {self.targets!r}")
        if self.per_sample != (self.targets == "classes"):
            raise ValueError(f"loss {self.name}: per-sample terms go with class targets")
        if not bool(self.kinks) == (self.kink_variable is not None) == (
                self.kink_derivative is not None):
            raise ValueError(f"loss {self.name}: kinks need a kink variable and a kink "
                             "derivative, and only they do")

    def value_scale(self, y_hat: Array, y: Array) -> Array:
        return np.abs(self.terms(y_hat, y)) if self.value_terms is None else self.value_terms(
            y_hat, y)

    def terms_per_sample(self, n_out: int) -> int:
        return 1 if self.per_sample else n_out


def _log_softmax(yhat: Array) -> Array:
    shifted = yhat - yhat.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _one_hot(labels: Array, n: int, dtype: Any) -> Array:
    return (np.arange(n) == np.asarray(labels)[:, None]).astype(dtype)


def _ce_terms(yhat: Array, y: Array) -> Array:
    return -np.take_along_axis(_log_softmax(yhat), np.asarray(y)[:, None], axis=-1)[:, 0]


def _ce_derivative(yhat: Array, y: Array) -> Array:
    return _softmax(yhat) - _one_hot(y, yhat.shape[-1], yhat.dtype)


# Where a probability formula is sound, per dtype: every softmax probability at least e^-80
# (float32's smallest normal number is e^-87.3; one over it must not overflow), and sigmoid
# outputs off 0 and 1 with room to spare (float32 rounds sigmoid(z) to 1 from z = 16.6).
_SPREAD_LIMIT = {"float32": 80.0, "float64": 700.0}
_SIGMOID_LIMIT = {"float32": 15.0, "float64": 34.0}


def _softmax_soundness(z: Array, dtype: str) -> tuple[float, str]:
    spread = float(np.max(z.max(axis=-1) - z.min(axis=-1)))
    return spread / _SPREAD_LIMIT[dtype], (
        f"a softmax probability is below e^-{_SPREAD_LIMIT[dtype]:g} (the logits spread "
        f"{spread:.3g}), where the probability form underflows in {dtype}")


def _sigmoid_soundness(z: Array, dtype: str) -> tuple[float, str]:
    top = float(np.max(np.abs(z)))
    return top / _SIGMOID_LIMIT[dtype], (
        f"a sigmoid output is within e^-{_SIGMOID_LIMIT[dtype]:g} of 0 or 1 (|z| = {top:.3g}), "
        f"where the probability form rounds it to 0 or 1 in {dtype}")


def _class_mask(yhat: Array, y: Array) -> Array:
    return np.arange(yhat.shape[-1]) == np.asarray(y)[:, None]


def _cce_terms(p: Array, y: Array) -> Array:
    return -np.log(np.take_along_axis(p, np.asarray(y)[:, None], axis=-1)[:, 0])


def _cce_derivative(p: Array, y: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.where(_class_mask(p, y), -1.0 / p, 0.0).astype(p.dtype)


def _bce_terms(p: Array, y: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _hinge_margins(yhat: Array, y: Array) -> Array:
    """yhat_j - yhat_y + 1 per (sample, class); the target class's own is not a term."""
    own = np.take_along_axis(yhat, np.asarray(y)[:, None], axis=-1)
    return yhat - own + 1


def _hinge_active(yhat: Array, y: Array) -> Array:
    return (_hinge_margins(yhat, y) > 0) & ~_class_mask(yhat, y)


def _hinge_terms(yhat: Array, y: Array) -> Array:
    return np.where(_hinge_active(yhat, y), _hinge_margins(yhat, y), 0.0).sum(axis=-1)


def _hinge_kink_derivative(yhat: Array, y: Array, s: float) -> Array:
    """Each margin's slope (1 above 0, s at 0) for its class, minus their sum for the target."""
    margins, others = _hinge_margins(yhat, y), ~_class_mask(yhat, y)
    slope = (np.where(margins > 0, 1.0, 0.0) + np.where(margins == 0, s, 0.0)) * others
    slope = slope.astype(yhat.dtype)
    return slope - _class_mask(yhat, y) * slope.sum(axis=-1, keepdims=True)


def _hinge_derivative(yhat: Array, y: Array) -> Array:
    return _hinge_kink_derivative(yhat, y, 0.0)


def _torch_hinge(torch: Any, yhat: Any, y: Any, r: str) -> Any:
    own = yhat.gather(1, y[:, None])
    others = torch.arange(yhat.shape[1]) != y[:, None]
    terms = (torch.clamp(yhat - own + 1, min=0) * others).sum(dim=1)
    return {"mean": terms.mean(), "sum": terms.sum(), "none": terms}[r]


def _jax_hinge(jax: Any, yhat: Any, y: Any, mask: Any) -> Any:
    jnp = jax.numpy
    own = jnp.take_along_axis(yhat, y[:, None], axis=-1)
    others = (jnp.arange(yhat.shape[1]) != y[:, None]) & mask
    return jnp.sum(jnp.where(others, jnp.maximum(yhat - own + 1, 0.0), 0.0), axis=-1)


def _torch_reduce(terms: Any, r: str) -> Any:
    return {"mean": terms.mean(), "sum": terms.sum(), "none": terms}[r]


def _huber_terms(yhat: Array, y: Array) -> Array:
    d = np.abs(yhat - y)
    return np.where(d <= HUBER_DELTA, 0.5 * d * d, HUBER_DELTA * (d - 0.5 * HUBER_DELTA))


LOSS_TABLE: tuple[Loss, ...] = (
    Loss(
        name="mse",
        formula="(ŷ - y)²",
        targets="dense",
        terms=lambda yhat, y: (yhat - y) ** 2,
        derivative=lambda yhat, y: 2 * (yhat - y),
        per_sample=False,
        torch=lambda torch, yhat, y, r: torch.nn.functional.mse_loss(yhat, y, reduction=r),
        jax=lambda jax, yhat, y, mask: (yhat - y) ** 2,
        derivative_terms=lambda yhat, y: 2 * (np.abs(yhat) + np.abs(y)),
        curvature=lambda yhat, y: np.full_like(yhat, 2.0),
    ),
    Loss(
        name="softmax_cross_entropy",
        formula="-log softmax(ŷ)[y], one term per sample (log-sum-exp: stable for large logits)",
        targets="classes",
        terms=_ce_terms,
        derivative=_ce_derivative,
        per_sample=True,
        torch=lambda torch, yhat, y, r: torch.nn.functional.cross_entropy(yhat, y, reduction=r),
        jax=lambda jax, yhat, y, mask: -jax.numpy.take_along_axis(
            jax.nn.log_softmax(yhat, axis=-1, where=mask), y[:, None], axis=-1)[:, 0],
        derivative_terms=lambda yhat, y: _softmax(yhat) + _one_hot(y, yhat.shape[-1], yhat.dtype),
        curvature=lambda yhat, y: _softmax(yhat),
        through_softmax=True,
        # log(sum exp(yhat - max)) takes the log of a number >= 1: an ulp of 1, however small
        # the loss (a confident right answer has a loss far below float32's resolution of 1).
        value_terms=lambda yhat, y: np.abs(_ce_terms(yhat, y)) + 1,
        domain="integer class indices in [0, n_out)",
    ),
    Loss(
        name="binary_cross_entropy_with_logits",
        formula="max(ŷ, 0) - ŷ y + log(1 + e^(-|ŷ|)), the cross-entropy of sigmoid(ŷ) (stable)",
        targets="probabilities",
        # softplus(z) - z*y, written so neither exp nor log sees a large argument.
        terms=lambda yhat, y: np.logaddexp(yhat, 0) - yhat * y,
        derivative=lambda yhat, y: _sigmoid(yhat) - y,
        per_sample=False,
        torch=lambda torch, yhat, y, r: torch.nn.functional.binary_cross_entropy_with_logits(
            yhat, y, reduction=r),
        jax=lambda jax, yhat, y, mask: jax.numpy.logaddexp(yhat, 0.0) - yhat * y,
        derivative_terms=lambda yhat, y: _sigmoid(yhat) + np.abs(y),
        curvature=lambda yhat, y: _sigmoid_prime(yhat),
        value_terms=lambda yhat, y: np.logaddexp(yhat, 0) + np.abs(yhat * y),
        domain="targets in [0, 1]",
    ),
    Loss(
        name="huber",
        formula="(ŷ - y)² / 2 where |ŷ - y| ≤ 1, else |ŷ - y| - 1/2 (delta 1)",
        targets="dense",
        terms=_huber_terms,
        derivative=lambda yhat, y: np.clip(yhat - y, -HUBER_DELTA, HUBER_DELTA),
        per_sample=False,
        torch=lambda torch, yhat, y, r: torch.nn.functional.huber_loss(
            yhat, y, reduction=r, delta=HUBER_DELTA),
        jax=lambda jax, yhat, y, mask: _jax_huber(jax, yhat - y),
        # clip is flat past delta: a rounded d moves it only if it crosses delta, which from
        # beyond 2 delta takes an error of delta itself.
        derivative_terms=lambda yhat, y: np.where(
            np.abs(yhat - y) <= 2 * HUBER_DELTA, np.abs(yhat) + np.abs(y), 0.0),
        curvature=lambda yhat, y: (np.abs(yhat - y) <= 2 * HUBER_DELTA).astype(yhat.dtype),
    ),
)


LOSS_TABLE += (
    Loss(
        name="half_mse",
        formula="(ŷ - y)² / 2",
        targets="dense",
        terms=lambda yhat, y: 0.5 * (yhat - y) ** 2,
        derivative=lambda yhat, y: yhat - y,
        per_sample=False,
        torch=lambda torch, yhat, y, r: 0.5 * torch.nn.functional.mse_loss(yhat, y, reduction=r),
        jax=lambda jax, yhat, y, mask: 0.5 * (yhat - y) ** 2,
        derivative_terms=lambda yhat, y: np.abs(yhat) + np.abs(y),
        curvature=lambda yhat, y: np.ones_like(yhat),
    ),
    Loss(
        name="categorical_cross_entropy",
        formula="-log ŷ[y] = -Σ_j y_j log ŷ_j on the probabilities of a softmax output layer",
        targets="classes",
        terms=_cce_terms,
        derivative=_cce_derivative,
        per_sample=True,
        torch=lambda torch, p, y, r: torch.nn.functional.nll_loss(torch.log(p), y, reduction=r),
        jax=lambda jax, p, y, mask: -jax.numpy.log(
            jax.numpy.take_along_axis(jax.numpy.where(mask, p, 1.0), y[:, None], axis=-1)[:, 0]),
        derivative_terms=lambda p, y: np.abs(_cce_derivative(p, y)),
        # d/dp_y of -1/p_y is 1/p_y^2: an error e p in p_y moves it by e / p_y
        curvature=lambda p, y: np.where(_class_mask(p, y), 1.0 / np.maximum(p, 1e-300) ** 2,
                                        0.0),
        value_terms=lambda p, y: np.abs(_cce_terms(p, y)) + 1,
        domain="integer class indices in [0, n_out)",
        output="softmax",
        soundness=_softmax_soundness,
    ),
    Loss(
        name="binary_cross_entropy",
        formula="-(y log ŷ + (1 - y) log(1 - ŷ)) on the probabilities of a sigmoid output layer",
        targets="probabilities",
        terms=_bce_terms,
        derivative=lambda p, y: (p - y) / (p * (1 - p)),
        per_sample=False,
        # by hand, not F.binary_cross_entropy: that clamps its log at -100 and its derivative's
        # denominator at 1e-12
        torch=lambda torch, p, y, r: _torch_reduce(
            -(y * torch.log(p) + (1 - y) * torch.log1p(-p)), r),
        jax=lambda jax, p, y, mask: _jax_bce(jax, jax.numpy.where(mask, p, 0.5), y),
        derivative_terms=lambda p, y: (np.abs(y) + 1) / (p * (1 - p)),
        curvature=lambda p, y: y / p ** 2 + (1 - y) / (1 - p) ** 2,
        # log(1 - p) of a p rounded near 1 is off by an ulp of 1 over (1 - p)
        value_terms=lambda p, y: np.abs(_bce_terms(p, y)) + 1 + p / (1 - p) + (1 - p) / p,
        domain="targets in [0, 1]",
        output="sigmoid",
        soundness=_sigmoid_soundness,
    ),
    Loss(
        name="l1",
        formula="|ŷ - y| (kink at ŷ = y)",
        targets="dense",
        terms=lambda yhat, y: np.abs(yhat - y),
        derivative=lambda yhat, y: np.sign(yhat - y),
        per_sample=False,
        torch=lambda torch, yhat, y, r: torch.nn.functional.l1_loss(yhat, y, reduction=r),
        jax=lambda jax, yhat, y, mask: jax.numpy.abs(yhat - y),
        derivative_terms=lambda yhat, y: np.zeros_like(yhat),  # ±1, exact off the kink
        curvature=lambda yhat, y: np.zeros_like(yhat),
        value_terms=lambda yhat, y: np.abs(yhat) + np.abs(y),
        # d|d|/dd at 0: PyTorch's l1_loss takes sign(0) = 0, JAX's abs takes 1
        kinks=(Kink(at=0.0, left=-1.0, right=1.0, conventions={"torch": 0.0, "jax": 1.0}),),
        kink_variable=lambda yhat, y: yhat - y,
        kink_derivative=lambda yhat, y, s: np.where(yhat == y, s, np.sign(yhat - y)).astype(
            yhat.dtype),
    ),
    Loss(
        name="multiclass_hinge",
        formula="Σ_{j≠y} max(0, ŷ_j - ŷ_y + 1) (the SVM loss; kinks where a margin is 0)",
        targets="classes",
        terms=_hinge_terms,
        derivative=_hinge_derivative,
        per_sample=True,
        torch=_torch_hinge,
        jax=_jax_hinge,
        derivative_terms=lambda yhat, y: np.zeros_like(yhat),  # counts, exact off the kinks
        curvature=lambda yhat, y: np.zeros_like(yhat),
        value_terms=lambda yhat, y: np.where(_hinge_active(yhat, y), np.abs(yhat) + np.abs(
            np.take_along_axis(yhat, np.asarray(y)[:, None], axis=-1)) + 1, 0.0).sum(axis=-1),
        domain="integer class indices in [0, n_out)",
        # max(0, m)'(0): PyTorch's clamp takes 1, JAX's maximum takes 1/2
        kinks=(Kink(at=0.0, left=0.0, right=1.0, conventions={"torch": 1.0, "jax": 0.5}),),
        kink_variable=lambda yhat, y: np.where(_class_mask(yhat, y), np.inf,
                                               _hinge_margins(yhat, y)),
        kink_derivative=_hinge_kink_derivative,
    ),
)


def _jax_bce(jax: Any, p: Any, y: Any) -> Any:
    return -(y * jax.numpy.log(p) + (1 - y) * jax.numpy.log1p(-p))


def _jax_huber(jax: Any, d: Any) -> Any:
    abs_d = jax.numpy.abs(d)
    return jax.numpy.where(
        abs_d <= HUBER_DELTA, 0.5 * d * d, HUBER_DELTA * (abs_d - 0.5 * HUBER_DELTA))


@dataclass(frozen=True)
class Reduction:
    """How the terms become one number: loss = sum(terms) / divisor."""

    name: str
    formula: str  # the divisor for people: docs/reference/table.md is generated from it
    # divisor(N, terms per sample): mean over every term, over nothing, or over samples.
    divisor: Callable[[int, int], int]
    torch_native: str  # the reduction= string PyTorch's loss takes
    torch_divides_by_batch: bool = False  # batch_mean: PyTorch has no such reduction; sum / N

    def __post_init__(self) -> None:
        if self.torch_native not in ("mean", "sum"):
            raise ValueError(f"reduction {self.name}: torch has no reduction {self.torch_native!r}")


REDUCTION_TABLE: tuple[Reduction, ...] = (
    Reduction("mean", "N × terms per sample: the mean over every term (PyTorch's default)",
              divisor=lambda n, k: n * k, torch_native="mean"),
    Reduction("sum", "1: the sum of every term", divisor=lambda n, k: 1, torch_native="sum"),
    # The 3Blue1Brown convention: C = 1/N sum_k C_k, each C_k summed over output units.
    Reduction("batch_mean", "N: summed over the output units, averaged over samples",
              divisor=lambda n, k: n, torch_native="sum", torch_divides_by_batch=True),
)

ACTIVATIONS: dict[str, Activation] = {a.name: a for a in ACTIVATION_TABLE}
LOSSES: dict[str, Loss] = {loss.name: loss for loss in LOSS_TABLE}
REDUCTIONS: dict[str, Reduction] = {r.name: r for r in REDUCTION_TABLE}



def _kinked(a: Activation) -> bool:
    """Kinks at the default or at any value of its parameter a run draws (elu where α ≠ 1)."""
    return bool(a.kinks) or (a.parameter is not None and any(
        _BUILDERS[a.name](value).kinks for value in PARAMETERS[a.parameter].drawn))


SMOOTH_ACTIVATIONS: tuple[str, ...] = tuple(a.name for a in ACTIVATION_TABLE if not _kinked(a))
KINKED_ACTIVATIONS: tuple[str, ...] = tuple(a.name for a in ACTIVATION_TABLE if _kinked(a))
KINKED_LOSSES: tuple[str, ...] = tuple(loss.name for loss in LOSS_TABLE if loss.kinks)
DTYPES: dict[str, np.dtype] = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
