"""Sweeps: many cases, in one process or several, resumable after any interruption.

Case k of a run with seed s is drawn from its own generator, default_rng([s, k]): its contents
depend on (s, k) alone, never on the order cases run in, the number of workers, or what ran
before. Workers (spawned processes, each loading the oracles and candidates once) return their
records to the parent, which alone appends them to cases.jsonl, one flushed line each. Resuming
reads cases.jsonl, drops a last line cut short by a kill, and runs only the (case, candidate)
pairs that have no record.

After the sweep, the lowest-numbered failure of each candidate and diagnosis is shrunk (in the
parent), so which case gets shrunk does not depend on the workers either.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mybackprop._cases import CaseSpace, sample_problem
from mybackprop._problem import Problem
from mybackprop._report import CASES_FILE
from mybackprop._repro import write_repro
from mybackprop._runner import FAILING
from mybackprop._shrink import shrink, size

RUN_FILE, SMALLEST_FILE = "run.json", "smallest.jsonl"


def case_problem(seed: int, case: int, space: CaseSpace) -> Problem:
    """Case `case` of the run with `seed`: the same whatever else runs, and in whatever order."""
    return sample_problem(np.random.default_rng([seed, case]), space)


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to rebuild the checker (picklable, for spawned processes)."""

    folder: str
    seed: int
    cases: int
    space: dict[str, Any]
    candidates: tuple[str, ...]  # names, as the records carry them
    oracles: tuple[str, ...]
    tolerance_factor: dict[str, float]
    time_limit: float
    isolate: bool
    memory_limit: int
    specs: tuple[str, ...]  # the --impl values as given (a folder loads each file)

    def comparable(self) -> dict[str, Any]:
        """What must match for a resumed run to continue this one."""
        fields = asdict(self)
        for local in ("folder", "time_limit", "isolate", "memory_limit", "specs"):
            fields.pop(local)
        fields["space"] = {k: list(v) if isinstance(v, tuple) else v
                           for k, v in fields["space"].items()}
        fields["candidates"] = list(fields["candidates"])
        fields["oracles"] = list(fields["oracles"])
        return fields


class _State:
    """One process's checker and candidates: a worker loads its own; the parent reuses what the
    command line loaded to check its options (isolated candidates keep their worker process)."""

    def __init__(self, settings: Settings, candidates: list[Any] | None = None,
                 oracles: list[Any] | None = None) -> None:
        from mybackprop._candidate import load_candidates
        from mybackprop._runner import Checker
        from mybackprop._tolerance import Tolerance
        from oracles import load_oracle
        from oracles.finite_differences import FiniteDifferenceOracle

        self.settings = settings
        self.space = CaseSpace(**settings.space)
        self.tolerance = Tolerance(dict(settings.tolerance_factor))
        self.candidates = candidates or load_candidates(list(settings.specs), settings.isolate,
                                                        settings.memory_limit)
        self.oracles = oracles or [load_oracle(name) for name in settings.oracles]
        self.checker = Checker(self.oracles, self.tolerance,
                               tie_breaker=FiniteDifferenceOracle(),
                               time_limit=settings.time_limit)

    def run(self, case: int, skip: frozenset[str] = frozenset()) -> list[tuple[dict, str]]:
        """Records (and printable messages) for one case, for candidates not in `skip`."""
        problem = case_problem(self.settings.seed, case, self.space)
        wanted = [c for c in self.candidates if c.name not in skip]
        out = []
        for candidate, outcome in zip(wanted, self.checker.check_all(wanted, problem),
                                      strict=True):
            record = {"case": case, "seed": self.settings.seed, **outcome.to_record()}
            if outcome.verdict in FAILING and outcome.reference_answer is not None:
                name = f"repro/case-{case:05d}-{slug(candidate.name)}.py"
                write_repro(Path(self.settings.folder) / name, outcome, candidate.name,
                            self.tolerance)
                record["repro"] = name
            message = (f"case {case}: {outcome.message()}"
                       if outcome.verdict in ("fail", "error", "oracle_disagreement") else "")
            out.append((record, message))
        return out

    def close(self) -> None:
        for candidate in self.candidates:
            if candidate.isolated is not None:
                candidate.isolated.close()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60]


_WORKER: _State | None = None


def _start_worker(settings: Settings) -> None:
    global _WORKER
    _WORKER = _State(settings)


def _run_in_worker(job: tuple[int, frozenset[str]]) -> list[tuple[dict, str]]:
    assert _WORKER is not None
    return _WORKER.run(*job)


def sweep(settings: Settings, jobs: list[tuple[int, frozenset[str]]], workers: int,
          parent: _State | None = None) -> Iterator[list[tuple[dict, str]]]:
    """Run the jobs (case, candidates already done); yield each case's records as it finishes."""
    if workers <= 1:
        state = parent or _State(settings)
        for job in jobs:
            yield state.run(*job)
        return
    context = multiprocessing.get_context("spawn")  # JAX and torch hold threads: no fork
    with context.Pool(workers, initializer=_start_worker, initargs=(settings,)) as pool:
        yield from pool.imap_unordered(_run_in_worker, jobs, chunksize=1)


def read_done(folder: Path) -> dict[int, set[str]]:
    """The (case -> candidates) already recorded; a last line cut short by a kill is removed."""
    path = folder / CASES_FILE
    done: dict[int, set[str]] = {}
    if not path.exists():
        return done
    text = path.read_text(encoding="utf-8")
    complete, _, partial = text.rpartition("\n")
    if partial:  # killed mid-line: the case runs again
        path.write_text(complete + "\n" if complete else "", encoding="utf-8")
    for line in complete.splitlines():
        if line.strip():
            record = json.loads(line)
            done.setdefault(record["case"], set()).add(record["candidate"])
    return done


def shrink_first_failures(state: _State, records: list[dict[str, Any]],
                          report: Callable[[str], None]) -> list[dict[str, Any]]:
    """Shrink the lowest-numbered failure of each candidate and diagnosis; write their repros."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r["case"]):
        if record["verdict"] in FAILING and record.get("repro"):
            key = (record["candidate"], (record.get("diagnosis") or {}).get("pattern")
                   or record["reason"])
            first.setdefault(key, record)
    by_name = {c.name: c for c in state.candidates}
    results = []
    for (name, _), record in sorted(first.items(), key=lambda kv: kv[1]["case"]):
        candidate = by_name[name]
        problem = case_problem(state.settings.seed, record["case"], state.space)
        outcome = state.checker.check(candidate, problem)
        smallest, attempts = shrink(state.checker, candidate, outcome)
        path = f"repro/case-{record['case']:05d}-smallest-{slug(name)}.py"
        write_repro(Path(state.settings.folder) / path, smallest, name, state.tolerance)
        before, after = size(problem), size(smallest.problem)
        result = {"case": record["case"], "candidate": name,
                  "architecture": smallest.problem.architecture.describe(),
                  "batch_size": smallest.problem.batch_size, "parameters": after[0],
                  "was_parameters": before[0], "attempts": attempts, "repro": path,
                  "diagnosis": smallest.diagnosis.to_dict() if smallest.diagnosis else None}
        report(f"case {record['case']} [{name}]: smallest case that keeps this diagnosis "
               f"({attempts} tries): {result['architecture']}, N={result['batch_size']} "
               f"({after[0]} parameters, was {before[0]}); repro: "
               f"{Path(state.settings.folder) / path}")
        results.append(result)
    return results
