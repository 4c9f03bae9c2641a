"""Calibrate the stochastic-arithmetic estimate of float32 rounding (judging/stochastic.py).

    .venv/bin/python bench/stochastic.py                    # 1,000 cases per space
    .venv/bin/python bench/stochastic.py --cases 200        # a quick look

For random float32 cases it runs correct implementations written in different ways: the three
levels (the element level sums one product at a time, as loops in float32 do), the formulation
catalogue of bench/formulations.py, and PyTorch's autograd itself in float32. For every nonzero
gradient element it divides the implementation's real error (against the float64 oracle) by
u times the spread the stochastic estimate gives that element (its root mean square deviation
over the runs). The tolerance allows MARGIN x the tolerance factor x that: the largest ratio
over every element of every implementation must stay well below it. It also prints how large
the estimate is relative to the element's value, the linear bound's beside it, and the seconds
each costs per case.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
from mybackprop.oracles import load_oracle

import mybackprop as mb
from mybackprop.harness import formulation
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.contract import Candidate, Supports, to_gradients
from mybackprop.judging import stochastic
from mybackprop.judging.tolerance import UNIT_ROUNDOFF, scales_for

sys.path.insert(0, str(Path(__file__).parent))
import formulations  # noqa: E402

SPACES = {
    "moderate": CaseSpace(input_log10_scale=(-1.0, 1.0), max_output_log10_scale=0,
                          dtypes=("float32",)),
    "default": CaseSpace(dtypes=("float32",)),
}
QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


CANDIDATES = {"matrix": mb.matrix, "vector": mb.vector, "element": mb.element,
              **{f.__name__: f for f in formulations.FORMULATIONS
                 if f.__name__ != "one_sample_at_a_time"}}


def _looser(function) -> frozenset[str]:
    """What a run measures the implementation to write in a looser formulation (the
    catalogue's sigmoid through tanh): its elements are judged by that spread, as in a run."""
    candidate = Candidate(function.__name__, function, Supports())
    return frozenset(formulation.measure(candidate, "float32", lambda p: (to_gradients(
        function(p.copy()), p, Supports()), "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per space (1,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch_oracle = load_oracle("torch")
    looser = {label: _looser(function) for label, function in CANDIDATES.items()}
    print("measured looser: " + (", ".join(f"{label} ({', '.join(sorted(names))})"
                                           for label, names in looser.items() if names)
                                 or "none") + "\n")
    u = UNIT_ROUNDOFF["float32"]
    rng = np.random.default_rng(args.seed)
    print(f"# Stochastic rounding estimate, float32 (seed {args.seed}, {stochastic.RUNS} runs)\n")
    for space_name, space in SPACES.items():
        ratios = collections.defaultdict(list)
        worst: dict[str, tuple] = {}
        spread_rel, linear_rel, seconds = [], [], collections.Counter()
        for case in range(args.cases):
            problem = sample_problem(rng, space)
            reference = torch_oracle.gradients(problem).tensors()
            started = time.perf_counter()
            linear = scales_for(problem, ("float32",))[0].tensors
            seconds["linear"] += time.perf_counter() - started
            started = time.perf_counter()
            spreads = {frozenset(): stochastic.spread(problem, "float32")}
            seconds["stochastic"] += time.perf_counter() - started
            spread = spreads[frozenset()]
            for name, value in reference.items():
                nonzero = value != 0
                spread_rel.append(u * spread[name][nonzero] / np.abs(value[nonzero]))
                linear_rel.append(u * linear[name][nonzero] / np.abs(value[nonzero]))
            for label, candidate in CANDIDATES.items():
                answer = to_gradients(candidate(problem.copy()), problem, Supports()).tensors()
                loose = looser[label] & set(problem.activations)
                if loose not in spreads:
                    spreads[loose] = stochastic.spread(problem, "float32", loose=loose)
                spread = spreads[loose]
                for name, value in reference.items():
                    error = np.abs(answer[name].astype(np.float64) - value)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = np.where(error > 0, error / (u * spread[name]), 0.0)
                    ratio = ratio[np.isfinite(spread[name])]
                    if ratio.size:
                        ratios[label].append(ratio.ravel())
                        top = float(ratio.max())
                        if top > worst.get(label, (0,))[0]:
                            worst[label] = (top, case, name)
        print(f"## {space_name} space, {args.cases} cases "
              f"(linear bound {1e3 * seconds['linear'] / args.cases:.1f} ms per case, "
              f"stochastic {1e3 * seconds['stochastic'] / args.cases:.1f} ms)\n")
        print("real error / (u x spread), over every element: "
              + ", ".join(f"{q:.1%}" for q in QUANTILES) + "; worst at\n")
        print("| implementation | " + " | ".join(f"{q:.1%}" for q in QUANTILES) + " | worst at |")
        print("|---|" + "---:|" * len(QUANTILES) + "---|")
        for label, parts in ratios.items():
            q = np.quantile(np.concatenate(parts), QUANTILES)
            top, case, name = worst.get(label, (0.0, "-", "-"))
            print(f"| {label} | " + " | ".join(f"{x:.2f}" for x in q) + f" | case {case} {name} |")
        print("\nestimate / |value| per nonzero element (percentiles):\n")
        print("| estimate | " + " | ".join(f"{q:.1%}" for q in QUANTILES) + " |")
        print("|---|" + "---:|" * len(QUANTILES))
        for label, parts in (("u x spread", spread_rel), ("u x linear bound", linear_rel)):
            q = np.quantile(np.concatenate(parts), QUANTILES)
            print(f"| {label} | " + " | ".join(f"{x:.1e}" for x in q) + " |")
        print()


if __name__ == "__main__":
    main()
