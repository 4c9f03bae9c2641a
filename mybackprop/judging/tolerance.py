"""Tolerance: how far a gradient element may be from the oracles, given the dtype and the data.

A first version of the model (a principled one is issue 5): a first-order running error
analysis. Beside every quantity q of the forward and backward pass (computed in float64 from
the candidate's own parameters), it carries e_q, a bound on the rounding error a candidate
computing in its dtype may have in q, in units of that dtype's unit roundoff u:

    product   e(xy)    = |x| e_y + |y| e_x + u e_x e_y + |xy|
    sum       e(sum x) = sum e_x + sqrt(n) sum |x|
    f(z)      e_f      = terms(f) + |f'(z)| e_z            (terms: what a usual formula adds up)

The second-order term u e_x e_y matters when both factors are near zero but uncertain (1 - tanh^2
of a saturated unit times a gradient that is itself a rounding residue). sqrt(n) is the typical
growth of rounding in a sum of n terms (the worst case is n). So a near-zero gradient produced
by cancellation is judged by the size of what cancelled, not by its own size, and an error in a
pre-activation is carried through f' and f''. The allowed difference of an element is
``factor[dtype] * u * e``.

``propagation="quadrature"`` (not the default; measured in bench/tolerance_models.py) adds
propagated errors in quadrature, as independent rounding errors would add: sqrt(sum (|x| e_y)^2)
instead of sum |x| e_y, in products, matrix products and the bias's batch sum. It is tighter, but
errors that recombine (a softmax's shared normaliser, one weight's error in every sample) are not
independent, and its worst measured ratio grows (docs/tolerance.md).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from mybackprop.judging import stochastic
from mybackprop.spec.problem import Problem, SpecError
from mybackprop.spec.table import logsumexp

UNIT_ROUNDOFF: dict[str, float] = {"float32": 2.0**-24, "float64": 2.0**-53}
DEFAULT_FACTOR: dict[str, float] = {"float32": 16.0, "float64": 16.0}
# The smallest normal number over u, added to every bound: underflow in the candidate's dtype
# (sigmoid(-100) is subnormal in float32) may cost a few tiny numbers, but no more.
_UNDERFLOW_FLOOR: dict[str, float] = {
    name: float(np.finfo(name).tiny) / u for name, u in UNIT_ROUNDOFF.items()}


@dataclass(frozen=True)
class Scales:
    """Per-element error bounds, in float64, keyed like Gradients.tensors(), plus the loss."""

    loss: float
    tensors: dict[str, np.ndarray]
    # "Z", "A", "delta": one array per layer (the diagnosis compares a candidate's intermediates)
    intermediates: Mapping[str, list[np.ndarray]] = field(default_factory=dict)

    def at_least(self, other: Scales) -> Scales:
        """These bounds, raised element by element to `other`'s wherever those are larger (a
        replayed slip or kink convention: never tighter than the reference's, and loose enough
        for its own rounding). The intermediates stay this one's."""
        return Scales(max(self.loss, other.loss),
                      {name: np.maximum(bound, other.tensors[name])
                       for name, bound in self.tensors.items()}, self.intermediates)


@dataclass(frozen=True)
class Forward:
    """The float64 forward pass and its error bounds. a[0] is X, a[l] = A_l; z[l - 1] = Z_l.

    The error bounds carry a leading axis, one entry per dtype in `dtypes` (they differ only
    in u and the underflow floor), so the bounds for a float32 candidate and for the float64
    oracles come from one pass over the values.
    """

    dtypes: tuple[str, ...]
    a: list[np.ndarray]
    e_a: list[np.ndarray | None]  # bound on the error of A_l, units of u (X is exact: None)
    z: list[np.ndarray]
    e_z: list[np.ndarray]  # bound on the error of Z_l: the size of what was summed into it
    derivative: list[np.ndarray | None]  # f_l'(Z_l) for elementwise activations, else None
    e_derivative: list[np.ndarray | None]


PROPAGATIONS = ("bound", "quadrature")
# Squares of numbers outside this range under- or overflow in float64: there quadrature falls
# back to the linear sum, which is never smaller.
_SQUARE_SAFE = (1e-150, 1e150)


