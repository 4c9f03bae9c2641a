"""Random cases: the space they are drawn from, the config that reproduces one, and its arrays.

A case is a ``CaseConfig`` (architecture, batch size, dtype, scales and a data seed); its arrays
follow from the config alone. The CLI draws configs from a NumPy generator (same seed, same
cases); the Hypothesis strategies in ``mybackprop.harness.strategies`` draw them so they shrink.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mybackprop.judging.tolerance import forward_unless
from mybackprop.levels.matrix import forward
from mybackprop.spec.problem import (
    Architecture,
    Layer,
    Problem,
    SpecError,
    choose,
    unchecked_problem,
)
from mybackprop.spec.table import ACTIVATIONS, DTYPES, LOSSES, PARAMETERS, REDUCTIONS

# A kinked unit is "on the kink" when |z - kink| <= KINK_MARGIN * (what was summed into z):
# far above the rounding of z in float32, so candidate and oracles agree on the side.
KINK_MARGIN = 1e-4
KINK_REDRAWS = 8
# A loss on probabilities is drawn at most this far toward where its formula breaks down in the
# case's dtype (Loss.soundness): the output layer is scaled down to stay there.
SOUND_FRACTION = 0.5


KINK_MODES = ("avoid", "hit")
# The second key of the stream the activations' parameters are drawn from, after the seed.
PARAMETER_STREAM = 1
# The penalty coefficients a run draws for a candidate that reads problem.l2 (0: none).
DEFAULT_L2: tuple[float, ...] = (0.0, 0.01, 0.5)
# The largest depth, width and batch a run draws: past them a case does not fit in memory
# (or, 1e20, in the generator's int64).
MOST = {"depth": 100, "width": 4096, "batch": 100_000}
# The largest penalty coefficient drawn or declared: past it the penalty's gradient drowns the
# loss's in float32 (and 1e300 made the loss itself inf).
MAX_L2 = 1e3


class KinkUnavoidable(Exception):
    """The data keeps landing on a kink (e.g. a dead relu feeding a relu with no bias)."""


# The fields of a case space and of a declaration that hold names of the table, with the kind of
# name and the table that checks it.
NAMED_FIELDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("activations", "activation", ACTIVATIONS), ("losses", "loss", LOSSES),
    ("reductions", "reduction", REDUCTIONS), ("dtypes", "dtype", DTYPES),
    ("hidden_activations", "activation", ACTIVATIONS),
    ("output_activations", "activation", ACTIVATIONS))


def exact_widths(widths: Any) -> tuple[int, ...]:
    """(input width, then each layer's), checked: at least one layer, every width >= 1."""
    widths = tuple(widths) if isinstance(widths, list | tuple) else ()
    if len(widths) < 2 or not all(isinstance(w, int) and not isinstance(w, bool)
                                  and 1 <= w <= MOST["width"] for w in widths) \
            or len(widths) > MOST["depth"] + 1:
        raise SpecError(f"widths {widths} are not the input's width and then each layer's, "
                        f"all integers from 1 to {MOST['width']} (at most {MOST['depth']} layers): "
                        "e.g. 4,8,3")
    return widths


@dataclass(frozen=True)
class CaseSpace:
    """The ranges random cases are drawn from. Bounds are checked when it is made.

    The architecture fields narrow the draw to a network a candidate is written for: a depth
    range, exact widths, which activations may sit in hidden layers and which in the output
    layer, biases everywhere or nowhere, a batch range, a parameter budget. Their defaults draw
    exactly as before they existed (the same random stream, the same cases)."""

    max_depth: int = 5
    max_width: int = 16
    max_batch: int = 64
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    losses: tuple[str, ...] = tuple(LOSSES)
    reductions: tuple[str, ...] = tuple(REDUCTIONS)
    dtypes: tuple[str, ...] = tuple(DTYPES)
    input_log10_scale: tuple[float, float] = (-3.0, 3.0)  # inputs from 1e-3 to 1e3
    # Output logits up to 1e3 x the hidden scale: far past where a naive exp overflows.
    max_output_log10_scale: int = 3
    # "avoid": no pre-activation near a kink. "hit": one unit of every kinked layer sits exactly
    # on its kink for every sample (its weight row and bias are set to 0); no other unit is near.
    kinks: str = "avoid"
    min_depth: int = 1
    min_width: int = 1
    min_batch: int = 1
    widths: tuple[int, ...] | None = None  # exact: the input's width, then each layer's
    hidden_activations: tuple[str, ...] | None = None  # None: any of activations
    output_activations: tuple[str, ...] | None = None  # None: any of activations
    bias: bool | None = None  # True: every layer has a bias; False: none has; None: either
    max_parameters: int | None = None  # weights and biases together
    # The L2 penalty: the coefficients drawn (None: the run leaves it to each candidate's
    # declaration, DEFAULT_L2 for one that reads it), and its form and bias rule (None: drawn).
    l2: tuple[float, ...] | None = None
    l2_half: bool | None = None
    l2_biases: bool | None = None
    # The activations' parameters (spec.table.PARAMETERS): the values drawn (None: the run
    # leaves it to each candidate's declaration, the parameter's own draw set for one that
    # reads it).
    leaky_slope: tuple[float, ...] | None = None
    elu_alpha: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_width", "max_batch", "min_depth", "min_width",
                     "min_batch"):
            value, most = getattr(self, name), MOST[name.split("_")[1]]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise SpecError(f"{name} is {value!r}: it must be an integer from 1 to {most:,}")
        for low, high in (("min_depth", "max_depth"), ("min_width", "max_width"),
                          ("min_batch", "max_batch")):
            if getattr(self, low) > getattr(self, high):
                raise SpecError(f"{low} {getattr(self, low)} is over {high} "
                                f"{getattr(self, high)}: nothing to draw")
        for field_name, kind, table in NAMED_FIELDS:
            if getattr(self, field_name) is None:
                continue
            values = tuple(getattr(self, field_name))
            if not values:
                raise SpecError(f"no {field_name.replace('_', ' ')} to draw from: give at "
                                "least one")
            for value in values:
                choose(kind, value, table)
            object.__setattr__(self, field_name, values)
        if self.widths is not None:
            object.__setattr__(self, "widths", exact_widths(self.widths))
        if self.max_parameters is not None and self.max_parameters < 2:
            raise SpecError(f"max_parameters is {self.max_parameters}: a network has at least "
                            "one weight")
        if self.kinks not in KINK_MODES:
            raise SpecError(f"kinks is {self.kinks!r}: choose one of {', '.join(KINK_MODES)}")
        if self.l2 is not None:
            values = tuple(self.l2)
            if not values or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                     and 0 <= v <= MAX_L2 for v in values):
                raise SpecError(f"l2 coefficients {self.l2!r}: give one or more numbers from 0 "
                                f"to {MAX_L2:g}")
            object.__setattr__(self, "l2", tuple(float(v) for v in values))
        for name, parameter in PARAMETERS.items():
            if getattr(self, name) is not None:
                values = tuple(getattr(self, name))
                if not values:
                    raise SpecError(f"no {name} values to draw from: give at least one")
                try:
                    object.__setattr__(self, name, tuple(parameter.check(v) for v in values))
                except ValueError as exc:
                    raise SpecError(str(exc)) from None
        if not self.usable_losses():
            raise SpecError(f"the losses {', '.join(self.losses)} take an output layer of "
                            f"{', '.join(sorted({LOSSES[n].output or '' for n in self.losses}))}"
                            f", which the output activations {', '.join(self.output)} leave "
                            "out: allow it, or draw another loss")
        lo, hi = self.input_log10_scale
        if lo > hi:
            raise SpecError(f"input_log10_scale {self.input_log10_scale} is empty: give lo <= hi")

    @property
    def hidden(self) -> tuple[str, ...]:
        """The activations a hidden layer may have."""
        return self.activations if self.hidden_activations is None else self.hidden_activations

    @property
    def output(self) -> tuple[str, ...]:
        """The activations the output layer may have."""
        return self.activations if self.output_activations is None else self.output_activations

    def usable_losses(self) -> tuple[str, ...]:
        """The losses that can be drawn: one written for an output activation (cross-entropy on
        softmax probabilities) needs that activation among the output ones."""
        return tuple(name for name in self.losses
                     if LOSSES[name].output is None or LOSSES[name].output in self.output)

    def parameter_values(self, name: str) -> tuple[float, ...]:
        """The values of an activation parameter drawn: the space's, or its own draw set."""
        values = getattr(self, name)
        return PARAMETERS[name].drawn if values is None else values

    def stream_name(self) -> str:
        """The name of the space's own random stream (a candidate's part of a run): its repr,
        less an activation parameter left open (None) or at the table's default only, so a
        space that draws what it drew before the parameters existed has the stream it had."""
        def omitted(name: str) -> bool:
            return name in PARAMETERS and getattr(self, name) in (
                None, (PARAMETERS[name].default,))
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                          if not omitted(f.name))
        return f"{type(self).__qualname__}({shown})"

    def depths(self) -> tuple[int, int]:
        """The depths it draws, lowest and highest."""
        if self.widths is not None:
            return len(self.widths) - 1, len(self.widths) - 1
        return self.min_depth, self.max_depth


