"""Each layer of a kit checked alone: its forward against the reference, its backward as a
vector-Jacobian product against PyTorch's and JAX's, on random shapes, inputs and upstream
gradients; a failure shrunk by Hypothesis to the smallest shapes that show it, and named at
the user's own function with the patterns that apply to one layer.

One case of a layer: a dtype, shapes (N samples; n_in, n_out units), inputs drawn in that
dtype (x, W, b, dout for the dense layer; z, dout for an activation, kept off its kinks; y_hat
and targets for a loss, y_hat through the loss's output activation where it is written for
one). The layer's answer is judged element by element by judging/layers.py's bounds against
PyTorch; JAX must agree with PyTorch within the float64 bounds, else the case is an oracle
disagreement, never the user's fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop.harness import formulation
from mybackprop.harness.contract import CandidateLoadError
from mybackprop.harness.layers import LayerError, LayerKit, _named, kit_of
from mybackprop.judging import layers as bounds
from mybackprop.spec.table import ACTIVATIONS, DTYPES, LOSSES

MAX_UNITS, MAX_BATCH = 16, 16
EVIDENCE = 8  # failing cases a diagnosis must explain, beside the smallest
FACTORS = {2.0: "2", 0.5: "1/2", -1.0: "-1"}


@dataclass(frozen=True)
class LayerCase:
    """One drawn case of one layer: shapes, dtype and the seed of its arrays."""

    dtype: str
    batch: int
    n_in: int
    n_out: int
    seed: int

    def describe(self, role: str = "dense") -> str:
        units = f"n_in={self.n_in}, n_out={self.n_out}" if role == "dense" else \
            f"n={self.n_out}"
        return f"N={self.batch}, {units}, {self.dtype}"


@dataclass
class LayerResult:
    """The verdict of one layer over its cases."""

    layer: str  # "dense", "activation relu", "loss softmax_cross_entropy"
    names: str  # the user's own: "affine_forward / affine_backward"
    role: str = "dense"
    cases: int = 0
    failed: int = 0
    errors: int = 0
    disagreements: int = 0
    smallest: LayerCase | None = None
    inputs: str = ""  # the smallest case's inputs, where they are a few numbers
    problem: str = ""  # what is wrong in the smallest failing case
    diagnosis: str = ""  # what kind of mistake, at which function
    seconds: float = 0.0
    shrunk: bool = True  # the smallest case found, or the first one (state checks)
    notes: list[str] = field(default_factory=list)  # what is worth knowing, never a failure

    @property
    def verdict(self) -> str:
        if self.errors:
            return "error"
        return "fail" if self.failed else "pass"

    @property
    def label(self) -> str:
        return "NOTE" if self.verdict == "pass" and self.notes else self.verdict.upper()

    def lines(self) -> list[str]:
        head = (f"{self.label:5} {self.layer}: {self.names}: {self.cases} cases"
                + (f", {self.failed} fail" if self.failed else "")
                + (f", {self.errors} error" if self.errors else "")
                + (f", {self.disagreements} where the oracles disagree (not counted)"
                   if self.disagreements else "")
                + f" ({self.seconds:.1f} s)")
        lines = [head]
        if self.smallest is not None:
            which = "smallest failing case" if self.shrunk else "first failing case"
            lines.append(f"  {which}: {self.smallest.describe(self.role)}, seed "
                         f"{self.smallest.seed}" + (f": {self.inputs}" if self.inputs else ""))
            if self.problem:
                lines.append(f"  {self.problem}")
        if self.diagnosis:
            lines.append(f"  diagnosis: {self.diagnosis}")
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def kit_named(spec: Any) -> LayerKit:
    """The LayerKit of a declared network: the candidate itself, or its --impl string."""
    from mybackprop.harness.loading import load_candidate

    if isinstance(spec, LayerKit):
        return spec
    function = spec
    if isinstance(spec, str):
        function = load_candidate(spec).function
    while kit_of(function) is None and hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    kit = kit_of(function)
    if kit is None:
        raise CandidateLoadError(f"{spec if isinstance(spec, str) else _named(spec)} is not a "
                                 "layer kit: declare one with mybackprop.layer_functions(...) "
                                 "or mybackprop.layer_objects(...)")
    return kit


def layer_roles(kit: LayerKit) -> list[tuple[str, str]]:
    """(role, kind) of every layer the kit declares."""
    return ([("dense", "")] + [("activation", name) for name in kit.activations]
            + [("loss", name) for name in kit.losses])


def check_each_layer(kit: LayerKit, cases: int = 500, seed: int = 0,
                     shrink: bool = True) -> list[LayerResult]:
    """Every layer of the kit alone over `cases` random cases (its dtypes in turn)."""
    return [check_layer(kit, role, kind, cases, seed, shrink) for role, kind in layer_roles(kit)]


def check_layer(kit: LayerKit, role: str, kind: str, cases: int = 500, seed: int = 0,
                shrink: bool = True) -> LayerResult:
    started = time.perf_counter()
    names = (kit.name_of(role, kind) if role == "loss" else
             f"{kit.name_of(role, kind, 'forward')} / {kit.name_of(role, kind, 'backward')}")
    result = LayerResult(role if role == "dense" else f"{role} {kind}", names, role)
    rng = np.random.default_rng([seed, len(role), len(kind)])
    failing: list[LayerCase] = []
    for i in range(cases):
        case = LayerCase(kit.dtypes[i % len(kit.dtypes)], *_shape(rng, role, kind),
                         int(rng.integers(2**31)))
        verdict, _ = judge(kit, role, kind, case)
        result.cases += 1
        if verdict == "fail":
            result.failed += 1
        elif verdict == "error":
            result.errors += 1
        elif verdict == "oracle_disagreement":
            result.disagreements += 1
        if verdict in ("fail", "error") and len(failing) < EVIDENCE:
            failing.append(case)
    if failing:
        smallest = _shrink(kit, role, kind, failing[0]) if shrink else failing[0]
        result.smallest = smallest
        given = arrays(role, kind, smallest)
        if all(a.size <= 4 for a in given.values()):
            result.inputs = ", ".join(
                f"{name} = " + np.array2string(a, precision=4, separator=", ").replace("\n", "")
                for name, a in given.items())
        _, result.problem = judge(kit, role, kind, smallest)
        result.diagnosis = diagnose(kit, role, kind, [smallest, *failing])
    result.seconds = time.perf_counter() - started
    return result


def _shape(rng: np.random.Generator, role: str, kind: str) -> tuple[int, int, int]:
    batch = int(rng.integers(1, MAX_BATCH + 1))
    n_in = int(rng.integers(1, MAX_UNITS + 1))
    n_out = int(rng.integers(2 if role == "loss" and LOSSES[kind].per_sample else 1,
                             MAX_UNITS + 1))
    return batch, n_in, n_out


def _shrink(kit: LayerKit, role: str, kind: str, found: LayerCase) -> LayerCase:
    """The smallest case (fewest samples, then units) that fails or errs like `found`."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st

    wanted = judge(kit, role, kind, found)[0]
    low_out = 2 if role == "loss" and LOSSES[kind].per_sample else 1
    cases = st.builds(LayerCase, st.just(found.dtype), st.integers(1, found.batch),
                      st.integers(1, found.n_in), st.integers(low_out, found.n_out),
                      st.integers(0, 2**31 - 1))
    try:
        return find(cases, lambda c: judge(kit, role, kind, c)[0] == wanted,
                    settings=settings(max_examples=200, database=None, derandomize=True,
                                      deadline=None, phases=[Phase.generate, Phase.shrink],
                                      suppress_health_check=list(HealthCheck)))
    except Exception:  # noqa: BLE001 - Hypothesis found none: keep the first one
        return found


# -- one case ----------------------------------------------------------------------------------

def arrays(role: str, kind: str, case: LayerCase) -> dict[str, np.ndarray]:
    """The case's inputs, in its dtype (the reference reads the same values in float64)."""
    rng = np.random.default_rng(case.seed)
    dtype = DTYPES[case.dtype]
    N, n_in, n_out = case.batch, case.n_in, case.n_out
    scale = 10.0 ** rng.uniform(-1, 1)
    if role == "dense":
        drawn = {"x": scale * rng.standard_normal((N, n_in)),
                 "W": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in),
                 "b": 0.5 * rng.standard_normal(n_out),
                 "dout": rng.standard_normal((N, n_out))}
    elif role == "activation":
        spec = ACTIVATIONS[kind]
        z = scale * rng.standard_normal((N, n_out))
        for k in spec.kinks:  # off the kinks, by more than rounding
            near = np.abs(z - k.at) < 1e-3
            z[near] = k.at + np.where(rng.random(int(near.sum())) < 0.5, -1, 1) * 0.5
        drawn = {"x": z, "dout": rng.standard_normal((N, n_out))}
    else:
        spec = LOSSES[kind]
        logits = scale * rng.standard_normal((N, n_out))
        y_hat = ACTIVATIONS[spec.output].forward(logits) if spec.output else logits
        if spec.targets == "classes":
            y = rng.integers(0, n_out, size=N)
        elif spec.targets == "probabilities":
            y = rng.uniform(0.0, 1.0, size=(N, n_out))
        else:
            y = rng.standard_normal((N, n_out))
        if spec.kinks:  # off the kinks
            for _ in range(10):
                variable = spec.kink_variable(y_hat, y)
                if all(np.min(np.abs(variable - k.at)) > 1e-3 for k in spec.kinks):
                    break
                y_hat = y_hat + 0.01 * rng.standard_normal(y_hat.shape)
        drawn = {"y_hat": y_hat, "y": y}
    return {name: a.astype(dtype) if a.dtype.kind == "f" else a for name, a in drawn.items()}


