"""The sandbox's cost: a correct candidate's cases per second in-process and under --isolate
(in the bubblewrap sandbox where it is installed), in one run, and whether both write the same
records.

    .venv/bin/python bench/sandbox.py              # 1000 cases
    .venv/bin/python bench/sandbox.py --cases 200

Each row runs the real command line on the default case space with PyTorch and JAX; cases per
second is cases / the sweep's own seconds (run.seconds in summary.json), wall the whole
command. The records are compared line by line without their timing fields.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CANDIDATE = '''import mybackprop


def backprop(problem):
    return mybackprop.matrix(problem)
'''
TIMING = ("seconds", "time", "elapsed", "timing", "timings", "duration")


def records(folder: Path) -> list[dict]:
    out = []
    for line in (folder / "cases.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in TIMING:
            record.pop(key, None)
        out.append(record)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args()
    from mybackprop.harness.sandbox import describe

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "correct.py").write_text(CANDIDATE)
        rows = []
        for mode, flags in (("in-process", []), ("isolated", ["--isolate"])):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "mybackprop", "check", "--impl", "correct.py:backprop",
                 "--cases", str(args.cases), "--seed", "5", "--quiet", "--no-shrink",
                 "--no-html", "--out", str(work / mode), *flags],
                cwd=work, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"{mode}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
            summary = json.loads((work / mode / "summary.json").read_text())
            seconds = summary["run"]["seconds"]
            rows.append((mode, seconds, wall))
        same = records(work / "in-process") == records(work / "isolated")
    print(f"isolated candidates run in {describe()}")
    print("| mode | cases | sweep s | cases/s | wall s |\n|---|---:|---:|---:|---:|")
    for mode, seconds, wall in rows:
        print(f"| {mode} | {args.cases} | {seconds:.1f} | {args.cases / seconds:.0f} | "
              f"{wall:.1f} |")
    print(f"isolated / in-process sweep time: {rows[1][1] / rows[0][1]:.2f}x; "
          f"cases.jsonl {'identical' if same else 'DIFFERENT'} (timings aside)")


if __name__ == "__main__":
    main()
