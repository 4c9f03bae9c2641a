"""Run folders: cases.jsonl written as cases finish, then summary.json and report.md from it."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from mybackprop.harness.formulation import NOTE_PREFIX
from mybackprop.harness.runner import VERDICTS
from mybackprop.spec.problem import SpecError

SUMMARY_SCHEMA_VERSION = 2
# The JSON Schema summary.json follows, shipped in the package (tests validate against it).
SUMMARY_SCHEMA = (Path(__file__).parent / "schemas"
                  / f"summary-v{SUMMARY_SCHEMA_VERSION}.schema.json")
CASES_FILE, SUMMARY_FILE, MARKDOWN_FILE = "cases.jsonl", "summary.json", "report.md"


class RecordError(SpecError):
    """A run folder's file that is not what mybackprop wrote: one line, where and what."""


# JSON has no infinities and no NaN; json.dumps writes them as the tokens Infinity and NaN,
# which strict parsers refuse. Outside strings they are written 1e999 and -1e999 (numbers every
# parser reads as infinities) and null (NaN: no number).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')
_STRICT = {"Infinity": "1e999", "-Infinity": "-1e999", "NaN": "null"}


def dumps(value: Any, **options: Any) -> str:
    """json.dumps, strict: non-finite numbers in the documented form above."""
    text = json.dumps(value, allow_nan=True, **options)
    if "Infinity" not in text and "NaN" not in text:
        return text
    return _TOKENS.sub(lambda m: _STRICT.get(m.group(0), m.group(0)), text)


class RunWriter:
    """Appends finished cases' JSON lines and flushes them, so an interrupted run loses none
    that finished (a line cut short by a kill is dropped on resume, and its case runs again).

    It keeps a digest of what was there when it opened and of what it appended, so that
    `verify` can tell a file changed behind its back (truncated, rewritten, added to)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CASES_FILE
        before = path.read_bytes() if path.exists() else b""
        self._before = (len(before), hashlib.sha256(before).hexdigest())
        self._appended = hashlib.sha256()
        self._size = 0
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def add_lines(self, lines: Iterable[str]) -> None:
        """Lines already in cases.jsonl's form (one JSON record each, ending in a newline)."""
        text = "".join(lines)
        self._file.write(text)
        self._file.flush()
        data = text.encode("utf-8")
        self._appended.update(data)
        self._size += len(data)

    def close(self) -> None:
        self._file.close()

    def verify(self) -> None:
        """RecordError unless cases.jsonl holds exactly what was there and what was added."""
        data = (self.folder / CASES_FILE).read_bytes()
        size, digest = self._before
        if (len(data) != size + self._size
                or hashlib.sha256(data[:size]).hexdigest() != digest
                or hashlib.sha256(data[size:]).digest() != self._appended.digest()):
            raise RecordError(
                f"{self.folder / CASES_FILE} was changed while the run ran ({len(data)} bytes "
                f"where the run wrote {size + self._size}): its records cannot be trusted, and "
                "the run is not judged; run untrusted candidates isolated (--isolate)")


def read_cases(folder: Path) -> list[dict[str, Any]]:
    return list(iter_cases(folder))


# What every record holds, and of which type: a line without them was not written by mybackprop.
_RECORD_FIELDS = {"case": int, "candidate": str, "verdict": str, "reason": str}


def iter_cases(folder: Path) -> Iterator[dict[str, Any]]:
    """The records of cases.jsonl one at a time (a long run's file need not fit in memory).
    A line that is not a record mybackprop wrote is a RecordError naming it."""
    path = folder / CASES_FILE
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield read_record(line, path, number)