def _answer(kit: LayerKit, role: str, kind: str, given: dict[str, np.ndarray]) -> dict[str, Any]:
    if role == "dense":
        return kit.dense_layer(given["x"], given["W"], given["b"], given["dout"])
    if role == "activation":
        return kit.activation_layer(kind, given["x"], given["dout"])
    return kit.loss_layer(kind, given["y_hat"], given["y"])


def references(kit: LayerKit, role: str, kind: str, given: dict[str, np.ndarray]
               ) -> dict[str, dict[str, Any]]:
    """{'torch': {...}, 'jax': {...}}: the layer's outputs by each framework, in float64."""
    from mybackprop.oracles import layer_vjp

    return _in_float64(layer_vjp, kit, role, kind, given)


def _bounds(kit: LayerKit, role: str, kind: str, given: dict[str, np.ndarray]
            ) -> dict[str, Any]:
    if role == "activation":  # with a looser formulation's rounding where measured so
        dtype = given["x"].dtype.name
        return bounds.activation(kind, given["x"].astype(np.float64),
                                 given["dout"].astype(np.float64),
                                 kind in formulation.kit_looser(kit, dtype))
    return _in_float64(bounds, kit, role, kind, given)


def _in_float64(module: Any, kit: LayerKit, role: str, kind: str,
                given: dict[str, np.ndarray]) -> Any:
    """module.dense, .activation or .loss (the oracles' or the bounds') on the case's inputs
    read in float64."""
    wide = {name: a.astype(np.float64) if a.dtype.kind == "f" else a
            for name, a in given.items()}
    if role == "dense":
        return module.dense(wide["x"], wide["W"], wide["b"], wide["dout"])
    if role == "activation":
        return module.activation(kind, wide["x"], wide["dout"])
    return module.loss(kind, kit.reduction, wide["y_hat"], wide["y"])


OUTPUT_NAMES = {"out": "out", "dx": "dx", "dW": "dw", "db": "db", "loss": "loss"}


