"""Sweeps: many cases, in one process or several, resumable after any interruption.

Case k of a run with seed s is drawn from its own generator, default_rng([s, k]): its contents
depend on (s, k) alone, never on the order cases run in, the number of workers, or what ran
before. Cases travel in chunks of fixed case numbers ([0, chunk), [chunk, 2 chunk), ...): a chunk's
cases go through the oracles' batched paths together, so a chunk is also what an answer's
rounding may depend on, and it is the same for one process, W processes or a Dask cluster.
Executors (spawned processes, or Dask workers) each load the oracles and candidates once and
return records; the parent alone appends them to cases.jsonl, in case order, one flushed line
each, with a bounded number of chunks in flight (memory stays flat in the number of cases).
So one process, W workers and a Dask cluster write the same cases.jsonl. Resuming reads
cases.jsonl, drops a last line cut short by a kill, and runs only the (case, candidate) pairs
that have no record.

After the sweep, the lowest-numbered failure of each candidate and diagnosis is shrunk (in the
parent), so which case gets shrunk does not depend on the workers either.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mybackprop.harness import supervise
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.runner import FAILING, Outcome
from mybackprop.harness.settings import RunSettings
from mybackprop.harness.shrink import shrink, size
from mybackprop.reporting.records import CASES_FILE, dumps, failure_kind, read_record
from mybackprop.reporting.repro import write_repro
from mybackprop.spec.problem import Problem
from mybackprop.sweep.threads import (
    ONE_THREAD,
    environ_kept,
    freeze_loaded,
    hold_to_one_thread,
    one_thread_children,
)

RUN_FILE = "run.json"
Job = tuple[int, frozenset[str]]  # a case and the candidates it already has records for
# What a chunk sends back: (case, record as a cases.jsonl line, message) per case and candidate,
# and seconds per part. Workers write the JSON: the parent, which writes every line of the run,
# then only appends text, and a string crosses between processes cheaper than a dict.
ChunkResult = tuple[list[tuple[int, str, str]], dict[str, float]]


def case_problem(seed: int, case: int, space: CaseSpace, own: bool = False) -> Problem:
    """Case `case` of the run with `seed`: the same whatever else runs, and in whatever order.
    own: the case drawn for a candidate's own part of the space (see _State.case_problems),
    from a stream of its own, named by that part."""
    key = [seed, case, zlib.crc32(space.stream_name().encode())] if own else [seed, case]
    return sample_problem(np.random.default_rng(key), space)


@dataclass(frozen=True)
class Run:
    """A run: its settings, its folder, and its candidates' names as the records carry them
    (picklable: a worker rebuilds its checker and candidates from it alone)."""

    settings: RunSettings
    folder: str
    candidates: tuple[str, ...]

    def comparable(self) -> dict[str, Any]:
        """What must match for a resumed run to continue this one (run.json)."""
        settings = self.settings
        return {"seed": settings.seed, "cases": settings.cases,
                "space": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in vars(settings.space).items()},
                "candidates": list(self.candidates), "oracles": list(settings.oracles),
                "tolerance_factor": dict(settings.tolerance.factor), "chunk": settings.chunk,
                "sources": {name: source_digest(name) for name in self.candidates}}


def source_digest(spec: str) -> str:
    """The sha256 of a candidate's source file (a FILE.py spec, or a module's file), or '' where
    there is none to read: a resumed run refuses a candidate edited since it started."""
    target, sep, _ = spec.rpartition(":")
    path: str | None = target if sep and target.endswith(".py") else None
    if path is None and sep and target:
        try:
            import importlib.util

            found = importlib.util.find_spec(target)
            path = found.origin if found is not None else None
        except (ImportError, ValueError):
            path = None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


class _State:
    """One process's checker and candidates: a worker loads its own; the parent reuses what the
    door loaded to check its settings (isolated candidates keep their worker process)."""

    def __init__(self, run: Run, candidates: list[Any] | None = None,
                 oracles: list[Any] | None = None) -> None:
        settings = self.settings = run.settings
        self.run = run
        self.space = settings.space
        self.tolerance = settings.tolerance
        self.candidates = candidates or settings.load_candidates()
        # Each candidate's part of the run's space: what it declares, within the options.
        self.spaces = {c.name: c.supports.within(self.space, c.name) for c in self.candidates}
        self.oracles = oracles or settings.load_oracles()
        self.checker = settings.checker(self.oracles)
        freeze_loaded()  # torch and JAX are in: keep the collector off their objects

    def run_chunk(self, jobs: list[Job]) -> ChunkResult:
        """Records and messages for a chunk of cases; the oracles answer them together."""
        seconds: collections.Counter[str] = collections.Counter()
        started = time.perf_counter()
        by_case = [self.case_problems(case) for case, _ in jobs]
        # The oracles answer the shared draws together, and each candidate's own draws apart:
        # an answer's rounding depends on what it is batched with, so none depends on which
        # other candidates run.
        batches: dict[Any, dict[int, Problem]] = collections.defaultdict(dict)
        for problems in by_case:
            for group, problem in problems.values():
                batches[group][id(problem)] = problem
        seconds["drawing cases"] += time.perf_counter() - started
        answers = {}
        for batch in batches.values():
            answers.update(zip(batch, self.checker.references_many(list(batch.values())),
                               strict=True))
        for refs in answers.values():
            for name, spent in refs.seconds.items():
                seconds[f"oracle {name}"] += spent
        out = []
        for (case, skip), problems in zip(jobs, by_case, strict=True):
            wanted = [c for c in self.candidates if c.name not in skip]
            # Repro scripts hold the reference answer: written once every candidate of the
            # case has answered, so none can read another's (in-process, it sees the folder).
            repros = []
            for candidate in wanted:
                problem = problems[candidate.name][1]
                refs = answers[id(problem)]
                started = time.perf_counter()
                supervise.calling(case, candidate.name)
                outcome = self.checker.check(candidate, problem, refs)
                supervise.calling(None)
                spent = time.perf_counter() - started
                seconds[f"candidate {candidate.name}"] += outcome.seconds.get("candidate", 0.0)
                seconds["judging"] += spent - outcome.seconds.get("candidate", 0.0)
                record = {"case": case, "seed": self.settings.seed, **outcome.to_record()}
                if (self.settings.repro == "all" and outcome.verdict in FAILING
                        and outcome.reference_answer is not None):
                    name = repro_name(case, candidate.name)
                    repros.append((Path(self.run.folder) / name, outcome, candidate.name))
                    record["repro"] = name
                message = (f"case {case}: {outcome.message()}"
                           if outcome.verdict in ("fail", "error", "oracle_disagreement") else "")
                line = dumps(record, check_circular=False)  # a tree; strict JSON
                out.append((case, line + "\n", message))
            for path, outcome, name in repros:
                write_repro(path, outcome, name, self.tolerance)
        return out, dict(seconds)

    def died(self, case: int, name: str,
             reason: str = "the pool process running it died (os._exit, a crash, a kill or "
                           "out of memory), also when it ran alone"
             ) -> list[tuple[int, str, str]]:
        """The record of a (case, candidate) whose worker died while it ran: an error (the run
        goes on; a worker never comes back to answer it)."""
        candidate = next(c for c in self.candidates if c.name == name)
        problem = self.case_problems(case)[name][1]
        outcome = Outcome("error", name, problem, oracles=self.checker._descriptions,
                          conventions=candidate.supports.conventions).ends("error", reason)
        record = {"case": case, "seed": self.settings.seed, **outcome.to_record()}
        return [(case, dumps(record, check_circular=False) + "\n",
                 f"case {case}: {outcome.message()}")]

    def case_problems(self, case: int) -> dict[str, tuple[CaseSpace | None, Problem]]:
        """Each candidate's problem for case `case`, with where it was drawn: the run's shared
        draw (None) where its declaration takes it, so candidates can be compared case by
        case, else its own part of the space. A candidate's cases depend on the seed, the
        options and its own declaration, never on which other candidates run beside it."""
        shared = case_problem(self.settings.seed, case, self.space)
        problems: dict[str, tuple[CaseSpace | None, Problem]] = {}
        own: dict[CaseSpace, Problem] = {}
        for candidate in self.candidates:
            if candidate.supports.reason_to_skip(shared) is None:
                problems[candidate.name] = (None, shared)
                continue
            space = self.spaces[candidate.name]
            if space not in own:
                own[space] = case_problem(self.settings.seed, case, space, own=True)
            problems[candidate.name] = (space, own[space])
        return problems


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60]


def chunks(run: Run, done: dict[int, set[str]]) -> Iterator[list[Job]]:
    """The jobs left, chunk by chunk (fixed case numbers), made as they are needed."""
    everyone, settings = len(run.candidates), run.settings
    for start in range(0, settings.cases, settings.chunk):
        jobs = [(case, frozenset(done.get(case, ())))
                for case in range(start, min(start + settings.chunk, settings.cases))
                if len(done.get(case, ())) < everyone]
        if jobs:
            yield jobs


# One worker's state per process and run: spawned pool workers and Dask workers build it once.
_WORKERS: dict[str, _State] = {}


def _worker_state(run: Run) -> _State:
    key = repr(run)
    if key not in _WORKERS:
        hold_to_one_thread()  # before the oracles load (a Dask worker may lack ONE_THREAD)
        _WORKERS[key] = _State(run)
    return _WORKERS[key]


def run_chunk_in_worker(run: Run, jobs: list[Job]) -> ChunkResult:
    """A worker's task (process pool or Dask): a chunk of cases, with its own loaded state."""
    return _worker_state(run).run_chunk(jobs)


