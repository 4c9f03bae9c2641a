"""Harness throughput, scale-out and memory: random small cases per second, and peak memory.

    .venv/bin/python bench/throughput.py                    # 8192 cases; 1 and 2 workers; Dask
    .venv/bin/python bench/throughput.py --cases 2048 --memory 1000,10000
    .venv/bin/python bench/throughput.py --memory 1000,10000,100000   # the issue's 100,000

Every figure runs the real command line (`mybackprop check`, the default case space: depth <= 5,
width <= 16, batch <= 64, every activation, loss and reduction, float32 and float64) with the
candidate mybackprop:matrix, PyTorch and JAX; finite differences run where the oracles disagree
(the tie-breaker). A warm-up run first writes JAX's compiled functions to the cache folder, as any
earlier run would.
Cases per second is cases / the sweep's own seconds (run.seconds in summary.json: interpreter
start and the parent's imports not included; a pool worker's start-up is, where it outlasts the
parent's, since the pool starts loading with the command); wall is the whole command. Peak
memory is the largest resident set of the command's process tree (wait4's ru_maxrss), one process.
The pytest rows run the packaged property suite (`pytest --impl mybackprop:matrix`) with and
without pytest-xdist and read the examples/s line the plugin prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "mybackprop", "check", "--quiet", "--no-shrink", "--seed", "5"]


def run_measured(command: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run a command; its result, wall seconds and peak resident set (bytes, process tree)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    # communicate() has reaped it; the children's peak covers it and its own children.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return subprocess.CompletedProcess(command, process.returncode, out, err), wall, peak


def _check(cases: int, *options: str) -> dict[str, Any]:
    """One `mybackprop check` in a fresh process: its summary's run and verdicts, cases.jsonl's
    size, wall seconds and peak memory. Cases that did not pass are counted, not fatal (the
    figures are speed and memory; a non-pass is a finding, named in the table)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [*CLI, "--cases", str(cases), *options, "--out", folder + "/run"]
        result, wall, peak = run_in_fresh_process(command)
        if result.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr}")
        summary = json.loads((Path(folder) / "run" / "summary.json").read_text())
        size = (Path(folder) / "run" / "cases.jsonl").stat().st_size
    return {"cases": cases, "run": summary["run"], "wall": wall, "peak_bytes": peak,
            "file_bytes": size,
            "not_passed": {v: n for v, n in summary["verdicts"].items() if n and v != "pass"}}


def sweep(cases: int, workers: int = 1, executor: str = "process") -> dict[str, Any]:
    row = _check(cases, "--workers", str(workers), "--executor", executor)
    seconds = row["run"]["seconds"]
    return {**row, "workers": workers, "executor": executor, "seconds": seconds,
            "rate": cases / seconds, "parts": row["run"]["seconds_by_part"]}


def run_in_fresh_process(command: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    """run_measured in a child of its own, so RUSAGE_CHILDREN holds this command alone."""
    code = ("import json, sys; sys.path.insert(0, 'bench'); from throughput import run_measured; "
            f"r, wall, peak = run_measured({command!r}); "
            "print(json.dumps([r.returncode, r.stdout, r.stderr, wall, peak]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    code_, stdout, stderr, wall, peak = json.loads(out)
    return subprocess.CompletedProcess(command, code_, stdout, stderr), wall, peak


def memory(cases: int) -> dict[str, Any]:
    """Peak memory of a one-process sweep."""
    return _check(cases)


def pytest_rate(workers: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--impl",
               "mybackprop:matrix", "-n", str(workers)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    found = re.search(r"mybackprop: (\d+) examples checked in ([\d.]+) s \((\d+) examples/s",
                      result.stdout)
    if result.returncode != 0 or not found:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stdout[-500:]}")
    return {"workers": workers, "examples": int(found[1]), "seconds": float(found[2]),
            "rate": int(found[1]) / float(found[2])}


def warm_up() -> None:
    """Write JAX's compiled functions to the cache folder (as any earlier run would)."""
    sweep(512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8192, help="cases per throughput run")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (1,2)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask local cluster row")
    parser.add_argument("--memory", default="1000,10000",
                        help="sweep sizes for peak memory ('' for none)")
    parser.add_argument("--no-pytest", action="store_true", help="skip the pytest suite rows")
    args = parser.parse_args()
    try:
        sizes = [int(c) for c in args.memory.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--memory {args.memory!r}: give case counts separated by commas, "
                     "e.g. 1000,10000")
    warm_up()
    print("| executor | workers | cases | sweep | cases/s | speed-up | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = None
    counts = [int(w) for w in args.workers.split(",")]
    runs = [("process", w) for w in counts] + ([] if args.no_dask else [("dask", max(counts))])
    for executor, workers in runs:
        row = sweep(args.cases, workers, executor)
        base = base or row["rate"]
        print(f"| {executor} | {workers} | {row['cases']} | {row['seconds']:.1f} s | "
              f"{row['rate']:.0f} | {row['rate'] / base:.2f} | {row['wall']:.1f} s |", flush=True)
    if sizes:
        print("\n| cases (one process) | peak memory | cases.jsonl | wall |\n|---:|---:|---:|---:|")
        for cases in sizes:
            row = memory(cases)
            print(f"| {cases} | {row['peak_bytes'] / 2**20:.0f} MiB | "
                  f"{row['file_bytes'] / 2**20:.0f} MiB | {row['wall']:.0f} s |", flush=True)
    if not args.no_pytest:
        print("\n| pytest suite | examples | seconds | examples/s |\n|---|---:|---:|---:|")
        for workers in (0, 2):
            row = pytest_rate(workers)
            print(f"| -n {workers} | {row['examples']} | {row['seconds']:.1f} | "
                  f"{row['rate']:.0f} |", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
