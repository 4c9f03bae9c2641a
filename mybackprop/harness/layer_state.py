"""State across calls: what a layer checked one call at a time never shows.

Layers keep state: an object its caches and gradients, a function whatever it hides in a
module or a default argument. Each check below calls one layer of a kit in a sequence a network
or a training loop makes, and compares every answer with the vector-Jacobian product of the
inputs that answer belongs to:

- ``stale cache``: forward(x1), forward(x2), backward(dout2) must be the VJP at x2; for layer
  functions, backward(dout1, cache1) after the second forward must still be the VJP at x1 (a
  function that reads the last forward's state instead of its cache argument fails here).
- ``accumulation``: forward(x1), backward(dout1), forward(x2), backward(dout2) must give the
  VJP at x2 alone, and a second backward after one forward the same answer again (dweights +=
  without zeroing fails here: the second answer is the sum).
- ``parameters``: backward leaves the weights and biases alone (a layer that updates itself
  inside backward fails), and forward and backward leave the caller's x and dout alone.
- ``aliasing``: a caller that changes x in place after forward, before backward: a cache that
  holds x itself (not a copy) gives the gradient of the changed x. Standard code does this
  (``cache = x``), so it is a note, never a failure.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mybackprop.harness.layer_check import (
    LayerCase,
    LayerResult,
    _bounds,
    arrays,
    check_each_layer,
    kit_named,
    layer_roles,
    references,
)
from mybackprop.harness.layers import LayerError, LayerKit, Session, _named

STATE_CASES = 20
CHECKS = ("stale cache", "accumulation", "parameters", "aliasing")


def check_layers(kit: Any, cases: int = 500, seed: int = 0, shrink: bool = True,
                 state_cases: int = STATE_CASES) -> list[LayerResult]:
    """Check every layer of a kit alone over `cases` random cases each (its dtypes in turn),
    then its state across calls over `state_cases` (0: none): `kit` is a network declared with
    layer_functions or layer_objects, or its --impl string. A failure is named at the user's
    own function."""
    kit = kit_named(kit)
    alone = check_each_layer(kit, cases, seed, shrink)
    passed = {r.layer for r in alone if r.verdict == "pass"}
    return alone + (check_state(kit, state_cases, seed, passed) if state_cases else [])


def check_state(kit: LayerKit, cases: int = STATE_CASES, seed: int = 0,
                layers: set[str] | None = None) -> list[LayerResult]:
    """Every state check on every dense and activation layer of the kit (of `layers` only:
    those that pass alone, whose answers a sequence of calls can be held to), and the
    stale-cache check of loss objects."""
    results = []
    for role, kind in layer_roles(kit):
        if layers is not None and (role if role == "dense" else f"{role} {kind}") not in layers:
            continue
        for check in CHECKS:
            if role == "loss" and (kit.style == "functions" or check != "stale cache"):
                continue
            results.append(_run(kit, role, kind, check, cases, seed))
    return results


def _run(kit: LayerKit, role: str, kind: str, check: str, cases: int, seed: int
         ) -> LayerResult:
    started = time.perf_counter()
    layer = role if role == "dense" else f"{role} {kind}"
    names = (kit.name_of(role, kind) if role == "loss" else
             f"{kit.name_of(role, kind, 'forward')} / {kit.name_of(role, kind, 'backward')}")
    result = LayerResult(f"{layer}, {check}", names, role)
    rng = np.random.default_rng([seed, len(role), len(kind), len(check)])
    for i in range(cases):
        shape = (int(rng.integers(2, 9)), int(rng.integers(1, 9)),
                 int(rng.integers(2, 9)))
        pair = [LayerCase(kit.dtypes[i % len(kit.dtypes)], *shape, int(rng.integers(2**31)))
                for _ in range(2)]
        result.cases += 1
        try:
            with np.errstate(all="ignore"):
                found = _CHECKS[check](kit, role, kind, *pair)
        except LayerError as exc:
            found = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - the user's layer raised: its error
            found = ("error", f"raised {type(exc).__name__}: {exc}".splitlines()[0][:300])
        if found is None:
            continue
        verdict, said = found
        if verdict == "error":
            result.errors += 1
        elif verdict == "fail":
            result.failed += 1
        if verdict == "note":
            result.notes = result.notes or [said]
        elif result.smallest is None:
            result.smallest, result.diagnosis, result.shrunk = pair[0], said, False
    result.seconds = time.perf_counter() - started
    return result


def _inputs(role: str, kind: str, case: LayerCase, like: dict[str, np.ndarray] | None = None
            ) -> dict[str, np.ndarray]:
    """A case's inputs; with `like`, its parameters (W, b) are `like`'s: two batches through
    one layer."""
    given = arrays(role, kind, case)
    if like is not None and role == "dense":
        given["W"], given["b"] = like["W"], like["b"]
    return given


def _session(kit: LayerKit, role: str, kind: str, given: dict[str, np.ndarray]) -> Session:
    return kit.session(role, kind, given.get("W"), given.get("b"))


def _forward(layer: Session, role: str, given: dict[str, np.ndarray]) -> Any:
    if role == "loss":
        return layer.forward(given["y_hat"].copy(), given["y"].copy())[1]
    return layer.forward(given["x"].copy())[1]


def _backward(layer: Session, role: str, handle: Any, given: dict[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
    if role == "loss":
        return layer.backward(handle)
    return layer.backward(handle, given["dout"].copy())


def _matches(kit: LayerKit, role: str, kind: str, given: dict[str, np.ndarray],
             answer: dict[str, np.ndarray], scale: float = 1.0) -> bool:
    """Is `answer` scale x the VJP at `given`, within one layer's rounding?"""
    from mybackprop.judging import layers as bounds

    refs = references(kit, role, kind, given)["torch"]
    allowed = bounds.allowed(_bounds(kit, role, kind, given), given[_first(role)].dtype.name)
    return all(np.asarray(answer[n]).shape == np.shape(refs[n]) and bool(np.all(
        np.abs(np.asarray(answer[n], np.float64) - scale * np.asarray(refs[n]))
        <= abs(scale) * np.asarray(allowed[n]))) for n in answer)


