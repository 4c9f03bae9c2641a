"""Compare two runs case by case: new failures, fixed cases, changed diagnoses.

A case is matched by (case number, candidate name) and must hold the same config in both runs;
a candidate renamed between runs (my_v1.py, my_v2.py) is matched when each run has one candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mybackprop.harness.runner import FAILING as BAD
from mybackprop.reporting.records import CASES_FILE, read_cases


@dataclass
class RunDiff:
    new_failures: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    changed_diagnoses: list[str] = field(default_factory=list)
    other_changes: list[str] = field(default_factory=list)  # e.g. pass -> oracle_disagreement
    unmatched: list[str] = field(default_factory=list)  # only in one run, or different cases

    @property
    def empty(self) -> bool:
        return not any(vars(self).values())

    def lines(self) -> list[str]:
        out = []
        for title, items in (("new failures", self.new_failures), ("fixed", self.fixed),
                             ("changed diagnoses", self.changed_diagnoses),
                             ("other verdict changes", self.other_changes),
                             ("not comparable", self.unmatched)):
            if items:
                out.append(f"{title} ({len(items)}):")
                out += [f"  {item}" for item in items]
        return out or ["no differences"]


def diff_runs(first: Path, second: Path) -> RunDiff:
    """The differences from run `first` to run `second`."""
    for folder in (first, second):
        if not (folder / CASES_FILE).is_file():
            raise FileNotFoundError(f"{folder} has no {CASES_FILE}: give a run folder written by "
                                    "mybackprop check")
    a, b = _index(read_cases(first)), _index(read_cases(second))
    candidates_a = {k[1] for k in a}
    candidates_b = {k[1] for k in b}
    if len(candidates_a) == 1 and len(candidates_b) == 1 and candidates_a != candidates_b:
        rename = {next(iter(candidates_a)): next(iter(candidates_b))}
        a = {(case, rename[name]): r for (case, name), r in a.items()}
    result = RunDiff()
    for key in sorted(set(a) | set(b)):
        label = f"case {key[0]} [{key[1]}]"
        if key not in a or key not in b:
            result.unmatched.append(f"{label}: only in {'the second' if key in b else 'the first'}"
                                    " run")
            continue
        old, new = a[key], b[key]
        if old.get("config") != new.get("config"):
            result.unmatched.append(f"{label}: a different case in each run (another seed or "
                                    "case space)")
            continue
        where = f"{label} {new['architecture']}, N={new['batch_size']}, {new['dtype']}"
        if old["verdict"] not in BAD and new["verdict"] in BAD:
            result.new_failures.append(f"{where}: {old['verdict']} -> {new['verdict']}"
                                       f"{_said(new)}")
        elif old["verdict"] in BAD and new["verdict"] not in BAD:
            result.fixed.append(f"{where}: {old['verdict']} -> {new['verdict']}")
        elif old["verdict"] in BAD and _pattern(old) != _pattern(new):
            result.changed_diagnoses.append(f"{where}: {_pattern(old)} -> {_pattern(new)}"
                                            f"{_said(new)}")
        elif old["verdict"] != new["verdict"]:
            result.other_changes.append(f"{where}: {old['verdict']} -> {new['verdict']}")
    return result


def _index(records: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(r["case"], r["candidate"]): r for r in records}


def _pattern(record: dict[str, Any]) -> str:
    diagnosis = record.get("diagnosis") or {}
    if not diagnosis.get("pattern"):
        return f"{record['verdict']}: {record.get('reason', '')}"
    factor = diagnosis.get("factor")
    return f"{diagnosis['pattern']} ({factor})" if factor else diagnosis["pattern"]


def _said(record: dict[str, Any]) -> str:
    diagnosis = record.get("diagnosis") or {}
    return f" ({diagnosis['summary']})" if diagnosis.get("summary") else ""
