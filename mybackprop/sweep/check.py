"""A check: the settings a door built, run to the end. Workers start, candidates and oracles
load, the run folder is prepared (or resumed), the cases are swept, failures shrunk, and the
summary written. The command line and the Python API both run this, and only print apart."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mybackprop.harness import supervise
from mybackprop.harness.contract import CandidateLoadError
from mybackprop.harness.runner import FAILING
from mybackprop.harness.sandbox import describe as describe_isolation
from mybackprop.harness.settings import RunSettings, SettingsError
from mybackprop.oracles import OracleUnavailable
from mybackprop.reporting.records import (
    CASES_FILE,
    SMALLEST_FILE,
    RunWriter,
    dumps,
    iter_cases,
    summary_lines,
    write_summary,
)
from mybackprop.spec.problem import SpecError
from mybackprop.sweep.sweeps import (
    RUN_FILE,
    Run,
    _State,
    chunks,
    first_failures,
    read_done,
    slug,
    start_workers,
    sweep,
)

DEFAULT_REPORTS = Path("reports")


@dataclass(frozen=True)
class Checked:
    """What a check left: its run folder and its summary (summary.json's contents). Shown as
    text in a terminal and as a compact report in Jupyter."""

    folder: Path
    summary: dict[str, Any]

    @property
    def failed(self) -> int:
        """Cases (times candidates) whose verdict is fail or error."""
        return sum(self.summary["verdicts"][v] for v in FAILING)

    @property
    def status(self) -> str:
        """pass, fail, or nothing_checked (a candidate had no case it took: never a pass)."""
        return self.summary["status"]["status"]

    @property
    def verdicts(self) -> dict[str, int]:
        return self.summary["verdicts"]

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Each kind of mistake: candidate, verdict, kind, count, summary, first case, smallest."""
        return self.summary["findings"]

    def __repr__(self) -> str:
        return "\n".join(summary_lines(self.summary, self.folder))

    def _repr_html_(self) -> str:
        from mybackprop.reporting.html import inline_html

        return inline_html(self.summary, self.folder)


def check(settings: RunSettings, say: Callable[[str], None] = print,
          candidates: list[Any] | None = None) -> Checked:
    """Run the check `settings` describe; `say` gets each line meant for a person (none when
    settings.quiet). `candidates`: loaded already (a function object from the Python API),
    instead of loading settings.impl. Raises SettingsError, one line, when a candidate, an
    oracle or the run folder cannot be used."""
    with contextlib.ExitStack() as stack:  # on the way out: the parent's state, then workers
        # Workers start here and load while this process does; an error below stops them.
        helpers = start_workers(settings)
        if helpers is not None:
            stack.enter_context(helpers)
        try:
            candidates = candidates or settings.load_candidates()
            stack.callback(_close, candidates)  # isolated ones hold a worker process
            for candidate in candidates:  # each has something to check, or it is said now
                candidate.supports.within(settings.space, candidate.name)
            oracles = settings.load_oracles()
        except (SpecError, CandidateLoadError, OracleUnavailable) as exc:
            raise SettingsError(str(exc)) from None
        names = tuple(c.name for c in candidates)
        folder = settings.out or default_folder(names[0] if len(names) == 1 else
                                                f"{len(names)}-candidates", settings.seed)
        run = Run(settings, str(folder), names)
        parent = _State(run, candidates, oracles)  # runs the cases (one worker), shrinks
        return _sweep_and_summarize(run, parent, helpers, say)


def _close(candidates: list[Any]) -> None:
    for candidate in candidates:
        if candidate.isolated is not None:
            candidate.isolated.close()


def _sweep_and_summarize(run: Run, parent: _State, helpers: Any,
                         say: Callable[[str], None]) -> Checked:
    """Run the cases not yet recorded, shrink failures, write the summary."""
    from tqdm import tqdm

    settings, folder, names = run.settings, Path(run.folder), list(run.candidates)
    quiet = settings.quiet
    # One run writes a folder at a time: the lock is held until this function returns (taken
    # before a resumed run's records are read, as their reading may rewrite them).
    lock = _lock(folder) if settings.resume and (folder / RUN_FILE).exists() else None
    done, dropped = prepare_folder(folder, run, parent)
    lock = lock or _lock(folder)
    supervise.note(folder=str(folder), expect=settings.cases * len(names), calling="")
    record = {"candidates": names, "seed": settings.seed, "cases": settings.cases,
              "space": dict(vars(settings.space)),
              "oracles": {o.name: o.describe() for o in parent.oracles},
              "tolerance_factor": settings.tolerance.factor, "workers": settings.workers,
              "executor": settings.executor, "chunk": settings.chunk,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "declared": {c.name: c.supports.describe() for c in parent.candidates}}
    isolated = [c for c in parent.candidates if c.isolated is not None]
    if isolated:  # where untrusted code ran, and so what it could reach
        record["isolation"] = describe_isolation(isolated[0].isolated.sandboxed)
    left = sum(len(done.get(case, ())) < len(names) for case in range(settings.cases))
    if not quiet:
        versions = ", ".join(f"{name} {d['version']}" for name, d in record["oracles"].items())
        resumed = f", resuming: {settings.cases - left} done" if settings.resume else ""
        workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
        say(f"mybackprop check: {', '.join(names)} vs {versions}; {settings.cases} cases, "
            f"seed {settings.seed}, {workers}{resumed}")
        if isolated:
            say(f"isolated candidates run in {record['isolation']}")
    if dropped:  # said even when quiet: the folder was changed
        say(f"--resume: removed {sum(dropped.values())} records from {folder / CASES_FILE} "
            "that this run would not write (" + ", ".join(
                f"{n} {why}" for why, n in dropped.most_common()) + "); their cases run again")
    writer = RunWriter(folder)
    started = time.perf_counter()
    progress = tqdm(total=settings.cases, initial=settings.cases - left, unit="case",
                    disable=quiet, file=sys.stderr, dynamic_ncols=True)
    spent: dict[str, float] = {}
    try:
        for finished, seconds in sweep(run, chunks(run, done), parent, started=helpers):
            writer.add_lines(line for _, line, _ in finished)
            for _, _, message in finished:
                if message and settings.verbose and not quiet:
                    progress.write(message)
            for part, value in seconds.items():
                spent[part] = spent.get(part, 0.0) + value
            progress.update(len({case for case, _, _ in finished}))
    finally:
        progress.close()
        writer.close()
    writer.verify()  # what it wrote is what is there: else the run is not judged
    if settings.shrink or settings.repro == "first":
        firsts = first_failures(parent, iter_cases(folder),
                                lambda line: say(line) if settings.verbose and not quiet
                                else None)
        (folder / SMALLEST_FILE).write_text(
            "".join(dumps(r) + "\n" for r in firsts), encoding="utf-8")
    record["seconds"] = round(time.perf_counter() - started, 3)
    # Where this invocation's time went, summed over workers (a resumed run: its own part).
    record["seconds_by_part"] = {part: round(value, 3) for part, value in sorted(spent.items())}
    # The plots need every record; read once, they make the summary too.
    records = list(iter_cases(folder)) if settings.html else None
    summary = write_summary(folder, record, records)
    if records is not None:
        from mybackprop.reporting.html import write_html  # matplotlib: only when drawing

        write_html(folder, summary, records)
    lock.close()
    return Checked(folder, summary)


def _lock(folder: Path) -> Any:
    """An exclusive lock on the run folder, or SettingsError when another run holds it (two
    --resume at once would write every case twice)."""
    import fcntl

    handle = open(folder / RUN_FILE, "rb")  # noqa: SIM115 - held for the run, closed on exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SettingsError(f"{folder} is being written by another run: wait for it, or give "
                            "another --out") from None
    return handle


