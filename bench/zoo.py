"""Detection, localization and diagnosis rates of the mutant zoo, as a table for docs/reports.md.

    .venv/bin/python bench/zoo.py               # 50 live cases per mutant and space
    .venv/bin/python bench/zoo.py --cases 10    # a quick look

For each mutant in mybackprop.zoo, random problems from what it supports are drawn until
`--cases` of them are live (the slip changes the answer: see zoo.expectations), in two spaces:
"moderate" (inputs 0.1 to 10, logits at the hidden scale) and "default" (the property suite's:
inputs 1e-3 to 1e3, logits up to 1e3 times larger, so many networks saturate). Each is checked
against PyTorch and JAX. Detected: the verdict is not pass. Localized: the diagnosis names the
right first-diverging layer and only tensors the slip changed. Diagnosed: the right pattern (and
factor). The naive softmax is live only at large logits, so it has no moderate row.
"""

from __future__ import annotations

import argparse
import collections
import time

from mybackprop.oracles import load_oracle

from mybackprop import zoo
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.runner import Checker

SPACES = {"moderate": zoo.MODERATE, "default": {}}
MAX_DRAWS = 3000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="live cases per mutant (50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checker = Checker([load_oracle("torch"), load_oracle("jax")])
    started = time.perf_counter()
    rows = []
    totals: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    misses: list[str] = []
    for name in zoo.ZOO:
        candidate = load_candidate(f"mybackprop.zoo:{name}")
        cells = [name, zoo.ZOO[name][1]]
        for space_name, options in SPACES.items():
            counts: collections.Counter[str] = collections.Counter()
            for problem, expected in zoo.live_cases(name, args.cases, args.seed, MAX_DRAWS,
                                                    **options):
                counts["live"] += 1
                outcome = checker.check(candidate, problem)
                detected, localized, diagnosed = zoo.score(outcome, expected)
                counts["detected"] += detected
                counts["localized"] += localized
                counts["diagnosed"] += diagnosed
                if detected and not (localized and diagnosed) and len(misses) < 40:
                    got = outcome.diagnosis.pattern if outcome.diagnosis else "none"
                    misses.append(f"{name} ({space_name}): expected {expected.pattern} at layer "
                                  f"{expected.layer}, got {got}: {outcome.context()}")
            totals[space_name].update(counts)
            live = counts["live"]
            cells += ["-"] * 3 if not live else [
                f"{counts[k] / live:.0%}" for k in ("detected", "localized", "diagnosed")]
        rows.append(cells)
    print(f"# The mutant zoo ({args.cases} live cases per mutant and space, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s)\n")
    print("| mutant | pattern | detected | localized | diagnosed | detected (default space) | "
          "localized | diagnosed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    overall = ["**all**", ""]
    for space_name in SPACES:
        live = totals[space_name]["live"]
        overall += [f"**{totals[space_name][k] / live:.1%}**"
                    for k in ("detected", "localized", "diagnosed")]
    print("| " + " | ".join(overall) + " |")
    if misses:
        print("\nSome cases detected but not localized or diagnosed as expected:\n")
        for line in misses:
            print(f"- {line}")


if __name__ == "__main__":
    main()