def _ordered(submit: Callable[[list[Job]], Any], wait: Callable[[Any], ChunkResult],
             work: Iterable[list[Job]], window: int) -> Iterator[ChunkResult]:
    """Results in submission order, with at most `window` chunks in flight."""
    pending: collections.deque[Any] = collections.deque()
    for jobs in work:
        pending.append(submit(jobs))
        if len(pending) >= window:
            yield wait(pending.popleft())
    while pending:
        yield wait(pending.popleft())


class Pool:
    """`helpers` spawned worker processes (concurrent.futures) that survive a dead worker.

    A worker that dies (a signal, os._exit in a candidate, the out-of-memory killer) breaks a
    ProcessPoolExecutor: every chunk it held fails with BrokenProcessPool, and the pool takes
    no more. `restart` starts a fresh one, so the sweep can run those chunks again (see
    _shared); nothing waits on a worker that is gone."""

    def __init__(self, helpers: int, oracles: Iterable[str]) -> None:
        self.helpers, self.oracles = helpers, tuple(oracles)
        self._executor = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        """A worker's start-up (interpreter, numpy, torch, JAX: ~2 s) is most of what a short
        sweep loses to it: the workers are started at once (an empty task each) and load the
        oracles while this process loads its own."""
        context = multiprocessing.get_context("spawn")  # JAX and torch hold threads: no fork
        with one_thread_children():  # spawned workers read it before numpy, torch, jax load
            executor = concurrent.futures.ProcessPoolExecutor(
                self.helpers, mp_context=context, initializer=_preload,
                initargs=(self.oracles,))
            for _ in range(self.helpers):
                executor.submit(int)
        return executor

    def submit(self, function: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self._executor.submit(function, *args)

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _preload(oracles: tuple[str, ...]) -> None:
    """A pool worker's first act: import what its chunks will need (the parent reports any
    oracle that cannot load, so a failure here is left for that)."""
    hold_to_one_thread()
    import mybackprop.harness.runner  # noqa: F401
    from mybackprop.oracles import load_oracle

    for name in oracles:
        try:
            load_oracle(name)
        except Exception:  # noqa: BLE001 - the parent names it
            pass


def sweep(run: Run, work: Iterable[list[Job]], parent: _State | None = None,
          started: Pool | DaskExecutor | None = None
          ) -> Iterator[ChunkResult]:
    """Run the chunks; yield each chunk's records, in case order, as soon as it is its turn.

    With the process executor, this process is one of the settings' workers (1: the only one),
    beside workers - 1 spawned ones. "dask" sends the chunks to the Dask scheduler at the
    settings' scheduler (host:port), or to a local cluster of that many workers. `started`:
    those workers, if the caller started them (start_workers) and closes them itself;
    otherwise they are started and closed here.
    """
    settings = run.settings
    if settings.executor == "dask":
        with contextlib.ExitStack() as stack:
            dask = started or stack.enter_context(DaskExecutor(settings.workers,
                                                               settings.scheduler,
                                                               settings.oracles))
            yield from _dask_sweep(run, work, dask, parent or _State(run))
        return
    state = parent or _State(run)
    if settings.workers <= 1:
        for jobs in work:
            yield state.run_chunk(jobs)
        return
    with contextlib.ExitStack() as stack:
        helpers = started or stack.enter_context(Pool(settings.workers - 1,
                                                            settings.oracles))
        yield from _shared(state, helpers, iter(work))  # this process is the W-th worker


def start_workers(settings: RunSettings) -> Pool | DaskExecutor | None:
    """The workers a sweep with these settings will use beside this process, started now so
    that they load the oracles while this process does (None: this process alone)."""
    if settings.executor == "dask":
        return DaskExecutor(settings.workers, settings.scheduler, settings.oracles)
    if settings.workers > 1:  # this process is one of the W
        hold_to_one_thread()  # before the oracles load, as the spawned workers do
        return Pool(settings.workers - 1, settings.oracles)
    return None


def _shared(state: _State, pool: Pool, work: Iterator[list[Job]]) -> Iterator[ChunkResult]:
    """Chunks in order, run by the pool's processes and by this one: whenever the next
    result is not ready, this process runs the next chunk itself (it has everything loaded,
    so it starts at once while the pool's processes import and compile). Which process runs a
    chunk changes nothing in its records. At most 4 (helpers + 1) chunks wait here.

    A pool worker that dies breaks the pool: it is restarted and every chunk it held runs
    again (_result), so a dead worker costs a restart, never a hang."""
    helpers = pool.helpers
    # [kind, value, jobs]: kind "pool" (value: a future) or "here" (value: the result)
    pending: collections.deque[list[Any]] = collections.deque()
    in_pool, exhausted = 0, False
    while True:
        while not exhausted and in_pool < 2 * helpers:
            jobs = next(work, None)
            if jobs is None:
                exhausted = True
            else:
                pending.append(["pool", pool.submit(run_chunk_in_worker, state.run, jobs),
                                jobs])
                in_pool += 1
        if not pending:
            return
        kind, value, _ = pending[0]
        if kind == "here" or value.done():
            entry = pending.popleft()
            in_pool -= kind == "pool"
            yield entry[1] if kind == "here" else _result(state, pool, entry, pending)
            continue
        jobs = None
        if not exhausted and len(pending) < 4 * (helpers + 1):
            jobs = next(work, None)
            exhausted = jobs is None
        if jobs is None:  # nothing left to run here (or enough waiting): wait for the head
            entry = pending.popleft()
            in_pool -= 1
            yield _result(state, pool, entry, pending)
        else:
            pending.append(["here", state.run_chunk(jobs), jobs])


def _result(state: _State, pool: Pool, entry: list[Any],
            pending: collections.deque[list[Any]]) -> ChunkResult:
    """A pool chunk's result. If a worker died, the pool is broken and every chunk it held is
    lost, whichever chunk's worker died: this one runs again with nothing else in the fresh
    pool (so that it alone can break it), then the others are sent again."""
    try:
        return entry[1].result()
    except concurrent.futures.process.BrokenProcessPool:
        pass
    pool.restart()
    result = _alone(state, pool, entry[2])
    for waiting in pending:
        if waiting[0] == "pool":
            waiting[1] = pool.submit(run_chunk_in_worker, state.run, waiting[2])
    return result


def _alone(state: _State, pool: Pool, jobs: list[Job]) -> ChunkResult:
    """A chunk run with nothing else in the pool; if it breaks the pool by itself, each of its
    (case, candidate) pairs runs alone, and a pair that breaks it is an error of its own."""
    try:
        return pool.submit(run_chunk_in_worker, state.run, jobs).result()
    except concurrent.futures.process.BrokenProcessPool:
        pool.restart()
    out: list[tuple[int, str, str]] = []
    seconds: collections.Counter[str] = collections.Counter()
    for case, skip in jobs:
        for name in state.run.candidates:
            if name in skip:
                continue
            alone = [(case, frozenset(state.run.candidates) - {name})]
            try:
                lines, spent = pool.submit(run_chunk_in_worker, state.run, alone).result()
            except concurrent.futures.process.BrokenProcessPool:
                pool.restart()
                lines, spent = state.died(case, name), {}
            out += lines
            seconds.update(spent)
    return out, dict(seconds)


class DaskExecutor:
    """A Dask client (to the scheduler at `scheduler`, or to a local cluster of `workers`
    processes), made in a thread: the cluster starts, and its workers load the oracles, while
    this process loads its own (as Pool's workers do). client() waits for it and raises
    what the start raised; close() waits for it too, then closes what it made."""

    def __init__(self, workers: int, scheduler: str | None, oracles: Iterable[str]) -> None:
        self._made: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._start, name="mybackprop-dask-start",
                                        args=(workers, scheduler, tuple(oracles)), daemon=True)
        self._thread.start()

    def _start(self, workers: int, scheduler: str | None, oracles: tuple[str, ...]) -> None:
        try:
            from distributed import Client, LocalCluster

            if scheduler:
                self._made["client"] = Client(scheduler)
                return
            import dask

            # A local cluster: processes, one thread each (the time limit needs no thread).
            # - No dashboard, so no use for the workers' statistical profiler: its thread
            #   samples the running task every 10 ms and takes the GIL from it each time.
            # - No MALLOC_TRIM_THRESHOLD_=65536 (Dask's default for its workers; None unsets it,
            #   a value already in the environment is kept): glibc then hands every freed block
            #   over 64 KiB back to the system and faults it in again at the next allocation,
            #   which made PyTorch 3x and JAX 2x slower in a worker (measured, one worker, 1,792
            #   cases: 1.2 -> 0.4 s and 1.0 -> 0.6 s).
            # - Logs: CRITICAL only, here and in the workers. A task's error reaches us through
            #   its future; a worker's own log (a heartbeat that meets a scheduler shutting
            #   down, when a usage error closes a cluster that just started) put 30 lines of
            #   traceback around the one line that says what went wrong.
            # A nanny writes its pre-spawn variables (and PYTHONHASHSEED) into this process's
            # environment to spawn its worker, and leaves them there: put back what was here.
            spawn = "distributed.nanny.pre-spawn-environ"
            written = [*dask.config.get(spawn), "DASK_LOGGING__DISTRIBUTED", "PYTHONHASHSEED"]
            with (dask.config.set({"distributed.worker.profile.enabled": False,
                                   f"{spawn}.MALLOC_TRIM_THRESHOLD_": None,
                                   f"{spawn}.DASK_LOGGING__DISTRIBUTED": "critical"}),
                  environ_kept(written)):
                cluster = self._made["cluster"] = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, env=dict(ONE_THREAD), silence_logs=logging.CRITICAL)
            client = self._made["client"] = Client(cluster)
            client.run(_preload, oracles)  # our own workers: load while this process does
        except BaseException as exc:  # noqa: BLE001 - client() raises it in the caller
            self._made["error"] = exc

    def client(self) -> Any:
        self._thread.join()
        if "error" in self._made:
            raise self._made["error"]
        return self._made["client"]

    def close(self) -> None:
        self._thread.join()
        if "client" in self._made:
            self._made["client"].close()
        if "cluster" in self._made:
            self._made["cluster"].close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _dask_sweep(run: Run, work: Iterable[list[Job]], dask: DaskExecutor,
                state: _State) -> Iterator[ChunkResult]:
    client = dask.client()
    window = 2 * max(1, len(client.scheduler_info()["workers"]))
    yield from _ordered(lambda jobs: (client.submit(run_chunk_in_worker, run, jobs,
                                                    pure=False), jobs),
                        lambda sent: _dask_result(state, *sent), work, window)