def prepare_folder(folder: Path, run: Run, state: _State | None = None
                   ) -> tuple[dict[int, set[str]], dict[str, int]]:
    """A new run folder, or (resume) the one to continue: its settings must match, and only
    the records this run would write are kept (read_done). Returns the (case -> candidates)
    recorded, and how many records were removed, by why."""
    run_file = folder / RUN_FILE
    if run.settings.resume:
        if not run_file.exists():
            raise SettingsError(f"--resume: {folder} holds no run to resume ({RUN_FILE} is "
                                "missing); give the --out folder of an interrupted run")
        recorded = json.loads(run_file.read_text(encoding="utf-8"))
        if recorded != run.comparable():
            changed = sorted(k for k in {*recorded, *run.comparable()}
                             if recorded.get(k) != run.comparable().get(k))
            if changed == ["sources"] and "sources" in recorded:
                edited = sorted(n for n, d in run.comparable()["sources"].items()
                                if recorded["sources"].get(n) != d)
                raise SettingsError(f"--resume: {', '.join(edited)} changed since {folder} was "
                                    "started: its records would mix two versions; start a new "
                                    "run (another --out)")
            raise SettingsError(f"--resume: {folder} was started with other settings "
                                f"({', '.join(changed)}); repeat the original options")
        return read_done(folder, state)
    if (folder / CASES_FILE).exists():
        raise SettingsError(f"{folder} already holds a run: choose another --out, remove it, "
                            "or add --resume to continue it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps(run.comparable(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"--out {folder}: cannot write the run folder there "
                            f"({exc.strerror or exc}): give a folder you can write") from None
    return {}, {}


def default_folder(impl: str, seed: int) -> Path:
    """reports/<time>-<candidate>-seed<seed>, numbered when it exists."""
    base = DEFAULT_REPORTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(impl)}-seed{seed}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder
