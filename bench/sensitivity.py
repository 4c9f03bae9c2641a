"""How sensitive is the tolerance? False positives on correct cases, and the smallest error caught.

    .venv/bin/python bench/sensitivity.py                 # 10,000 cases + 2,000 injections/dtype
    .venv/bin/python bench/sensitivity.py --cases 500 --injections 200   # a quick look

1. False positives: random correct cases (the default case space; element, vector and matrix
   levels in turn; float32 and float64) through the full check (PyTorch and JAX, finite
   differences as tie-breaker). Any verdict other than pass is counted. The same unperturbed
   answers are also judged by gradcheck's and check_grads' default tolerances.
2. Sensitivity: in a correct answer, one randomly chosen nonzero gradient element is multiplied
   by (1 + eps) and rounded to the candidate's dtype, as a real answer would be. For each eps the
   table gives the share of injections each tolerance catches, and the smallest eps caught in at
   least 99% of them. Same elements, same eps, same run for all three tolerances.

gradcheck: |a - b| <= 1e-5 + 1e-3 |b| (torch.autograd.gradcheck's defaults). check_grads:
|a - b| <= tol + tol |b| with tol 1e-5 for float64 and 2e-3 for float32 (jax.test_util
defaults; check_grads compares a scalar projection, so per element is its tightest reading).
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from mybackprop.oracles import load_oracle
from mybackprop.oracles.finite_differences import FiniteDifferenceOracle

import mybackprop as mb
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.contract import Supports, to_gradients
from mybackprop.harness.runner import Checker
from mybackprop.judging.tolerance import Tolerance, gradient_scales

LEVELS = {"element": mb.element, "vector": mb.vector, "matrix": mb.matrix}
EPSILONS = [10.0 ** (k / 2) for k in range(-32, -1)]  # 1e-16 ... 1e-1, half decades
CATCH_RATE = 0.99
GRADCHECK = {"float32": (1e-5, 1e-3), "float64": (1e-5, 1e-3)}  # (atol, rtol)
CHECK_GRADS = {"float32": (2e-3, 2e-3), "float64": (1e-5, 1e-5)}
TARGET = {"float32": 1e-4, "float64": 1e-9}  # the targets for the smallest eps caught
SPACES = {
    # The property suite's space: inputs 1e-3 to 1e3, logits up to 1e3 times that: saturation.
    "default": CaseSpace(),
    # Ordinary networks: inputs 0.1 to 10, logits at the hidden scale.
    "moderate": CaseSpace(input_log10_scale=(-1.0, 1.0), max_output_log10_scale=0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="correct cases for false "
                        "positives (10,000)")
    parser.add_argument("--injections", type=int, default=2_000,
                        help="cases per dtype for error injection (2,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch_oracle, jax_oracle = load_oracle("torch"), load_oracle("jax")
    checker = Checker([torch_oracle, jax_oracle], tie_breaker=FiniteDifferenceOracle())
    rng = np.random.default_rng(args.seed)
    space = CaseSpace()

    started = time.perf_counter()
    verdicts: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    baseline_fp = collections.Counter()
    examples = []
    candidates = {level: mb.load_candidate(f"mybackprop:{level}") for level in LEVELS}
    for case in range(args.cases):
        problem = sample_problem(rng, space)
        level = list(LEVELS)[case % 3]
        references = checker.references(problem)
        outcome = checker.check(candidates[level], problem, references)
        dtype = problem.dtype.name
        verdicts[(level, dtype)][outcome.verdict] += 1
        if outcome.verdict not in ("pass", "skipped"):
            examples.append(f"case {case}: {outcome.message()}")
        if outcome.verdict == "pass":
            answer = to_gradients(LEVELS[level](problem.copy()), problem, Supports())
            reference = references.answers["torch"].tensors()
            for name, (atol, rtol) in (("gradcheck", GRADCHECK[dtype]),
                                       ("check_grads", CHECK_GRADS[dtype])):
                if any(np.any(np.abs(a - reference[t]) > atol + rtol * np.abs(reference[t]))
                       for t, a in answer.tensors().items()):
                    baseline_fp[(name, dtype)] += 1
    fp_seconds = time.perf_counter() - started

    injected = {space_name: inject(injection_space, args.injections, rng, torch_oracle)
                for space_name, injection_space in SPACES.items()}
    injection_seconds = time.perf_counter() - started - fp_seconds

    print(f"# Sensitivity of the tolerance (seed {args.seed})\n")
    print(f"False positives over {args.cases} random correct cases ({fp_seconds:.0f} s):\n")
    print("| level | dtype | cases | pass | fail | oracle_disagreement | error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (level, dtype), counts in sorted(verdicts.items()):
        print(f"| {level} | {dtype} | {sum(counts.values())} | {counts['pass']} | "
              f"{counts['fail']} | {counts['oracle_disagreement']} | {counts['error']} |")
    total_fp = sum(c["fail"] + c["error"] + c["oracle_disagreement"] for c in verdicts.values())
    print(f"\nmybackprop: {total_fp} false positives. On the same passing answers, gradcheck's "
          f"tolerance flags {sum(v for k, v in baseline_fp.items() if k[0] == 'gradcheck')} and "
          f"check_grads' {sum(v for k, v in baseline_fp.items() if k[0] == 'check_grads')}.")
    for line in examples[:5]:
        print(f"  {line}")
    print(f"\nInjected relative error in one nonzero element, {args.injections} injections per "
          f"dtype and space ({injection_seconds:.0f} s): the smallest eps caught in >= "
          f"{CATCH_RATE:.0%} of them. Why an element escapes: its tolerance exceeds eps |value|; "
          f"the last columns give the share of elements where tolerance / |value| > 1e-9 "
          f"(float64) or 1e-4 (float32), the targets.\n")
    print("| space | dtype | mybackprop | gradcheck defaults | check_grads defaults | "
          "tol/|value| above target |")
    print("|---|---|---:|---:|---:|---:|")
    for space_name, (caught, ratios, _) in injected.items():
        for dtype in ("float32", "float64"):
            row = [_smallest(caught[(label, dtype)] / len(ratios[dtype]))
                   for label in ("mybackprop", "gradcheck", "check_grads")]
            above = np.mean(np.array(ratios[dtype]) > TARGET[dtype])
            print(f"| {space_name} | {dtype} | " + " | ".join(row) + f" | {above:.1%} |")
    for space_name, (caught, ratios, spread) in injected.items():
        print(f"\nShare caught by eps, {space_name} space:\n")
        print("| eps | " + " | ".join(f"{label} {dtype}" for dtype in ("float32", "float64")
                                      for label in ("mybackprop", "gradcheck", "check_grads"))
              + " |")
        print("|---:|" + "---:|" * 6)
        for k, eps in enumerate(EPSILONS):
            cells = [f"{caught[(label, dtype)][k] / len(ratios[dtype]):.1%}"
                     for dtype in ("float32", "float64")
                     for label in ("mybackprop", "gradcheck", "check_grads")]
            print(f"| {eps:.0e} | " + " | ".join(cells) + " |")
        print(f"\nTolerance / |value| of the injected elements, {space_name} space "
              "(percentiles):\n")
        print("| dtype | 50% | 90% | 95% | 99% |")
        print("|---|---:|---:|---:|---:|")
        for dtype in ("float32", "float64"):
            q = np.quantile(ratios[dtype], [0.5, 0.9, 0.95, 0.99])
            print(f"| {dtype} | " + " | ".join(f"{x:.1e}" for x in q) + " |")
        print(f"\nHow far correct answers are from PyTorch, |error| / |value| of the same "
              f"elements, {space_name} space (percentiles): no tolerance can catch errors "
              "smaller than these without failing correct code.\n")
        print("| correct answer | 50% | 90% | 95% | 99% |")
        print("|---|---:|---:|---:|---:|")
        for key, label in (("float32", "matrix/vector level, float32"),
                           ("float64", "matrix/vector level, float64"),
                           ("jax", "JAX, float64")):
            q = np.quantile(spread[key], [0.5, 0.9, 0.95, 0.99])
            print(f"| {label} | " + " | ".join(f"{x:.1e}" for x in q) + " |")


def inject(space: CaseSpace, count: int, rng: np.random.Generator, torch_oracle: object
           ) -> tuple[dict, dict[str, list[float]], dict[str, list[float]]]:
    """Inject relative errors into `count` correct elements per dtype; count what is caught."""
    caught: dict = collections.defaultdict(lambda: np.zeros(len(EPSILONS)))
    ratios: dict[str, list[float]] = {"float32": [], "float64": []}
    # How far correct implementations really are from the float64 truth, relative to |value|:
    # the matrix and vector levels in the candidate's dtype, and JAX against PyTorch.
    spread: dict[str, list[float]] = {"float32": [], "float64": [], "jax": []}
    tolerance = Tolerance()
    jax_oracle = load_oracle("jax")
    for dtype in ("float32", "float64"):
        dtype_space = CaseSpace(**{**vars(space), "dtypes": (dtype,)})
        while len(ratios[dtype]) < count:
            problem = sample_problem(rng, dtype_space)
            answer = to_gradients(mb.matrix(problem), problem, Supports())
            reference = torch_oracle.gradients(problem)
            allowed = tolerance.allowed(gradient_scales(problem), dtype)
            tensors = answer.tensors()
            cells = [(t, i) for t, a in tensors.items() for i in np.ndindex(*a.shape)
                     if a[i] != 0]
            if not cells:
                continue
            name, index = cells[rng.integers(len(cells))]
            value, ref = tensors[name][index], reference.tensors()[name][index]
            ours = allowed.tensors[name][index]
            if abs(float(value) - ref) > ours or ref == 0:
                continue  # not a correct, nonzero element
            ratios[dtype].append(ours / abs(ref))
            other = to_gradients(mb.vector(problem), problem, Supports()).tensors()[name][index]
            spread[dtype].append(max(abs(float(value) - ref), abs(float(other) - ref)) / abs(ref))
            spread["jax"].append(abs(jax_oracle.gradients(problem).tensors()[name][index] - ref)
                                 / abs(ref))
            for k, eps in enumerate(EPSILONS):
                perturbed = float(np.asarray(float(value) * (1 + eps), dtype=dtype))
                error = abs(perturbed - ref)
                for label, limit in (("mybackprop", ours),
                                     ("gradcheck", _allclose_limit(GRADCHECK[dtype], ref)),
                                     ("check_grads", _allclose_limit(CHECK_GRADS[dtype], ref))):
                    caught[(label, dtype)][k] += error > limit
    return caught, ratios, spread


def _allclose_limit(atol_rtol: tuple[float, float], reference: float) -> float:
    atol, rtol = atol_rtol
    return atol + rtol * abs(reference)


def _smallest(rates: np.ndarray) -> str:
    for eps, rate in zip(EPSILONS, rates, strict=True):
        if rate >= CATCH_RATE:
            return f"{eps:.0e}"
    return f"> {EPSILONS[-1]:.0e} (never {CATCH_RATE:.0%})"


if __name__ == "__main__":
    main()