@dataclass(frozen=True)
class CaseConfig:
    """Everything that reproduces one case."""

    architecture: Architecture
    batch_size: int
    dtype: str
    input_scale: float
    output_scale: float
    seed: int
    kinks: str = "avoid"

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict is slow
        record["architecture"] = self.architecture.to_dict()
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseConfig:
        return cls(**{**data, "architecture": Architecture.from_dict(data["architecture"])})


def problem_from_config(config: CaseConfig | Mapping[str, Any]) -> Problem:
    """The problem of a case, rebuilt from its config: a CaseConfig, the "config" of a record in
    cases.jsonl, or the whole record. The same arrays, bit for bit, as when the case ran."""
    if isinstance(config, CaseConfig):
        return build_problem(config)
    if not isinstance(config, Mapping):
        raise SpecError(f"a case config is a dict (a record's \"config\"), not a "
                        f"{type(config).__name__}")
    if "config" in config:  # a whole record
        config = config["config"]
    expected = {f.name for f in fields(CaseConfig)}
    if not isinstance(config, Mapping) or not {"architecture", "seed"} <= set(config) <= expected:
        keys = sorted(config) if isinstance(config, Mapping) else type(config).__name__
        raise SpecError(f"not a case config (keys {keys}): give a record of cases.jsonl or its "
                        f"\"config\", with {', '.join(sorted(expected))}")
    return build_problem(CaseConfig.from_dict(dict(config)))