def _dask_result(state: _State, future: Any, jobs: list[Job]) -> ChunkResult:
    """A chunk's result from Dask, or, where its workers kept dying on it (Dask retries a
    task whose worker died, then gives up: KilledWorker), an error for each of its pairs."""
    try:
        return future.result()
    except Exception as exc:
        if type(exc).__name__ != "KilledWorker":
            raise
    reason = ("the Dask workers running its chunk died each time Dask tried it (os._exit, a "
              "crash, a kill or out of memory), in this case or another of its chunk")
    return [line for case, skip in jobs for name in state.run.candidates if name not in skip
            for line in state.died(case, name, reason)], {}


def read_done(folder: Path, state: _State | None = None
              ) -> tuple[dict[int, set[str]], collections.Counter[str]]:
    """The (case -> candidates) already recorded, and why records were dropped. A last line cut
    short by a kill is removed. With `state` (a resumed run), only records this run would have
    written are kept: its seed, one of its candidates, a case below --cases, the config this
    run draws for that case and candidate (compared as canonical JSON), and each pair once;
    the others are removed from cases.jsonl, and their pairs run again."""
    path = folder / CASES_FILE
    done: dict[int, set[str]] = {}
    dropped: collections.Counter[str] = collections.Counter()
    if not path.exists():
        return done, dropped
    kept: list[tuple[int, int]] = []  # (start, end) byte spans of the lines kept
    drawn: dict[int, dict[str, str]] = {}  # case -> candidate -> canonical config
    with open(path, "rb+") as file:  # line by line: a long run's file need not fit in memory
        complete = 0
        for number, line in enumerate(file, start=1):
            if not line.endswith(b"\n"):  # killed mid-line: the case runs again
                file.truncate(complete)
                break
            start, complete = complete, complete + len(line)
            if not line.strip():
                continue
            # a line mybackprop did not write is a RecordError, one line
            record = read_record(line.decode("utf-8", "replace"), path, number)
            case, name = record["case"], record["candidate"]
            why = "" if state is None else _foreign(state, record, done, drawn)
            if why:
                dropped[why] += 1
                continue
            done.setdefault(case, set()).add(name)
            kept.append((start, complete))
    if dropped:
        _keep_lines(path, kept)
    return done, dropped


