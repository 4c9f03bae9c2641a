"""Detection, localization and diagnosis rates of the mutant zoo, as a table for docs/reports.md.

    .venv/bin/python bench/zoo.py               # 50 live cases per mutant and space
    .venv/bin/python bench/zoo.py --cases 10    # a quick look
    .venv/bin/python bench/zoo.py --only batch_sum,transposed_dw --layer-seeds 0
    .venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import zoo; zoo.layer_table(10)"

For each mutant in mybackprop.zoo, random problems from what it supports are drawn until
`--cases` of them are live (the slip changes the answer: see zoo.expectations), in two spaces:
"moderate" (inputs 0.1 to 10, logits at the hidden scale) and "default" (the property suite's:
inputs 1e-3 to 1e3, logits up to 1e3 times larger, so many networks saturate). Each is checked
against PyTorch and JAX. Detected: the verdict is not pass. Localized: the diagnosis names the
right first-diverging layer and only tensors the slip changed. Named right: the right pattern
(and factor). Named wrong: another pattern named alone (the count that must be 0); unknown: no
pattern, or several said as fitting equally. The naive softmax is live only at large logits, so
it has no moderate row.
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
    parser.add_argument("--layer-seeds", type=int, default=10,
                        help="runs of the layer checks per layer mutant, seeds 0.. (10; 0: "
                             "none)")
    parser.add_argument("--only", default="", help="comma-separated mutants (default: all)")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(zoo.ZOO))
    if unknown:
        parser.error(f"no mutant {', '.join(unknown)} in mybackprop.zoo")
    checker = Checker([load_oracle("torch"), load_oracle("jax")])
    started = time.perf_counter()
    rows = []
    totals: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    misses: list[str] = []
    wrong: list[str] = []  # detected, and a pattern other than the slip's named (not "unknown")
    for name in only or zoo.ZOO:
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
                got = outcome.diagnosis.pattern if outcome.diagnosis else "none"
                both = outcome.diagnosis is not None and (
                    "fitting this case as well" in outcome.diagnosis.summary)
                if detected and not diagnosed:  # a wrong cause named, or an honest unknown
                    counts["unknown" if got in ("unknown", "none") or both else "wrong"] += 1
                    if got not in ("unknown", "none") and not both:
                        wrong.append(f"{name} ({space_name}): expected {expected.pattern}, "
                                     f"named {got}: {outcome.diagnosis.summary[:160]} "
                                     f"{outcome.context()}")
                if detected and not (localized and diagnosed) and len(misses) < 40:
                    got = outcome.diagnosis.pattern if outcome.diagnosis else "none"
                    misses.append(f"{name} ({space_name}): expected {expected.pattern} at layer "
                                  f"{expected.layer}, got {got}: {outcome.context()}")
            totals[space_name].update(counts)
            live = counts["live"]
            cells += ["-"] * 5 if not live else [
                f"{counts[k] / live:.0%}" for k in ("detected", "localized", "diagnosed")] + [
                str(counts["wrong"]), str(counts["unknown"])]
        rows.append(cells)
    print(f"# The mutant zoo ({args.cases} live cases per mutant and space, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s)\n")
    print("| mutant | pattern | detected | localized | named right | named wrong | unknown | "
          "detected (default space) | localized | named right | named wrong | unknown |")
    print("|---|---|" + "---:|" * 10)
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    overall = ["**all**", ""]
    for space_name in SPACES:
        live = totals[space_name]["live"]
        overall += [f"**{totals[space_name][k] / live:.1%}**"
                    for k in ("detected", "localized", "diagnosed")] + [
            f"**{totals[space_name]['wrong']}**", f"**{totals[space_name]['unknown']}**"]
    print("| " + " | ".join(overall) + " |")
    if wrong:  # the number that must be 0: a learner acts on the named cause
        print("\nA wrong cause named:\n")
        for line in wrong:
            print(f"- {line}")
    if misses:
        print("\nSome cases detected but not localized or diagnosed as expected:\n")
        for line in misses:
            print(f"- {line}")
    if args.layer_seeds:
        layer_table(args.layer_seeds)


def layer_table(seeds: int) -> None:
    """The layer zoo (mybackprop.layer_zoo): each mutant kit through `check_layers` (100 cases
    per layer, 10 per state check) once per seed. Detected: the mutant's check fails; named
    right: its diagnosis begins as the mutant says; named wrong: another check of the kit, or
    this one, names another cause; unknown: detected with no cause named."""
    from mybackprop import layer_zoo
    from mybackprop.harness.layer_state import check_layers

    started = time.perf_counter()
    rows, total = [], collections.Counter()
    for mutant in layer_zoo.MUTANTS:
        counts: collections.Counter[str] = collections.Counter()
        for seed in range(seeds):
            results = {r.layer: r for r in check_layers(mutant.make(), cases=100, seed=seed,
                                                        state_cases=10)}
            found = results[mutant.check]
            counts["detected"] += found.verdict != "pass"
            counts["right"] += found.diagnosis.startswith(mutant.said) or (
                found.diagnosis.startswith("either") and mutant.said.split(" ", 1)[1][:30]
                in found.diagnosis)
            counts["wrong"] += any(
                r.verdict != "pass" and r.diagnosis and not r.diagnosis.startswith("either")
                and not r.diagnosis.startswith(mutant.said) and "is not the VJP" not in
                r.diagnosis for r in results.values())
            counts["unknown"] += found.verdict != "pass" and not found.diagnosis
        total.update(counts)
        rows.append([mutant.name, mutant.check, f"{counts['detected'] / seeds:.0%}",
                     f"{counts['right'] / seeds:.0%}", str(counts["wrong"]),
                     str(counts["unknown"])])
    runs = seeds * len(layer_zoo.MUTANTS)
    print(f"\n# The layer zoo ({len(layer_zoo.MUTANTS)} mutants, {seeds} seeds each, "
          f"{time.perf_counter() - started:.0f} s)\n")
    print("| mutant | caught by | detected | named right | named wrong | unknown |")
    print("|---|---|---:|---:|---:|---:|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print(f"| **all** |  | **{total['detected'] / runs:.1%}** | **{total['right'] / runs:.1%}** "
          f"| **{total['wrong']}** | **{total['unknown']}** |")


if __name__ == "__main__":
    main()