def sample_config(rng: np.random.Generator, space: CaseSpace) -> CaseConfig:
    """Draw one config; depth, widths and batch are uniform in their ranges. A space with the
    default architecture fields makes exactly the draws it made before they existed."""
    def choice(options: tuple[str, ...]) -> str:  # rng.choice's stream, 5x faster
        return options[int(rng.integers(len(options)))]

    def width(position: int) -> int:
        if space.widths is not None:
            return space.widths[position]
        return int(rng.integers(space.min_width, space.max_width + 1))

    low, high = space.depths()
    depth = high if space.widths is not None else int(rng.integers(low, high + 1))
    layers = tuple(
        Layer(width(l), choice(space.output if l == depth else space.hidden),
              bool(rng.integers(2)) if space.bias is None else space.bias)
        for l in range(1, depth + 1))
    input_width = width(0)  # the draws in the order they always had: input width, loss, ...
    loss = choice(space.usable_losses())
    output = LOSSES[loss].output
    if output is not None and layers[-1].activation != output:  # a loss on probabilities
        layers = (*layers[:-1], dataclasses.replace(layers[-1], activation=output))
    reduction = choice(space.reductions)
    lo, hi = space.input_log10_scale
    drawn = dict(
        batch_size=int(rng.integers(space.min_batch, space.max_batch + 1)),
        dtype=choice(space.dtypes),
        input_scale=float(10 ** rng.uniform(lo, hi)),
        output_scale=float(10 ** rng.integers(0, space.max_output_log10_scale + 1)),
        seed=int(rng.integers(2**32)),
    )
    # Drawn last, and only where there is a choice: a space without penalties draws exactly
    # what it drew before they existed.
    coefficients = DEFAULT_L2 if space.l2 is None else space.l2
    l2 = coefficients[int(rng.integers(len(coefficients)))] if len(coefficients) > 1 \
        else coefficients[0]
    half = bool(rng.integers(2)) if space.l2_half is None and l2 else bool(space.l2_half)
    biases = bool(rng.integers(2)) if space.l2_biases is None and l2 else bool(space.l2_biases)
    # The activations' parameters: only for a network that has the activation and where there
    # is a choice, from a stream of their own (named by the case's seed), so the draws above
    # and the configs after this one are what they were before parameters existed.
    names = {layer.activation for layer in layers}
    parameters = {}
    own = np.random.default_rng([drawn["seed"], PARAMETER_STREAM])
    for name, parameter in PARAMETERS.items():
        values = space.parameter_values(name)
        if parameter.activation in names:
            parameters[name] = values[int(own.integers(len(values)))] if len(values) > 1 \
                else values[0]
    arch = Architecture(input_width, layers, loss, reduction, l2, half and bool(l2),
                        biases and bool(l2), **parameters)
    return CaseConfig(architecture=arch, kinks=space.kinks, **drawn)