def _foreign(state: _State, record: dict[str, Any], done: dict[int, set[str]],
             drawn: dict[int, dict[str, str]]) -> str:
    """Why a resumed run would not have written this record ('' if it would)."""
    case, name = record["case"], record["candidate"]
    if record.get("seed") != state.settings.seed:
        return "of another seed"
    if name not in state.run.candidates:
        return "of a candidate this run does not check"
    if not 0 <= case < state.settings.cases:
        return "of a case past --cases"
    if name in done.get(case, ()):
        return "twice"
    if case not in drawn:
        drawn[case] = {n: _canonical(problem.meta.get("config"))
                       for n, (_, problem) in state.case_problems(case).items()}
    if _canonical(record.get("config")) != drawn[case].get(name):
        return "of a case this run does not draw"
    return ""


def _canonical(config: Any) -> str:
    return json.dumps(json.loads(dumps(config)), sort_keys=True)


def _keep_lines(path: Path, spans: list[tuple[int, int]]) -> None:
    """Rewrite cases.jsonl with only the lines at `spans`, atomically (a kill leaves the old
    file or the new one)."""
    temporary = path.with_name(path.name + ".resume")
    with open(path, "rb") as source, open(temporary, "wb") as target:
        for start, end in spans:
            source.seek(start)
            target.write(source.read(end - start))
    os.replace(temporary, path)