def read_record(line: str, path: Path, number: int) -> dict[str, Any]:
    """One line of cases.jsonl as a record, or a RecordError naming the line."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    problem = "" if isinstance(record, dict) else "not a JSON object"
    for key, kind in _RECORD_FIELDS.items():
        if problem:
            break
        value = record.get(key)  # type: ignore[union-attr]
        if not isinstance(value, kind) or isinstance(value, bool):
            problem = f"no {key} of type {kind.__name__}"
    if not problem and record["verdict"] not in VERDICTS:  # type: ignore[index]
        problem = f"an unknown verdict {str(record['verdict'])[:30]!r}"  # type: ignore[index]
    if problem:
        raise RecordError(f"{path} line {number}: {problem}: not a record mybackprop wrote "
                          "(remove the line, or run again)")
    return record  # type: ignore[return-value]


def summarize(records: Iterable[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """Counts per verdict, overall and per activation, loss, reduction and dtype; the records
    are read once, as a stream, so memory grows with the failures, not with the cases."""
    overall: Counter[str] = Counter()
    groups: dict[str, dict[str, Counter[str]]] = {
        key: defaultdict(Counter) for key in ("candidate", "activation", "loss", "reduction",
                                              "dtype")}
    worst: list[dict[str, Any]] = []
    findings: dict[tuple[str, str, str], dict[str, Any]] = {}
    skip_reasons: dict[str, Counter[str]] = defaultdict(Counter)
    # per candidate, how it was checked: float32 cases checked, those answered with float64
    # results rounded (upcast), passes that needed a looser formulation (looser)
    noted: dict[str, Counter[str]] = defaultdict(Counter)
    looser: dict[str, str] = {}  # per candidate, the first such pass's note
    seen = bytearray()  # one byte per case number: which cases have a record
    records_seen, ratio = 0, None
    for r in records:
        records_seen += 1
        if r["case"] >= len(seen):
            seen.extend(bytes(r["case"] + 1 - len(seen)))
        seen[r["case"]] = 1
        if r.get("max_err_over_tol") is not None and r["verdict"] in CONSENSUS:
            ratio = max(r["max_err_over_tol"], ratio if ratio is not None else 0.0)
        overall[r["verdict"]] += 1
        if r["verdict"] == "skipped":
            skip_reasons[r["candidate"]][r["reason"]] += 1
        elif r["dtype"] == "float32":
            noted[r["candidate"]]["float32_checked"] += 1
            noted[r["candidate"]]["upcast"] += bool(r.get("upcast"))
        if r["verdict"] == "pass" and r["reason"].startswith(NOTE_PREFIX):
            noted[r["candidate"]]["looser"] += 1
            looser.setdefault(r["candidate"], r["reason"])
        for activation in r["activations"]:
            groups["activation"][activation][r["verdict"]] += 1
        for key in ("candidate", "loss", "reduction", "dtype"):
            groups[key][r[key]][r["verdict"]] += 1
        if r["verdict"] in ("fail", "error", "oracle_disagreement"):
            _add_finding(findings, r)
            worst.append({**{k: r[k] for k in ("case", "candidate", "verdict", "reason",
                                                "architecture", "batch_size", "dtype",
                                                "max_err_over_tol")},
                          "diagnosis": (r.get("diagnosis") or {}).get("summary", ""),
                          "repro": r.get("repro", "")})
    tables = {key: {name: {v: c.get(v, 0) for v in VERDICTS}
                    for name, c in sorted(table.items())} for key, table in groups.items()}
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "status": run_status(run, tables["candidate"], skip_reasons, noted, looser),
        "run": run,
        "cases": sum(seen),
        "records": records_seen,  # one per case and candidate
        "verdicts": {v: overall.get(v, 0) for v in VERDICTS},
        **{f"by_{key}": table for key, table in tables.items()},
        "max_err_over_tol": ratio,
        "findings": sorted(findings.values(), key=lambda f: (f["candidate"], f["example"]["case"])),
        "problems": worst,
    }


def failure_kind(record: dict[str, Any]) -> str:
    """What groups failures: the diagnosis's pattern, else the reason with its numbers blanked
    ('dW has # entries for # layers'). Errors raised are told apart by where they were raised
    and what ('raised ValueError in backward, at net.py line 6')."""
    diagnosis = record.get("diagnosis") or {}
    pattern = diagnosis.get("pattern")
    if pattern == "raised" and diagnosis.get("step"):
        return f"raised {diagnosis['step']}"
    return pattern or re.sub(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", record["reason"])


def _add_finding(findings: dict[tuple[str, str, str], dict[str, Any]],
                 record: dict[str, Any]) -> None:
    """Count the record in its (candidate, verdict, kind) group; keep the lowest case as the
    group's example."""
    key = (record["candidate"], record["verdict"], failure_kind(record))
    found = findings.get(key)
    if found is not None:
        found["count"] += 1
        if record["case"] >= found["example"]["case"]:
            return
    failing = [c for c in record.get("comparisons", []) if not c.get("passed", True)]
    worst = max(failing, key=lambda c: c["err_over_tol"], default=None)
    diagnosis = record.get("diagnosis") or {}
    findings[key] = {
        "candidate": key[0], "verdict": key[1], "kind": key[2],
        "count": found["count"] if found else 1,
        "summary": diagnosis.get("summary") or record["reason"],
        "example": {"case": record["case"], "architecture": record["architecture"],
                    "batch_size": record["batch_size"], "dtype": record["dtype"],
                    "worst": (f"{worst['name']}{list(worst['worst_index'])}: "
                              f"{worst['err_over_tol']:.2g}x tolerance") if worst else "",
                    "repro": record.get("repro", "")},
        "smallest": None}