def build_problem(config: CaseConfig) -> Problem:
    """The arrays of a config, redrawn (deterministically) until no unit is near a kink by
    chance; in kink mode, with the chosen units placed exactly on theirs."""
    for attempt in range(KINK_REDRAWS):
        problem = _draw_arrays(config, attempt)
        placed = placed_on_kinks(problem) if config.kinks == "hit" else frozenset()
        if not on_kink(problem, exempt=placed, placed=config.kinks == "hit"):
            return problem
    raise KinkUnavoidable(f"{config.architecture.describe()}: units stay on a kink after "
                          f"{KINK_REDRAWS} draws")


def _draw_arrays(config: CaseConfig, attempt: int) -> Problem:
    arch, dtype = config.architecture, DTYPES[config.dtype]
    rng = np.random.default_rng([config.seed, attempt])
    widths, n = arch.widths, config.batch_size
    weights, biases = [], []
    for l, layer in enumerate(arch.layers, start=1):
        # LeCun scaling keeps every layer near the input's scale; the last layer sets the logits.
        gain = config.output_scale if l == arch.depth else 1.0
        weights.append(gain * rng.standard_normal((widths[l], widths[l - 1])) / np.sqrt(
            widths[l - 1]))
        biases.append(gain * 0.5 * rng.standard_normal(widths[l]) if layer.bias else None)
    X = config.input_scale * rng.standard_normal((n, widths[0]))
    loss = arch.loss_spec
    if loss.targets == "classes":
        Y = rng.integers(0, widths[-1], size=n)
    elif loss.targets == "probabilities":
        Y = rng.uniform(0.0, 1.0, size=(n, widths[-1]))
    else:
        Y = rng.standard_normal((n, widths[-1]))

    if config.kinks == "hit":
        for l, f in enumerate(arch.activation_specs):
            if f.kinks:  # z = 0 . a + at: exactly on the kink in any order of summation
                j = int(rng.integers(widths[l + 1]))
                at = f.kinks[0].at if biases[l] is not None else next(
                    (k.at for k in f.kinks if k.at == 0.0), None)
                if at is None:  # no bias, and no kink at 0 (hardtanh's are at -1 and 1)
                    continue
                weights[l][j, :] = 0.0
                if biases[l] is not None:
                    biases[l][j] = at

    if config.kinks == "hit" and loss.kinks:
        Y = _loss_on_kink(arch, weights, biases, Y, rng)
    if loss.soundness is not None:  # keep a loss on probabilities where its formula holds
        with np.errstate(all="ignore"):  # the cost of an unsound draw may be inf: unread
            z = forward(unchecked_problem(arch, tuple(weights), tuple(biases), X, Y, {})).z[-1]
        ratio, _ = loss.soundness(z, config.dtype)
        if ratio > SOUND_FRACTION:
            weights[-1] = weights[-1] * (SOUND_FRACTION / ratio)
            if biases[-1] is not None:
                biases[-1] = biases[-1] * (SOUND_FRACTION / ratio)

    def cast(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype) if a.dtype.kind == "f" else a

    # Valid by construction (shapes from the architecture, finite draws; tests/test_edges.py
    # validates drawn problems), so the checks a user's Problem gets are not repeated here.
    return unchecked_problem(arch, tuple(cast(w) for w in weights),
                             tuple(None if b is None else cast(b) for b in biases), cast(X),
                             cast(Y), {"config": config.to_dict(), "attempt": attempt})