def judge(kit: LayerKit, role: str, kind: str, case: LayerCase) -> tuple[str, str]:
    """(verdict, what is wrong) for one case: pass, fail, error or oracle_disagreement."""
    given = arrays(role, kind, case)
    try:
        with np.errstate(all="ignore"):
            mine = _answer(kit, role, kind, {k: v.copy() for k, v in given.items()})
    except LayerError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - the user's layer raised: its error
        return "error", f"raised {type(exc).__name__}: {exc}".splitlines()[0][:300]
    refs = references(kit, role, kind, given)
    scale = _bounds(kit, role, kind, given)
    oracle_allowed = bounds.allowed(scale, "float64")
    for name in scale:
        if not np.all(np.abs(np.asarray(refs["jax"][name]) - refs["torch"][name])
                      <= oracle_allowed[name]):
            return "oracle_disagreement", f"{name}: PyTorch and JAX differ"
    allowed = bounds.allowed(scale, case.dtype)
    for name in scale:
        value, ref = np.asarray(mine[name], dtype=np.float64), np.asarray(refs["torch"][name])
        if not np.all(np.isfinite(value)):
            return "error", f"{_where(kit, role, kind, name)}: {OUTPUT_NAMES[name]} is NaN or inf"
        wrong = np.abs(value - ref) > allowed[name]
        if np.any(wrong):
            index = tuple(int(i) for i in np.argwhere(wrong)[0]) if value.ndim else ()
            return "fail", (f"{_where(kit, role, kind, name)}: {OUTPUT_NAMES[name]}"
                            f"{list(index) if index else ''} is {float(value[index]):.6g}, "
                            f"expected {float(ref[index]):.6g} ({int(wrong.sum())} of "
                            f"{wrong.size} elements wrong)")
    return "pass", ""


def _where(kit: LayerKit, role: str, kind: str, name: str) -> str:
    if role == "loss":
        return kit.name_of(role, kind)
    return kit.name_of(role, kind, "forward" if name == "out" else "backward")


# -- diagnosis ---------------------------------------------------------------------------------

def diagnose(kit: LayerKit, role: str, kind: str, cases: list[LayerCase]) -> str:
    """The kind of mistake, named at the user's function, or '' (unknown): a pattern is named
    only when it explains every output the layer returned in every failing case given (the
    smallest case alone often fits several: one sample where dout > 0 cannot tell a missing
    mask from a mask by dout's sign). Several that fit all are said as 'either ... or ...'."""
    found = [_fits(kit, role, kind, case) for case in cases]
    found = [f for f in found if f is not None]
    if not found:
        return ""
    common = [text for text in found[0][1] if all(text in f[1] for f in found[1:])]
    if len(common) != 1:
        return "" if not common else "either " + " or ".join(common)
    return f"{found[0][0]} {common[0]}"


def _fits(kit: LayerKit, role: str, kind: str, case: LayerCase
          ) -> tuple[str, list[str]] | None:
    """(the function that returned the wrong outputs, the patterns that explain them all) for
    one case, or None where the case does not fail by numbers."""
    given = arrays(role, kind, case)
    try:
        with np.errstate(all="ignore"):
            mine = _answer(kit, role, kind, {k: v.copy() for k, v in given.items()})
    except Exception:  # noqa: BLE001 - an error is its own message
        return None
    refs = references(kit, role, kind, given)["torch"]
    scale = _bounds(kit, role, kind, given)
    loose = {name: 4 * a for name, a in bounds.allowed(scale, case.dtype).items()}
    wrong = [n for n in scale if not _close(mine[n], refs[n], loose[n])]
    if not wrong:
        return None
    # A hypothesis is another computation, with rounding of its own that the layer's bounds
    # do not carry (the derivative alone is not scaled by dout): 64 u of its own size and of
    # its tensor's largest element more.
    u = float(np.finfo(case.dtype).eps) / 2
    fits = [text for text, hypothesis in _hypotheses(role, kind, given, refs)
            if set(hypothesis) >= set(wrong) and all(
                _close(mine[n], hypothesis[n], loose[n] + 64 * u * (
                    np.abs(hypothesis[n]) + np.abs(hypothesis[n]).max(initial=0)))
                for n in hypothesis)]
    fits += _factor(mine, refs, wrong, loose)
    return _where(kit, role, kind, wrong[0]), fits