def _in_quadrature(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The error carried into x @ y from errors e in y, added in quadrature: sqrt(x^2 @ e^2),
    or |x| @ e where the squares are not safe. (Linear bounds gather it into _matmul's terms.)"""
    if all(_square_safe(a) for a in (x, e)):
        return np.sqrt((x * x) @ (e * e))
    return np.abs(x) @ e


def _square_safe(a: np.ndarray) -> bool:
    magnitudes = np.abs(a[a != 0])
    return magnitudes.size == 0 or (
        magnitudes.min() > _SQUARE_SAFE[0] and magnitudes.max() < _SQUARE_SAFE[1])


def _product(x: np.ndarray, e_x: np.ndarray, y: np.ndarray, e_y: np.ndarray,
             u: np.ndarray, quadrature: bool = False) -> np.ndarray:
    """Error bound of the elementwise product x * y: |x| e_y + e_x |y| + u e_x e_y + |x y|."""
    abs_x, abs_y = np.abs(x), np.abs(y)
    if quadrature:
        return np.hypot(x * e_y, e_x * y) + u * e_x * e_y + abs_x * abs_y
    return abs_x * (e_y + abs_y) + e_x * (abs_y + u * e_y)  # the same terms, 3 fewer passes


def _matmul(x: np.ndarray, e_x: np.ndarray, y: np.ndarray, e_y: np.ndarray | None,
            u: np.ndarray, quadrature: bool = False) -> np.ndarray:
    """Error bound of x @ y; e_y None means y is exact (a parameter, or X):

        e_x @ |y| + |x| @ e_y + u e_x @ e_y + sqrt(n) |x| @ |y|      (n: the length of the sums)

    The errors carry a leading dtype axis. Linear bounds gather the four products into two,
    (sqrt(n) |x| + e_x) @ |y| + (|x| + u e_x) @ e_y: the same terms, half the products.
    """
    abs_x, abs_y = np.abs(x), np.abs(y)
    rounding = math.sqrt(x.shape[-1]) * abs_x  # math: a NumPy scalar costs a microsecond
    if not quadrature:
        bound = (rounding + e_x) @ abs_y
        return bound if e_y is None else bound + (abs_x + u * e_x) @ e_y
    # in quadrature the propagated terms add as sqrt(sum of squares): (|y|^T @ e_x^T)^T
    carried = _in_quadrature(y.T, e_x.swapaxes(-1, -2)).swapaxes(-1, -2)
    if e_y is not None:
        carried = np.hypot(carried, _in_quadrature(x, e_y)) + u * (e_x @ e_y)
    return carried + rounding @ abs_y


def _shift(z: np.ndarray) -> np.ndarray:
    """|logsumexp(z)| per row: what a softmax formula subtracts before its exp."""
    with np.errstate(all="ignore"):
        return np.abs(logsumexp(z))


def _softmax_spread(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Bound on a_i (x_i - sum_j a_j x_j) for errors |x_j| <= e_j, rows over the last axis.

    Both softmax and its vjp move with their input only through its spread: a saturated unit
    (a_i ~ 1) barely moves, so the bound is a_i ((1 - a_i) e_i + sum_{j != i} a_j e_j).
    """
    weighted = np.sum(a * e, axis=-1, keepdims=True)
    return np.abs(a) * ((1 - a) * e + (weighted - a * e))


def judging_dtypes(problem: Problem) -> tuple[str, ...]:
    """The dtypes a case is judged in: the candidate's, and float64 for the oracles."""
    name = problem.dtype_name
    return (name,) if name == "float64" else (name, "float64")


@functools.cache
def _roundoff_and_floor(dtypes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """u and the underflow floor of each dtype, on the bounds' leading axis (then N, n); made
    once per dtypes and shared, so read-only."""
    def column(table: dict[str, float]) -> np.ndarray:
        made = np.array([table[d] for d in dtypes]).reshape(-1, 1, 1)
        made.flags.writeable = False
        return made

    return column(UNIT_ROUNDOFF), column(_UNDERFLOW_FLOOR)


def forward_errors(problem: Problem, dtypes: tuple[str, ...] | None = None,
                   propagation: str = "bound", loose: frozenset[str] = frozenset()) -> Forward:
    """The forward pass in float64, with error bounds (units of u) beside every value, one per
    dtype (default: the ones the case is judged in). Made once per problem and reused (the kink
    check of a drawn case and its judging read the same one). `loose`: the activations whose
    looser formulation's rounding is allowed (table.Formulation), for a candidate measured to
    compute them that way."""
    fwd = forward_unless(problem, None, dtypes, propagation, loose)
    assert fwd is not None  # nothing to stop it
    return fwd


# (layer index, Z_l, its error bounds) -> whether to abandon the forward pass there
Stop = Callable[[int, np.ndarray, np.ndarray], bool]


def forward_unless(problem: Problem, stop: Stop | None, dtypes: tuple[str, ...] | None = None,
                   propagation: str = "bound", loose: frozenset[str] = frozenset()
                   ) -> Forward | None:
    """forward_errors, or None as soon as stop(l, Z_l, e_Z_l) is true for a layer (then the
    layers after it are not computed and nothing is kept): the kink check of a drawn case stops
    at the first layer with a unit on a kink, and a draw it rejects costs only that far."""
    dtypes = dtypes or judging_dtypes(problem)
    p = problem.float64()
    loose = _used(problem, loose)
    key = (dtypes, propagation, loose)
    cached = p.__dict__.get("_forward")
    if cached is not None and cached[0] == key:
        fwd = cached[1]
        stopped = stop is not None and any(
            stop(l, z, e_z) for l, (z, e_z) in enumerate(zip(fwd.z, fwd.e_z, strict=True)))
        return None if stopped else fwd
    fwd = _forward(p, dtypes, _quadrature(propagation), stop, loose)
    if fwd is not None:
        object.__setattr__(p, "_forward", (key, fwd))
    return fwd


def _forward(p: Problem, dtypes: tuple[str, ...], quadrature: bool,
             stop: Stop | None, loose: frozenset[str] = frozenset()) -> Forward | None:
    u, floor = _roundoff_and_floor(dtypes)
    fwd = Forward(dtypes, [p.X], [None], [], [], [], [])
    for l, (W, b, f) in enumerate(zip(p.weights, p.biases, p.architecture.activation_specs,
                                      strict=True)):
        a, e_a = fwd.a[-1], fwd.e_a[-1]
        z = a @ W.T
        if e_a is None:  # X is exact: only the rounding of the sums
            rounded = math.sqrt(a.shape[-1]) * (np.abs(a) @ np.abs(W.T))
            e_z = rounded[None] if len(dtypes) == 1 else np.stack((rounded,) * len(dtypes))
        else:
            e_z = _matmul(a, e_a, W.T, None, u, quadrature)
        if b is not None:
            z, e_z = z + b, e_z + np.abs(b)
        if stop is not None and stop(l, z, e_z):
            return None
        out = f.forward(z)
        if f.elementwise:
            d = f.derivative(z, out)
            abs_d = np.abs(d)
            e_out = f.value_scale(z, out, f.name in loose) + abs_d * e_z
            # An intermediate that underflows (sigmoid(z) = 1/(1 + e^-z) is 0 once e^-z
            # overflows, z < -709.8 in float64) loses up to `tiny`, and the formulas multiply it
            # by z: silu = z s(z), silu' = s(z)(1 + z(1 - s(z))), gelu' = Phi(z) + z phi(z).
            # Found by a 100,000-case sweep: at z = -709.85, torch's silu' is 0 where the truth
            # is -5e-306. So the floor here grows with |z|.
            amplified = floor * (1 + np.abs(z))
            fwd.derivative.append(d)
            scale = f.derivative_scale(z, out, abs_d, f.name in loose)
            if f.saturation is not None:  # what cancels is at most what is left to cancel
                scale = scale * np.minimum(1.0, 2 * f.saturation(z, out) / u)
            fwd.e_derivative.append(
                scale + np.abs(f.second_derivative(z, out)) * e_z + amplified)
        else:
            # its own rounding (value_terms: what its formula subtracts before the exp) and
            # what the spread of Z's errors moves
            e_out, amplified = f.value_scale(z, out) + _softmax_spread(out, e_z), floor
            fwd.derivative.append(None)
            fwd.e_derivative.append(None)
        fwd.z.append(z)
        fwd.e_z.append(e_z)
        fwd.a.append(out)
        fwd.e_a.append(e_out + amplified)
    return fwd


def _quadrature(propagation: str) -> bool:
    if propagation not in PROPAGATIONS:
        raise SpecError(f"unknown error propagation {propagation!r}: choose one of "
                        f"{', '.join(PROPAGATIONS)}")
    return propagation == "quadrature"


def gradient_scales(problem: Problem, dtype: str | None = None,
                    propagation: str = "bound", measured: bool = True,
                    loose: frozenset[str] = frozenset()) -> Scales:
    """Error bounds (units of u) for the loss and every dW, db and dX element.

    `dtype` (default: the problem's) sets u and the underflow floor added at every step;
    `measured`, `loose`: see scales_for.
    """
    return scales_for(problem, (dtype or problem.dtype_name,), propagation, measured,
                      loose)[0]


def scales_replacing_derivatives(problem: Problem, dtype: str,
                                 derivatives: Mapping[int, Callable[[np.ndarray, np.ndarray],
                                                                    np.ndarray]],
                                 loose: frozenset[str] = frozenset()) -> Scales:
    """gradient_scales of the computation with f'(Z_l) replaced by derivatives[l](Z, A) in some
    elementwise layers (the diagnosis replaying a slip): the same forward values and bounds,
    the replaced factor's own size for its rounding, and what an error in Z moves through
    f''. A slip changes the error bounds with the values: where f' is 0 (a saturated hardtanh)
    the right answer is exactly 0, the slip's is not, and neither is its rounding."""
    fwd = forward_errors(problem, (dtype,), loose=loose)
    _, floor = _roundoff_and_floor((dtype,))
    derivative, e_derivative = list(fwd.derivative), list(fwd.e_derivative)
    specs = problem.architecture.activation_specs
    with np.errstate(all="ignore"):
        for l, h in derivatives.items():
            if not specs[l].elementwise:
                continue
            z, a = fwd.z[l], fwd.a[l + 1]
            d = h(z, a)
            derivative[l] = d
            # the slip's own formula may cancel where the activation saturates (a(1 - a) of a
            # sigmoid written for a tanh layer): the activation's own scale, uncapped, bounds it
            e_derivative[l] = (np.abs(d) + specs[l].derivative_scale(z, a, None,
                                                                     specs[l].name in loose)
                               + np.abs(specs[l].second_derivative(z, a)) * fwd.e_z[l]
                               + floor * (1 + np.abs(z)))
    replaced = dataclasses.replace(fwd, derivative=derivative, e_derivative=e_derivative)
    return _backward(problem.float64(), replaced, _quadrature("bound"))[0]


def scales_for(problem: Problem, dtypes: tuple[str, ...] | None = None,
               propagation: str = "bound", measured: bool = True,
               loose: frozenset[str] = frozenset()) -> list[Scales]:
    """gradient_scales for several dtypes (default: the ones the case is judged in), from one
    pass over the values.

    `measured`: for a dtype below float64, each gradient element's bound is the smaller of the
    linear bound and STOCHASTIC_MARGIN times the rounding spread stochastic arithmetic measures
    at this input (judging/stochastic.py); float64's, the oracles' own, stays the linear bound.
    A diagnosis replaying dozens of variants of a case judges them by the linear bound alone:
    never tighter, and one pass each.

    `loose`: the activations judged with their looser formulation's rounding (table.Formulation:
    sigmoid as (1 + tanh(z/2)) / 2), for a candidate measured to compute them that way; the
    others, and every other candidate, are held to the usual formula's. Only the candidate's
    dtype is loosened: the oracles compute the usual way."""
    dtypes = dtypes or judging_dtypes(problem)
    if _quadrature(propagation) and len(dtypes) > 1:  # its square-safety test is per dtype
        return [scales_for(problem, (d,), propagation, measured, loose)[0] for d in dtypes]
    loose = _used(problem, loose)
    if loose and len(dtypes) > 1:  # loosened for the candidate's dtype, not the oracles'
        return [scales_for(problem, (dtypes[0],), propagation, measured, loose)[0],
                *scales_for(problem, dtypes[1:], propagation, measured)]
    found = _backward(problem.float64(), forward_errors(problem, dtypes, propagation, loose),
                      _quadrature(propagation))
    if measured:
        found = [_measured(problem, dtype, scales, loose) if dtype != "float64" else scales
                 for dtype, scales in zip(dtypes, found, strict=True)]
    return found


def _used(problem: Problem, loose: frozenset[str]) -> frozenset[str]:
    """The loosened activations this problem has and that have a looser formulation (so a
    problem without them keeps one cache entry)."""
    if not loose:
        return loose
    return frozenset(f.name for f in problem.architecture.activation_specs
                     if f.name in loose and f.looser is not None)


# The tolerance allows factor x u x STOCHASTIC_MARGIN x the measured spread (its root mean
# square deviation over the runs). Over 1,000 float32 cases per space (ordinary and default) of
# 11 correct implementations (the three levels, PyTorch's autograd, the formulation catalogue),
# the largest real error of any element was 7.4 spreads, 2.8 at the 99.9th percentile
# (bench/stochastic.py): the default factor 16 leaves a margin of 2.2 over the worst.
STOCHASTIC_MARGIN = 1.0


def _measured(problem: Problem, dtype: str, scales: Scales,
              loose: frozenset[str] = frozenset()) -> Scales:
    """`scales` with each gradient bound lowered to STOCHASTIC_MARGIN x the measured spread
    where that is smaller (made once per problem and dtype, kept on the float64 problem)."""
    p = problem.float64()
    cached = p.__dict__.get("_spread")
    if cached is not None and cached[0] == (dtype, loose):
        spread = cached[1]
    else:
        spread = stochastic.spread(problem, dtype, loose=loose)
        object.__setattr__(p, "_spread", ((dtype, loose), spread))
    _, floor = _roundoff_and_floor((dtype,))
    tensors = {name: np.minimum(bound, STOCHASTIC_MARGIN * spread[name] + floor[0, 0])
               for name, bound in scales.tensors.items()}
    return dataclasses.replace(scales, tensors=tensors)


def _backward(p: Problem, fwd: Forward, quadrature: bool) -> list[Scales]:
    arch = p.architecture
    u, floor = _roundoff_and_floor(fwd.dtypes)
    loss, Y = arch.loss_spec, p.Y
    y_hat, e_y_hat = fwd.a[-1], fwd.e_a[-1]
    divisor = arch.reduction_spec.divisor(p.batch_size, loss.terms_per_sample(y_hat.shape[1]))

    g = loss.derivative(y_hat, Y) / divisor
    if loss.through_softmax:  # cross-entropy on logits: softmax(yhat) - y
        p_hat = loss.curvature(y_hat, Y)
        # softmax's own rounding: exp(yhat - logsumexp(yhat)), a common formulation, carries
        # an error of an ulp of the shift (see the softmax entry's value_terms)
        moved = np.abs(p_hat) * (1 + _shift(y_hat)) + _softmax_spread(p_hat, e_y_hat)
    else:
        moved = np.abs(loss.curvature(y_hat, Y)) * e_y_hat
    e_g = (loss.derivative_terms(y_hat, Y) + moved) / divisor + floor
    # Each term's own size, the rounding of its inputs (|dterm/dyhat| (|yhat| + |y|)), and the
    # error carried in from yhat.
    y_size = np.abs(y_hat) + (0.0 if loss.per_sample else np.abs(Y))
    terms = loss.value_scale(y_hat, Y)
    e_loss = (math.sqrt(terms.size) * terms.sum()
              + (np.abs(g) * divisor * (y_size + e_y_hat)).sum(axis=(-2, -1))) / divisor \
        + floor[:, 0, 0]

    tensors: dict[str, np.ndarray] = {}
    e_deltas: list[np.ndarray] = [np.empty(0)] * arch.depth
    specs = arch.activation_specs
    for l in reversed(range(arch.depth)):
        f = specs[l]
        a_prev, e_a_prev, W = fwd.a[l], fwd.e_a[l], p.weights[l]
        if f.elementwise:
            d, e_d = fwd.derivative[l], fwd.e_derivative[l]
            delta, e_delta = g * d, _product(g, e_g, d, e_d, u, quadrature)
        else:  # softmax: delta_i = a_i (g_i - s), s = <g, a> per row
            a, e_a = fwd.a[l + 1], fwd.e_a[l + 1]
            s = np.sum(g * a, axis=-1, keepdims=True)
            delta = a * (g - s)
            # Propagated: from g through its spread; from a through g - s (sum_j da_j = 0, so
            # s moves by sum_j da_j (g_j - s)). Rounding: of g - s, and of the sum s.
            # Where a's errors do not sum to 0 (exp(z - logsumexp(z)) shares one error in the
            # shift across the row, so the row no longer sums to 1), s also moves by s sum_j da_j.
            spread_from_a = np.sum(e_a * (np.abs(g - s) + np.abs(s)), axis=-1, keepdims=True)
            rounding = np.abs(g) + np.abs(s) + math.sqrt(a.shape[-1]) * np.sum(
                np.abs(a * g), axis=-1, keepdims=True)
            e_delta = (_softmax_spread(a, e_g) + e_a * np.abs(g - s)
                       + np.abs(a) * (spread_from_a + rounding) + u * e_a * e_g)
        e_delta = e_delta + floor
        e_deltas[l] = e_delta
        tensors[f"dW{l + 1}"] = _matmul(delta.T, e_delta.swapaxes(-1, -2), a_prev, e_a_prev, u,
                                        quadrature) + floor
        if p.biases[l] is not None:  # the batch sum of delta
            carried = (_in_quadrature(np.ones((1, len(delta))), e_delta)[:, 0] if quadrature
                       else e_delta.sum(axis=-2))
            tensors[f"db{l + 1}"] = (carried + math.sqrt(len(delta)) * np.abs(delta).sum(axis=0)
                                     + floor[:, 0])
        g, e_g = delta @ W, _matmul(delta, e_delta, W, None, u, quadrature) + floor
    tensors["dX"] = e_g
    if arch.l2:  # + 2 c W: one product and one sum more per element; c sum W^2 in the loss
        c = arch.penalty_coefficient()
        squares = 0.0
        for l, (W, b) in enumerate(zip(p.weights, p.biases, strict=True), start=1):
            tensors[f"dW{l}"] = tensors[f"dW{l}"] + 4 * c * np.abs(W)
            squares += math.sqrt(W.size) * float(np.sum(W * W))
            if b is not None and arch.l2_biases:
                tensors[f"db{l}"] = tensors[f"db{l}"] + 4 * c * np.abs(b)
                squares += math.sqrt(b.size) * float(np.sum(b * b))
        e_loss = e_loss + 2 * c * squares
    return [Scales(float(e_loss[k]), {name: t[k] for name, t in tensors.items()},
                   {"Z": [e[k] for e in fwd.e_z], "A": [e[k] for e in fwd.e_a[1:]],
                    "delta": [e[k] for e in e_deltas]})
            for k in range(len(fwd.dtypes))]


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference = (factor[a] u[a] + factor[b] u[b]) * error bound, for results in
    dtypes a and b: both sides of a comparison carry their own rounding (two float64 oracles
    may each be off by the bound). Override the factor per dtype.

    Measured over 6000 random cases with factor 1: the matrix level reached 1.9 u e in float64
    and 1.3 in float32, PyTorch against JAX 7.4 (3.7 per side); 16 leaves a margin of 4.
    """

    factor: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FACTOR))

    def __post_init__(self) -> None:
        for dtype, value in self.factor.items():
            if dtype not in UNIT_ROUNDOFF:
                raise SpecError(f"tolerance factor for {dtype!r}: the dtypes are float32, "
                                "float64")
            if not 0 < value < math.inf:
                raise SpecError(f"tolerance factor for {dtype} is {value}: give a finite number "
                                "> 0")
        self.factor.update({d: f for d, f in DEFAULT_FACTOR.items() if d not in self.factor})

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """'float32=8,float64=32' (a dtype left out keeps its default)."""
        factor = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            dtype, sep, value = part.partition("=")
            try:
                factor[dtype.strip()] = float(value)
            except ValueError:
                raise SpecError(f"tolerance factor {part!r} is not DTYPE=NUMBER, e.g. "
                                "float32=16") from None
            if not sep:
                raise SpecError(f"tolerance factor {part!r} is not DTYPE=NUMBER")
        return cls(factor)

    def multiplier(self, dtype: str, reference_dtype: str = "float64",
                   unit_roundoff: float | None = None) -> float:
        """factor[a] u[a] + factor[b] u[b], what a bound in units of u is multiplied by;
        `unit_roundoff` replaces u[a] (a diagnosis asking whether a tensor was computed in a
        narrower type than `dtype`, with `dtype`'s factor)."""
        u = UNIT_ROUNDOFF[dtype] if unit_roundoff is None else unit_roundoff
        return (self.factor[dtype] * u
                + self.factor[reference_dtype] * UNIT_ROUNDOFF[reference_dtype])

    def allowed(self, scales: Scales, dtype: str, reference_dtype: str = "float64") -> Scales:
        """The allowed absolute difference for the loss and every element."""
        k = self.multiplier(dtype, reference_dtype)
        return Scales(k * scales.loss, {name: k * s for name, s in scales.tensors.items()},
                      _Scaled(k, scales.intermediates))


class _Scaled(Mapping[str, list[np.ndarray]]):
    """k times each layer's bounds, made when read: only a diagnosis reads intermediates."""

    def __init__(self, k: float, layers: Mapping[str, list[np.ndarray]]) -> None:
        self._k, self._layers = k, layers

    def __getitem__(self, key: str) -> list[np.ndarray]:
        return [self._k * s for s in self._layers[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)