def _loss_on_kink(arch: Architecture, weights: list[np.ndarray],
                  biases: list[np.ndarray | None], Y: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Targets (and output units) set so that the loss sits exactly on its kink for every
    sample: output units with a zero weight row have Z = b exactly, so yhat = f(b) is known.
    l1: one unit's target is f(0). multiclass_hinge: yhat_j = f(0), yhat_y = f(1) and every
    target class y, so the margin f(0) - f(1) + 1 is 0. Left as drawn where the output
    activation cannot give those values exactly in float32 (softmax, sigmoid, ...)."""
    f, b_out, W_out = arch.activation_specs[-1], biases[-1], weights[-1]
    if not f.elementwise:
        return Y
    at = {v: float(f.forward(np.array([v]))[0]) for v in (0.0, 1.0)}
    exact = all(float(np.float32(x)) == x for x in at.values())
    n_out = W_out.shape[0]
    j = int(rng.integers(n_out))
    if arch.loss == "l1" and exact:
        W_out[j, :] = 0.0
        if b_out is not None:
            b_out[j] = 0.0
        Y = Y.copy()
        Y[:, j] = at[0.0]
    elif arch.loss == "multiclass_hinge" and exact and b_out is not None and n_out >= 2 \
            and at[0.0] - at[1.0] + 1 == 0:
        c = (j + 1) % n_out
        W_out[[j, c], :] = 0.0
        b_out[j], b_out[c] = 0.0, 1.0
        Y = np.full_like(Y, c)
    return Y


def loss_near_kink(problem: Problem, yhat: np.ndarray, e_yhat: np.ndarray,
                   placed: bool = False) -> bool:
    """Whether the loss is within the margin of a kink (l1 at yhat = y, the hinge at a zero
    margin), judged by the rounding yhat may carry (e_yhat, units of u). `placed` (kink mode):
    terms exactly on it were put there and do not count (saturated outputs land on it too)."""
    loss = problem.architecture.loss_spec
    if not loss.kinks:
        return False
    assert loss.kink_variable is not None
    v = loss.kink_variable(yhat, problem.float64().Y)
    scale = e_yhat + e_yhat.max(axis=-1, keepdims=True)
    near = [(np.abs(v - k.at) <= KINK_MARGIN * scale) & ((v != k.at) | (not placed))
            for k in loss.kinks]
    return any(bool(np.any(n)) for n in near)


def placed_on_kinks(problem: Problem) -> set[tuple[int, int]]:
    """(layer index, unit) of every kinked unit put exactly on its kink: a zero weight row."""
    return {(l, int(j)) for l, (f, W) in enumerate(zip(problem.architecture.activation_specs,
                                                       problem.weights, strict=True))
            if f.kinks for j in np.flatnonzero(~W.any(axis=1))}


def on_kink(problem: Problem, exempt: set[tuple[int, int]] = frozenset(),
            placed: bool = False) -> bool:
    """True when a pre-activation of a kinked layer is within the margin of its kink, or the
    loss is near one of its own (`placed`: loss terms exactly on it were put there).

    `exempt` units (layer index, unit) were put there on purpose and are not counted. The
    forward pass stops at the first layer found on a kink; one that runs through is kept for
    judging.
    """
    specs = problem.architecture.activation_specs
    loss = problem.architecture.loss_spec
    if not any(f.kinks for f in specs) and not loss.kinks:
        return False

    def near_kink(l: int, z: np.ndarray, e_z: np.ndarray) -> bool:
        if not specs[l].kinks:
            return False
        near = np.zeros(z.shape, dtype=bool)
        for kink in specs[l].kinks:  # e_z[0]: the bound in the case's own dtype
            near |= np.abs(z - kink.at) <= KINK_MARGIN * e_z[0]
        return any((l, int(j)) not in exempt for j in np.flatnonzero(near.any(axis=0)))

    fwd = forward_unless(problem, near_kink)
    return fwd is None or loss_near_kink(problem, fwd.a[-1], fwd.e_a[-1][0], placed)


MAX_CONFIG_DRAWS = 1000


def sample_problem(rng: np.random.Generator, space: CaseSpace) -> Problem:
    """Draw configs until one has data off every kink (a few percent land on one) and keeps to
    the space's parameter budget."""
    over_budget = 0
    for _ in range(MAX_CONFIG_DRAWS):
        config = sample_config(rng, space)
        if (space.max_parameters is not None
                and config.architecture.n_parameters > space.max_parameters):
            over_budget += 1
            continue
        try:
            return build_problem(config)
        except KinkUnavoidable:
            continue
    if over_budget > MAX_CONFIG_DRAWS // 2:
        raise SpecError(f"{over_budget} of {MAX_CONFIG_DRAWS} random networks in a row had "
                        f"over {space.max_parameters} parameters: allow more parameters, or "
                        "narrower or fewer layers")
    raise SpecError(f"{MAX_CONFIG_DRAWS} random networks in a row kept units on a kink of "
                    "relu/leaky_relu: allow wider layers or other activations")