def repro_name(case: int, candidate: str, smallest: bool = False) -> str:
    """The repro script of a case, relative to the run folder."""
    return f"repro/case-{case:05d}-{'smallest-' if smallest else ''}{slug(candidate)}.py"


def first_failures(state: _State, records: Iterable[dict[str, Any]],
                   report: Callable[[str], None]) -> list[dict[str, Any]]:
    """The lowest-numbered failure of each candidate, verdict and kind of mistake (the groups
    the run's findings show), checked again: its repro script written (--repro first; --repro
    all wrote every one already) and, unless --no-shrink, shrunk to the smallest case that
    keeps its diagnosis, with its own repro."""
    settings = state.settings
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:  # streamed: only the first failure of each kind is kept
        if record["verdict"] in FAILING:
            key = (record["candidate"], record["verdict"], failure_kind(record))
            if key not in first or record["case"] < first[key]["case"]:
                first[key] = record
    by_name = {c.name: c for c in state.candidates}
    folder = Path(state.run.folder)
    results = []
    for (name, verdict, kind), record in sorted(first.items(), key=lambda kv: kv[1]["case"]):
        candidate = by_name[name]
        problem = state.case_problems(record["case"])[name][1]
        supervise.calling(record["case"], name, "shrinking case")
        outcome = state.checker.check(candidate, problem)
        if outcome.reference_answer is None:  # no oracle answer (an oracle failed): no repro
            continue
        result: dict[str, Any] = {"case": record["case"], "candidate": name,
                                  "verdict": verdict, "kind": kind,
                                  "first_repro": record.get("repro", "")}
        if settings.repro == "first":
            result["first_repro"] = repro_name(record["case"], name)
            write_repro(folder / result["first_repro"], outcome, name, state.tolerance)
        if settings.shrink:
            smallest, attempts = shrink(state.checker, candidate, outcome)
            path = repro_name(record["case"], name, smallest=True)
            if settings.repro != "none":
                write_repro(folder / path, smallest, name, state.tolerance)
            before, after = size(problem), size(smallest.problem)
            result.update({
                "architecture": smallest.problem.architecture.describe(),
                "batch_size": smallest.problem.batch_size, "parameters": after[0],
                "was_parameters": before[0], "attempts": attempts,
                "repro": path if settings.repro != "none" else "",
                "diagnosis": smallest.diagnosis.to_dict() if smallest.diagnosis else None})
            report(f"case {record['case']} [{name}]: smallest case that keeps this diagnosis "
                   f"({attempts} tries): {result['architecture']}, N={result['batch_size']} "
                   f"({after[0]} parameters, was {before[0]})"
                   + (f"; repro: {folder / path}" if result["repro"] else ""))
        results.append(result)
        supervise.calling(None)
    return results