def attach_smallest(summary: dict[str, Any], smallest: Iterable[dict[str, Any]]) -> None:
    """Each finding's smallest case (smallest.jsonl's line for its candidate, verdict and kind;
    a line written before lines had a verdict stands for its candidate and kind)."""
    by_key = {(s["candidate"], s.get("verdict"), s.get("kind")): s for s in smallest}
    for finding in summary["findings"]:
        found = by_key.get((finding["candidate"], finding["verdict"], finding["kind"]),
                           by_key.get((finding["candidate"], None, finding["kind"])))
        if found is None:
            continue
        finding["example"]["repro"] = finding["example"]["repro"] or found.get("first_repro", "")
        if "architecture" in found:  # shrunk (not under --no-shrink)
            finding["smallest"] = {k: found[k] for k in ("case", "architecture", "batch_size",
                                                         "parameters", "repro")}


# Verdicts judged against oracles that agree: only their errors are in units of a tolerance
# that means something (where the oracles disagree, a candidate taking the other framework's
# kink convention is "1e30x" the first oracle's bound, and right)
CONSENSUS = ("pass", "fail")

MOSTLY_SKIPPED = 0.5  # a candidate that skipped more than this share of its cases is named


def run_status(run: dict[str, Any], by_candidate: dict[str, dict[str, int]],
               skip_reasons: dict[str, Counter[str]],
               noted: dict[str, Counter[str]] | None = None,
               looser: dict[str, str] | None = None) -> dict[str, Any]:
    """pass, fail or nothing_checked, for the run and for each candidate, with one headline.

    A candidate with no checked case (every one skipped: outside its declaration, or refused)
    never passes: the run's status is nothing_checked unless something failed outright."""
    candidates: dict[str, dict[str, Any]] = {}
    for name in run["candidates"]:
        counts = by_candidate.get(name, dict.fromkeys(VERDICTS, 0))
        checked = sum(counts.values()) - counts["skipped"]
        reasons = skip_reasons.get(name)
        candidates[name] = {
            "status": ("nothing_checked" if not checked else
                       "fail" if counts["fail"] or counts["error"] else "pass"),
            "checked": checked, "failed": counts["fail"] + counts["error"],
            "skipped": counts["skipped"],
            "skip_reason": reasons.most_common(1)[0][0] if reasons else "",
            "declared": run.get("declared", {}).get(name, ""),
            # float32 cases checked, and those whose answer was the float64 result rounded
            **{key: (noted or {}).get(name, Counter())[key]
               for key in ("float32_checked", "upcast")},
            # passes that needed a looser formulation's rounding, and what the first said
            **({"looser": (noted or {})[name]["looser"], "looser_note": looser[name]}
               if name in (looser or {}) else {})}
    statuses = {c["status"] for c in candidates.values()}
    status = ("fail" if "fail" in statuses else
              "nothing_checked" if "nothing_checked" in statuses else "pass")
    return {"status": status, "headline": _headline(status, candidates),
            "by_candidate": candidates}


def _headline(status: str, candidates: dict[str, dict[str, Any]]) -> str:
    """'FAIL: a failed 3 of 40 checked cases. NOTHING CHECKED: b skipped 40 of 40 cases
    (activation relu not supported; it declares ...)'."""
    def skipped_note(name: str, c: dict[str, Any]) -> str:
        total = c["checked"] + c["skipped"]
        declared = (f"; it declares {c['declared']}"
                    if c["declared"] and not c["skip_reason"].startswith("refused") else "")
        return (f"{name} skipped {c['skipped']} of {total} cases ({c['skip_reason']}"
                f"{declared})")

    empty = [skipped_note(n, c) for n, c in candidates.items() if c["status"] ==
             "nothing_checked"]
    mostly = [skipped_note(n, c) for n, c in candidates.items()
              if c["status"] != "nothing_checked" and c["skipped"]
              > MOSTLY_SKIPPED * (c["checked"] + c["skipped"])]
    failed = [f"{n} failed {c['failed']} of {c['checked']} checked cases"
              for n, c in candidates.items() if c["status"] == "fail"]
    checked = sum(c["checked"] for c in candidates.values())
    parts = []
    if status == "fail":
        parts.append(f"FAIL: {'; '.join(failed)}")
    elif status == "pass":
        parts.append(f"PASS: {checked} checked case{'s pass' if checked != 1 else ' passes'}")
    if empty:
        parts.append("NOTHING CHECKED: " + "; ".join(empty))
    if mostly:
        parts.append("Mostly skipped: " + "; ".join(mostly))
    return ". ".join(parts)