def _summed(kit: LayerKit, role: str, kind: str, first: dict[str, np.ndarray],
            second: dict[str, np.ndarray], answer: dict[str, np.ndarray]) -> bool:
    """Is `answer` the sum of the VJPs at both (gradients accumulated across calls)?"""
    a, b = (references(kit, role, kind, g)["torch"] for g in (first, second))
    return all(np.allclose(np.asarray(answer[n], np.float64), a[n] + b[n], rtol=1e-4,
                           atol=1e-6 * (np.abs(a[n]).max(initial=0) + np.abs(b[n]).max(
                               initial=0))) for n in ("dW", "db") if n in answer)


def _first(role: str) -> str:
    return "y_hat" if role == "loss" else "x"


def _two_batches(role: str, kind: str, case1: LayerCase, case2: LayerCase
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two batches of the same shapes through one layer (the same W and b)."""
    one = _inputs(role, kind, case1)
    return one, _inputs(role, kind, dataclasses.replace(case1, seed=case2.seed), one)


def _stale_cache(kit: LayerKit, role: str, kind: str, case1: LayerCase, case2: LayerCase
                 ) -> tuple[str, str] | None:
    one, two = _two_batches(role, kind, case1, case2)
    layer = _session(kit, role, kind, one)
    first = _forward(layer, role, one)
    second = _forward(layer, role, two)
    answer = _backward(layer, role, second, two)
    back = layer.name("backward") if role != "loss" else layer.name()
    if not _matches(kit, role, kind, two, answer):
        # the first forward's input with this backward's dout (a loss: the first call alone)
        stale = one if role == "loss" else {**two, "x": one["x"]}
        if _matches(kit, role, kind, stale, answer):
            return "fail", (f"{back} after a second forward uses the first forward's inputs: a "
                            "cache kept from an earlier call (stale): backward must use the "
                            "last forward's")
        return "fail", f"{back} after a second forward is not the VJP at the second's inputs"
    if kit.style == "functions" and role != "loss":
        earlier = _backward(layer, role, first, one)
        if not _matches(kit, role, kind, one, earlier):
            return "fail", (f"{back} ignores its cache argument: with the first forward's cache "
                            "it still answers for the last forward's inputs (state kept in a "
                            "module, a global or a default argument)")
    return None


def _accumulation(kit: LayerKit, role: str, kind: str, case1: LayerCase, case2: LayerCase
                  ) -> tuple[str, str] | None:
    one, two = _two_batches(role, kind, case1, case2)
    layer = _session(kit, role, kind, one)
    _backward(layer, role, _forward(layer, role, one), one)
    answer = _backward(layer, role, _forward(layer, role, two), two)
    back = layer.name("backward")
    if role == "dense" and kit.zero_grad:  # it accumulates on purpose: the sum, then zeroed
        return _declared_accumulation(kit, layer, one, two, answer)
    if not _matches(kit, role, kind, two, answer):
        if role == "dense" and _summed(kit, role, kind, one, two, answer):
            return "fail", (f"{back} accumulates its gradients across iterations (dweights += "
                            "...) and nothing zeroes them: the second iteration's are the sum "
                            "of both")
        return "fail", f"{back} on a second iteration is not the VJP at its inputs"
    handle = _forward(layer, role, two)
    _backward(layer, role, handle, two)
    again = _backward(layer, role, handle, two)
    if not _matches(kit, role, kind, two, again):
        if _matches(kit, role, kind, two, again, scale=2.0):
            return "fail", (f"{back} called twice after one forward returns twice the gradient "
                            "the second time: it accumulates (+=) instead of setting")
        return "fail", f"{back} called twice after one forward answers differently the second time"
    return None


def _declared_accumulation(kit: LayerKit, layer: Session, one: dict[str, np.ndarray],
                           two: dict[str, np.ndarray], answer: dict[str, np.ndarray]
                           ) -> tuple[str, str] | None:
    """A dense layer declared to accumulate (zero_grad=...): two iterations give the sum of
    both gradients, and after zero_grad one gives its own again."""
    back, zero = layer.name("backward"), f"{_named(kit.dense)}.{kit.zero_grad}"
    if not _summed(kit, "dense", "", one, two, answer):
        return "fail", (f"{back} is declared to accumulate ({kit.zero_grad} zeroes it), but a "
                        "second iteration's gradients are not the sum of both")
    layer.zero_grad()
    fresh = _backward(layer, "dense", _forward(layer, "dense", two), two)
    if not _matches(kit, "dense", "", two, {n: fresh[n] for n in ("dW", "db")}):
        return "fail", (f"{zero} does not zero the gradients: after it, a backward still adds "
                        "to what was there")
    return None


def _parameters(kit: LayerKit, role: str, kind: str, case1: LayerCase, case2: LayerCase
                ) -> tuple[str, str] | None:
    given = _inputs(role, kind, case1)
    layer = _session(kit, role, kind, given)
    x, dout = given["x"].copy(), given["dout"].copy()
    before = [a.copy() for a in layer.parameters()] if role == "dense" else []
    handed_x = given["x"].copy()
    handle = layer.forward(handed_x)[1]
    forward_changed = not np.array_equal(handed_x, x)
    handed_dout = dout.copy()
    layer.backward(handle, handed_dout)
    if role == "dense":
        names = (kit.attributes["weights"], kit.attributes["biases"]) \
            if kit.style == "objects" else ("w", "b")
        for name, old, now in zip(names, before, layer.parameters(), strict=True):
            if not np.array_equal(old, now):
                return "fail", (f"{layer.name('backward')} changes the layer's {name}: backward "
                                "must leave the parameters alone (update them in a step of "
                                "their own, after every gradient is computed)")
    if forward_changed:
        return "fail", f"{layer.name('forward')} changes its input x in place"
    if not np.array_equal(handed_dout, dout):
        said = (f"{layer.name('backward')} changes its argument dout in place (dx = dout; "
                "dx[...] = 0 writes into the caller's array)")
        if kit.writes_dout:  # declared: a note
            return "note", f"{said}, as declared: a caller must not read dout after backward"
        return "fail", f"{said}: copy it first, or declare writes_dout=True"
    return None


def _aliasing(kit: LayerKit, role: str, kind: str, case1: LayerCase, case2: LayerCase
              ) -> tuple[str, str] | None:
    given = _inputs(role, kind, case1)
    layer = _session(kit, role, kind, given)
    handed = given["x"].copy()
    handle = layer.forward(handed)[1]
    handed += 1.0  # the caller changes x in place (x += ..., an optimiser, a dropout mask)
    answer = layer.backward(handle, given["dout"].copy())
    if not _matches(kit, role, kind, given, answer):
        return "note", (f"{layer.name('forward')} keeps x itself in its cache, not a copy: a "
                        "caller that changes x in place before backward gets the gradient of "
                        "the changed x (harmless where nothing writes into x)")
    return None


_CHECKS: dict[str, Callable[..., tuple[str, str] | None]] = {
    "stale cache": _stale_cache, "accumulation": _accumulation, "parameters": _parameters,
    "aliasing": _aliasing}
