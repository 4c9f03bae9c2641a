"""How long the packaged pytest suite takes on broken code: `pytest --impl` on zoo mutants.

    .venv/bin/python bench/broken_suite.py [MUTANT ...]   # default: batch_sum, transposed_dw

A learner runs the suite on broken code far more often than on correct code, so every failing
test reports its diagnosis and a smallest case; this prints the session's seconds (start-up
included) and the tests that failed, one row per mutant, and for mybackprop:matrix beside them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def session(impl: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "--impl", impl, "-q",
                             "-p", "no:cacheprovider"], capture_output=True, text=True,
                            cwd=ROOT / "bench")
    seconds = time.perf_counter() - started
    counts = re.findall(r"(\d+ (?:failed|passed|skipped))", result.stdout.splitlines()[-1])
    return seconds, ", ".join(counts)


def main(argv: list[str]) -> None:
    mutants = argv or ["batch_sum", "transposed_dw"]
    print("| candidate | seconds | tests |")
    print("|---|---:|---|")
    for impl in [f"mybackprop.zoo:{m}" for m in mutants] + ["mybackprop:matrix"]:
        seconds, counts = session(impl)
        print(f"| {impl} | {seconds:.1f} | {counts} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
