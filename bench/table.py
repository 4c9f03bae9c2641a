"""Regenerate docs/performance.md's tables: every benchmark of issue 8, in one run.

    .venv/bin/python bench/table.py             # the full set (20-25 min); rewrites the page
    .venv/bin/python bench/table.py --quick     # small sizes, to try it (prints only)

It runs bench/speed.py's rows (the matrix level against PyTorch, JAX and the GEMM floor), then
bench/throughput.py's (cases per second with 1 and 2 workers and on a Dask local cluster, peak
memory of sweeps up to 100,000 cases, the pytest suite's examples per second), and writes them,
with the machine and the command, between docs/performance.md's markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # noqa: E402  (bench/ is not a package)
import throughput  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN, END = "<!-- performance table: begin -->", "<!-- performance table: end -->"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import jax
    import numpy
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; Python "
            f"{platform.python_version()}, NumPy {numpy.__version__}, PyTorch "
            f"{torch.__version__}, JAX {jax.__version__}; {time.strftime('%Y-%m-%d')}")


def build(quick: bool) -> str:
    lines = [f"Measured with `.venv/bin/python bench/table.py{' --quick' if quick else ''}` "
             f"on {machine()}, all in one run.", "",
             "The matrix level against PyTorch autograd, JAX (jit) and the GEMM floor (the "
             "matrix products alone), one forward + backward, best of 5 rounds (4 for large; "
             "each round runs the four in turn):", "",
             speed.HEADER]
    for row in speed.rows(["tiny"] if quick else ["tiny", "medium", "large"], 3 if quick else 5):
        lines.append(speed.markdown(row))
        print(lines[-1], flush=True)
    cases = 1024 if quick else 32768  # long enough that Dask's start-up (~4 s) is amortized
    throughput.warm_up()
    lines += ["", f"Sweeps of {cases} random cases (the default space), candidate "
              "mybackprop:matrix + PyTorch + JAX, finite differences where the oracles "
              "disagree; cases/s over the sweep's own seconds (a worker's start-up counts "
              "where it outlasts the parent's own: the pool starts loading with the command):",
              "",
              "| executor | workers | cases/s | speed-up | sweep | wall (whole command) |",
              "|---|---:|---:|---:|---:|---:|"]
    base = None
    for executor, workers in (("process", 1), ("process", 2), ("dask", 2)):
        row = throughput.sweep(cases, workers, executor)
        base = base or row["rate"]
        lines.append(f"| {executor} | {workers} | {row['rate']:.0f} | {row['rate'] / base:.2f} "
                     f"| {row['seconds']:.1f} s | {row['wall']:.1f} s |")
        print(lines[-1], flush=True)
    lines += ["", "Peak memory of one-process sweeps (the whole process: PyTorch and JAX "
              "loaded):", "", "| cases | peak resident memory | cases.jsonl | wall | not passed |",
              "|---:|---:|---:|---:|---|"]
    for size in (300, 3000) if quick else (1000, 10000, 100000):  # 100,000: ~5 min
        row = throughput.memory(size)
        others = ", ".join(f"{n} {v}" for v, n in row["not_passed"].items()) or "none"
        lines.append(f"| {size} | {row['peak_bytes'] / 2**20:.0f} MiB | "
                     f"{row['file_bytes'] / 2**20:.0f} MiB | {row['wall']:.0f} s | {others} |")
        print(lines[-1], flush=True)
    lines += ["", "The property suite (`pytest --impl mybackprop:matrix`, 30 examples per "
              "property), examples per second over the whole session (start-up included); "
              "each setting runs 3 sessions, and the row is the median one, with the range "
              "(this shared machine's sessions vary by up to 25%):", "",
              "| pytest | examples | seconds | examples/s | range of 3 |",
              "|---|---:|---:|---:|---:|"]
    for workers in (0, 2):
        runs = sorted((throughput.pytest_rate(workers) for _ in range(3)),
                      key=lambda r: r["rate"])
        row = runs[1]
        lines.append(f"| -n {workers} | {row['examples']} | {row['seconds']:.1f} | "
                     f"{row['rate']:.0f} | {runs[0]['rate']:.0f}-{runs[-1]['rate']:.0f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes; print the section, leave the page alone")
    args = parser.parse_args()
    section = build(args.quick)
    if args.quick:
        print("\n" + section)
        return
    text = PAGE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{PAGE} has no {BEGIN} ... {END} markers to write between")
    PAGE.write_text(pattern.sub(lambda _: f"{BEGIN}\n{section}\n{END}", text),
                      encoding="utf-8")
    print(f"\nwrote the performance section of {PAGE}")


if __name__ == "__main__":
    main()