SMALLEST_FILE = "smallest.jsonl"
KINDS_SHOWN = 5  # kinds of mistake listed per candidate in a terminal; report.md has them all


def summary_lines(summary: dict[str, Any], folder: Path) -> list[str]:
    """What `check` prints at the end: the findings, the counts, the headline, the reports."""
    counts = ", ".join(f"{n} {v}" for v, n in summary["verdicts"].items() if n)
    worst = summary["max_err_over_tol"]
    worst_text = "" if worst is None else f"; worst error {worst:.3g}x tolerance"
    several = len(summary["by_candidate"]) > 1
    per = f" x {len(summary['by_candidate'])} candidates" if several else ""
    seconds = summary["run"].get("seconds")
    html = folder / "report.html"
    return [*findings_lines(summary, folder),
            f"{summary['cases']} cases{per}: {counts}{worst_text}"
            + ("" if seconds is None else f"; {seconds:.1f} s"),
            summary["status"]["headline"],
            f"report: {folder / MARKDOWN_FILE}" + (f", {html}" if html.exists() else "")]


def candidate_notes(status: dict[str, Any]) -> list[str]:
    """What a run says about how a candidate was checked, beside its verdicts."""
    notes = [upcast_note(status)]
    if status.get("looser"):
        notes.append(f"passes {status['looser']} of {status['checked']} checked cases "
                     f"{status['looser_note'].removeprefix('passes ')}")
    return [note for note in notes if note]


def upcast_note(status: dict[str, Any]) -> str:
    """'computes in float64: in 48 of 50 float32 cases ...', or '' (a candidate's status)."""
    n, of = status.get("upcast", 0), status.get("float32_checked", 0)
    if not n:
        return ""
    return (f"computes in float64: in {n} of {of} float32 cases its answer is the float64 "
            "result rounded, so its float32 checks test float64 arithmetic (compute in the "
            "dtype you are given)")


