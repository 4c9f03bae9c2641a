"""Compare the tolerance's two ways of propagating errors: linear bounds and quadrature.

    .venv/bin/python bench/tolerance_models.py              # 3,000 cases per space
    .venv/bin/python bench/tolerance_models.py --cases 500  # a quick look

For each case space, random correct cases (the matrix and vector levels in the case's dtype,
JAX in float64 on every other case) against PyTorch. For each propagation it prints:
- the largest error seen in units of u e (the allowed difference is factor * u * e per side, so
  16 / this is the margin a correct float32 or float64 answer keeps, 32 / it the oracle pair's);
- at one random nonzero element per case, the share where the shipped tolerance (factor 16)
  would catch the issue's target error (1e-4 relative in float32, 1e-9 in float64).
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from mybackprop.oracles import load_oracle

import mybackprop as mb
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.contract import Supports, to_gradients
from mybackprop.judging.tolerance import (
    DEFAULT_FACTOR,
    PROPAGATIONS,
    UNIT_ROUNDOFF,
    gradient_scales,
)

TARGET = {"float32": 1e-4, "float64": 1e-9}
SPACES = {
    "default": CaseSpace(),
    "moderate": CaseSpace(input_log10_scale=(-1.0, 1.0), max_output_log10_scale=0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3_000, help="cases per space (3,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch_oracle, jax_oracle = load_oracle("torch"), load_oracle("jax")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    worst: dict = collections.defaultdict(float)
    caught: dict = collections.defaultdict(list)
    for space_name, space in SPACES.items():
        for case in range(args.cases):
            problem = sample_problem(rng, space)
            dtype = problem.dtype.name
            reference = torch_oracle.gradients(problem).tensors()
            answers = [to_gradients(level(problem.copy()), problem, Supports()).tensors()
                       for level in (mb.matrix, mb.vector)]
            jax = jax_oracle.gradients(problem).tensors() if case % 2 == 0 else None
            cells = [(t, i) for t, a in reference.items() for i in np.ndindex(*a.shape)
                     if a[i] != 0]
            pick = cells[rng.integers(len(cells))] if cells else None
            for propagation in PROPAGATIONS:
                scales = gradient_scales(problem, propagation=propagation).tensors
                for answer in answers:
                    worst[(space_name, propagation, dtype)] = max(
                        worst[(space_name, propagation, dtype)],
                        _worst(answer, reference, scales, UNIT_ROUNDOFF[dtype]))
                if jax is not None:
                    scales64 = gradient_scales(problem, "float64", propagation).tensors
                    worst[(space_name, propagation, "pair")] = max(
                        worst[(space_name, propagation, "pair")],
                        _worst(jax, reference, scales64, UNIT_ROUNDOFF["float64"]))
                if pick is not None:
                    name, index = pick
                    u = UNIT_ROUNDOFF[dtype]
                    allowed = (DEFAULT_FACTOR[dtype] * u + DEFAULT_FACTOR["float64"]
                               * UNIT_ROUNDOFF["float64"]) * scales[name][index]
                    value = float(reference[name][index])
                    error = abs(float(np.asarray(float(answers[0][name][index]) * (
                        1 + TARGET[dtype]), dtype=dtype)) - value)
                    caught[(space_name, propagation, dtype)].append(error > allowed)
    print(f"# Error propagation: linear bounds against quadrature (seed {args.seed}, "
          f"{args.cases} cases per space, {time.perf_counter() - started:.0f} s)\n")
    print("| space | propagation | worst float32 (margin) | worst float64 (margin) | "
          "worst JAX vs PyTorch (margin) | caught at 1e-4, float32 | caught at 1e-9, float64 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for space_name in SPACES:
        for propagation in PROPAGATIONS:
            key = (space_name, propagation)
            cells = [f"{worst[(*key, d)]:.2f} ({limit / worst[(*key, d)]:.1f}x)"
                     for d, limit in (("float32", 16), ("float64", 16), ("pair", 32))]
            cells += [f"{np.mean(caught[(*key, d)]):.1%}" for d in ("float32", "float64")]
            print(f"| {space_name} | {propagation} | " + " | ".join(cells) + " |")


def _worst(answer: dict, reference: dict, scales: dict, u: float) -> float:
    """The largest |answer - reference| / (u e) over every element."""
    return max(float(np.max(np.abs(answer[name].astype(np.float64) - reference[name])
                            / (u * scales[name]))) for name in reference)


if __name__ == "__main__":
    main()