def _close(value: Any, expected: Any, allowed: Any) -> bool:
    value, expected = np.asarray(value, np.float64), np.asarray(expected, np.float64)
    return value.shape == expected.shape and bool(np.all(np.abs(value - expected) <= allowed))


def _hypotheses(role: str, kind: str, given: dict[str, np.ndarray], refs: dict[str, Any]
                ) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(what it says, the outputs it predicts for the wrong ones) for one-layer slips."""
    wide = {n: a.astype(np.float64) if a.dtype.kind == "f" else a for n, a in given.items()}
    found: list[tuple[str, dict[str, np.ndarray]]] = []
    if role == "activation":
        spec, z, g = ACTIVATIONS[kind], wide["x"], wide["dout"]
        a = spec.forward(z)
        found.append(("returns dout unchanged: it never multiplies by the derivative "
                      f"{kind}'(x)", {"dx": g}))
        if kind == "softmax":
            found.append(("multiplies dout by the diagonal of the softmax Jacobian alone, "
                          "a (1 - a): the Jacobian is full, its VJP a (dout - <dout, a>)",
                          {"dx": g * a * (1 - a)}))
        if spec.elementwise:
            d = spec.derivative(z, a)
            found.append((f"returns the derivative {kind}'(x) alone: it never multiplies by "
                          "dout", {"dx": d}))
            at_output = spec.derivative(a, spec.forward(a))
            if not np.allclose(at_output, d):
                found.append((f"evaluates the derivative at the output a = {kind}(x) instead of "
                              "at its input x (the cache holds the wrong array)",
                              {"dx": g * at_output}))
            if kind in ("relu", "leaky_relu"):
                masked = g * spec.derivative(g, spec.forward(g))
                if not np.allclose(masked, g * d):
                    found.append(("masks by the sign of dout instead of the sign of its input "
                                  "x (the cache's input)", {"dx": masked}))
    elif role == "dense":
        x, W, g = wide["x"], wide["W"], wide["dout"]
        found.append(("returns db = dout's mean over the samples, not their sum",
                      {"db": g.mean(axis=0)}))
        found.append(("returns dw and db averaged over the samples: the loss's gradient already "
                      "carries its 1/N", {"dW": refs["dW"] / len(x), "db": refs["db"] / len(x)}))
        if W.shape[0] == W.shape[1]:  # square: the shapes cannot tell
            found.append(("multiplies by W where the VJP needs W^T (dx = dout W^T)",
                          {"dx": g @ W.T}))
            found.append(("returns dw transposed", {"dW": refs["dW"].T}))
    else:
        spec = LOSSES[kind]
        y_hat = wide["y_hat"]
        n = len(y_hat)
        found.append(("returns the gradient of the summed loss: it never divides by N",
                      {"dx": refs["dx"] * n}))
        if spec.through_softmax:
            p = np.exp(y_hat - y_hat.max(axis=-1, keepdims=True))
            p = p / p.sum(axis=-1, keepdims=True)
            found.append(("returns softmax(scores) / N without subtracting 1 at each sample's "
                          "class", {"dx": p / n}))
    return found


def _factor(mine: dict[str, Any], refs: dict[str, Any], wrong: list[str],
            allowed: dict[str, Any]) -> list[str]:
    """'is 2 times the right value' where every wrong output is one named factor off."""
    said = []
    for c, label in FACTORS.items():
        if all(_close(mine[n], c * np.asarray(refs[n]), abs(c) * allowed[n]) for n in wrong):
            outputs = ", ".join(OUTPUT_NAMES[n] for n in wrong)
            said.append(f"returns {outputs} {label} times the right value"
                        if label != "-1" else f"returns {outputs} with the wrong sign")
    return said