def findings_lines(summary: dict[str, Any], folder: Path, most: int = KINDS_SHOWN) -> list[str]:
    """Per candidate, its verdict counts, then each kind of mistake once: how many cases, what
    the diagnosis says, the first case and the smallest one (what `check` prints)."""
    by_candidate: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in summary["findings"]:
        by_candidate[finding["candidate"]].append(finding)
    lines = []
    for name, counts in summary["by_candidate"].items():
        found = sorted(by_candidate.get(name, []), key=lambda f: -f["count"])
        notes = candidate_notes(summary["status"]["by_candidate"].get(name, {}))
        if len(summary["by_candidate"]) == 1 and not found:
            lines += [f"note: {name} {note}" for note in notes]
            continue  # the run's own count line says the rest
        lines.append(f"{name}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
        lines += [f"  note: {note}" for note in notes]
        for finding in found[:most]:
            example = finding["example"]
            named = "" if failure_kind({"reason": finding["summary"]}) == finding["kind"] \
                else f", {finding['kind']}"  # a reason needs no name of its own
            lines += [f"  {finding['count']} {finding['verdict']}{named}: {finding['summary']}",
                      f"    first: case {example['case']}, {example['architecture']}, "
                      f"N={example['batch_size']}, {example['dtype']}"
                      + (f"; {example['worst']}" if example["worst"] else "")]
            smallest = finding["smallest"]
            if smallest:
                lines.append(f"    smallest: {smallest['architecture']}, "
                             f"N={smallest['batch_size']} ({smallest['parameters']} parameters)"
                             + (f"; repro: {folder / smallest['repro']}"
                                if smallest["repro"] else ""))
            elif example["repro"]:
                lines.append(f"    repro: {folder / example['repro']}")
        if len(found) > most:
            lines.append(f"  ... and {len(found) - most} more kinds: see report.md")
    return lines


def write_summary(folder: Path, run: dict[str, Any],
                  records: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Render summary.json and report.md from the folder's cases.jsonl (or `records`, read
    from it already) and smallest.jsonl."""
    summary = summarize(iter_cases(folder) if records is None else records, run)
    if (folder / SMALLEST_FILE).exists():
        with open(folder / SMALLEST_FILE, encoding="utf-8") as lines:
            attach_smallest(summary, (json.loads(line) for line in lines if line.strip()))
    (folder / SUMMARY_FILE).write_text(dumps(summary, indent=2) + "\n", encoding="utf-8")
    (folder / MARKDOWN_FILE).write_text(render_markdown(summary), encoding="utf-8")
    return summary


def _table(title: str, rows: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"| {title} | " + " | ".join(VERDICTS) + " |",
             "|---|" + "---:|" * len(VERDICTS)]
    lines += [f"| {name} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |"
              for name, counts in rows.items()]
    return lines


def _checked(candidates: dict[str, dict[str, Any]]) -> list[str]:
    """What each candidate had checked, and what it declares (shown when some were skipped or
    there are several candidates)."""
    notes = [f"- **{name}** {note}" for name, c in candidates.items()
             for note in candidate_notes(c)]
    if len(candidates) < 2 and not any(c["skipped"] for c in candidates.values()):
        return [*notes, ""] if notes else []
    lines = ["## Checked, by candidate", "",
             "| candidate | status | checked | skipped | most common skip | declares |",
             "|---|---|---:|---:|---|---|"]
    lines += [f"| {name} | {c['status']} | {c['checked']} | {c['skipped']} | "
              f"{c['skip_reason'].replace('|', '/')} | {c['declared']} |"
              for name, c in candidates.items()]
    return [*lines, "", *([*notes, ""] if notes else [])]


def run_file(path: Any) -> bool:
    """A repro script's path as the run writes it (repro/NAME.py): the only links a report
    makes, whatever a record says."""
    return isinstance(path, str) and re.fullmatch(r"repro/[A-Za-z0-9_.-]+\.py", path) is not None


def render_markdown(summary: dict[str, Any], max_problems: int = 20) -> str:
    run = summary["run"]
    verdicts = summary["verdicts"]
    oracles = ", ".join(f"{name} {d['version']}" for name, d in run["oracles"].items())
    worst = summary["max_err_over_tol"]
    several = len(run["candidates"]) > 1
    lines = [
        f"# mybackprop check: {', '.join(run['candidates'])}",
        "",
        f"**{summary['status']['headline']}**",
        "",
        f"{run['cases']} cases"
        + (f" x {len(run['candidates'])} candidates" if several else "")
        + f", seed {run['seed']}, oracles {oracles}. Worst error: "
        + ("n/a" if worst is None else f"{worst:.3g}x tolerance") + "."
        + (f" Isolated candidates ran in {run['isolation']}." if run.get("isolation") else ""),
        "",
        *_table("verdict", {"all cases": verdicts}),
        "",
        *_checked(summary["status"]["by_candidate"]),
        *(["## By candidate", "", *_table("candidate", summary["by_candidate"]), ""]
          if several else []),
        "## By activation (a case counts once for each activation it uses)",
        "",
        *_table("activation", summary["by_activation"]),
        "",
        "## By loss",
        "",
        *_table("loss", summary["by_loss"]),
        "",
        "## By reduction and dtype",
        "",
        *_table("reduction", summary["by_reduction"]),
        "",
        *_table("dtype", summary["by_dtype"]),
        "",
    ]
    problems = summary["problems"]
    if problems:
        lines += ["## Cases that did not pass", "",
                  "| case | candidate | verdict | architecture | N | dtype | err/tol | reason | "
                  "diagnosis | repro |",
                  "|---:|---|---|---|---:|---|---:|---|---|---|"]
        for p in problems[:max_problems]:
            ratio = "" if p["max_err_over_tol"] is None else f"{p['max_err_over_tol']:.3g}"
            reason = p["reason"].replace("|", "\\|")
            diagnosis = p.get("diagnosis", "").replace("|", "\\|")
            repro = f"[script]({p['repro']})" if run_file(p.get("repro")) else ""
            lines.append(f"| {p['case']} | {p['candidate']} | {p['verdict']} | "
                         f"`{p['architecture']}` | {p['batch_size']} | {p['dtype']} | {ratio} | "
                         f"{reason} | {diagnosis} | {repro} |")
        if len(problems) > max_problems:
            lines.append(f"\n…and {len(problems) - max_problems} more in cases.jsonl.")
        lines.append("")
    lines += ["Each line of `cases.jsonl` holds one case: its config (seed, architecture, dtype, "
              "scales), verdict, and per-tensor errors in units of the tolerance.", ""]
    # Names, reasons and diagnoses come from candidates and their files: nothing in them may
    # become HTML where the Markdown is rendered (the report itself writes none).
    return "\n".join(lines).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
