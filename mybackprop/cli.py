"""The command line: ``mybackprop check`` runs random cases against the oracles and writes a report.

Imports stay light here: torch and jax load only when a command needs an oracle.
Exit codes: 0 every case passed (or was skipped), 1 some case failed or errored, 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from mybackprop._runner import DEFAULT_TIME_LIMIT, FAILING  # numpy only: --help needs no torch/jax
from mybackprop._sweep import CHUNK, EXECUTORS

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
DEFAULT_REPORTS = Path("reports")


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mybackprop", description="Check backpropagation against PyTorch and "
                     "JAX on random dense networks, and report where it goes wrong.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = commands.add_parser("check", help="run random cases and write a run folder",
                                description="Run random cases against the oracles; write "
                                "cases.jsonl, summary.json and report.md.")
    check.add_argument("--impl", action="append", metavar="MODULE:ATTR",
                       help="a candidate: module:function, path/to/file.py:function, a "
                            "registered name (see `mybackprop list`), or DIR/:function for every "
                            ".py file in a folder; repeat for several (default: matrix)")
    check.add_argument("--cases", type=int, default=100, help="number of random cases (100)")
    check.add_argument("--seed", type=int, default=0, help="same seed, same cases (0)")
    check.add_argument("--dtype", choices=("float32", "float64"),
                       help="only this dtype (default: both)")
    check.add_argument("--out", type=Path, metavar="DIR",
                       help="run folder (default: a new folder under reports/)")
    check.add_argument("--activations", type=_names, metavar="A,B",
                       help="draw only these activations")
    check.add_argument("--losses", type=_names, metavar="A,B", help="draw only these losses")
    check.add_argument("--reductions", type=_names, metavar="A,B",
                       help="draw only these reductions")
    check.add_argument("--max-depth", type=int, default=5, help="layers per network (5)")
    check.add_argument("--max-width", type=int, default=16, help="units per layer (16)")
    check.add_argument("--max-batch", type=int, default=64, help="samples per batch (64)")
    check.add_argument("--oracles", type=_names, default=("torch", "jax"), metavar="A,B",
                       help="oracles to judge against (torch,jax); finite differences break "
                            "ties when they disagree")
    check.add_argument("--kinks", choices=("avoid", "hit"), default="avoid",
                       help="avoid: keep pre-activations off the kinks of relu and leaky_relu "
                            "(default); hit: put units exactly on them, to see conventions")
    check.add_argument("--tolerance-factor", metavar="DTYPE=F,...",
                       help="allowed error = F (u_candidate + u_oracle) x the error bound of "
                            "each element; default float32=16,float64=16 (docs/tolerance.md)")
    check.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, metavar="S",
                       help=f"seconds a candidate may take on one case ({DEFAULT_TIME_LIMIT:g})")
    check.add_argument("--isolate", action="store_true",
                       help="run each candidate in its own process with a time and memory "
                            "limit: a crash (os._exit, segfault, out of memory) is an error")
    check.add_argument("--memory-limit", type=float, default=4.0, metavar="GIB",
                       help="address space per isolated candidate, in GiB (4)")
    check.add_argument("--no-shrink", dest="shrink", action="store_false",
                       help="do not shrink failures (by default the lowest-numbered failure "
                            "of each candidate and diagnosis is shrunk to the smallest case "
                            "that keeps the diagnosis)")
    check.add_argument("--workers", type=int, default=1, metavar="W",
                       help="processes checking cases in parallel (1); the cases and their "
                            "contents depend only on the seed")
    check.add_argument("--executor", choices=EXECUTORS, default="process",
                       help="process: a pool of W spawned processes on this machine (default); "
                            "dask: Dask workers, at --scheduler or on a local cluster of W "
                            "processes (pip install 'mybackprop[dask]')")
    check.add_argument("--scheduler", metavar="HOST:PORT",
                       help="the Dask scheduler to send chunks to (with --executor dask)")
    check.add_argument("--chunk", type=int, default=CHUNK, metavar="K",
                       help=f"cases per chunk ({CHUNK}): the oracles answer a chunk's cases "
                            "together and workers take a chunk at a time")
    check.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out (Ctrl-C, kill -9): the cases "
                            "without a record run, no case twice")
    check.add_argument("--quiet", action="store_true", help="print only the summary")
    commands.add_parser("list", help="show the candidates and oracles found",
                        description="Show every registered candidate (entry-point group "
                        "mybackprop.candidates) with what it supports, and every oracle.")
    diff = commands.add_parser("diff", help="compare two runs case by case",
                               description="New failures, fixed cases and changed diagnoses "
                               "from RUN_A to RUN_B (same seed and case space). Exit 0 when "
                               "there is no difference, 1 when there is.")
    diff.add_argument("run_a", type=Path, metavar="RUN_A")
    diff.add_argument("run_b", type=Path, metavar="RUN_B")
    report = commands.add_parser("report", help="render a run folder as HTML, Markdown, JSON",
                                 description="Write report.html (self-contained, with plots), "
                                 "report.md and summary.json from RUN_DIR/cases.jsonl alone.")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "diff":
            return _diff(args)
        if args.command == "report":
            return _report(args)
        return _list() if args.command == "list" else _check(args)
    except UsageError as exc:
        print(f"mybackprop: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check(args: argparse.Namespace) -> int:
    from mybackprop._candidate import CandidateLoadError, load_candidates
    from mybackprop._cases import CaseSpace
    from mybackprop._problem import SpecError
    from mybackprop._sweep import DaskExecutor, Settings, _State, start_pool
    from mybackprop._threads import hold_to_one_thread
    from mybackprop._tolerance import Tolerance
    from oracles import OracleUnavailable, load_oracle

    if args.cases < 1:
        raise UsageError(f"--cases is {args.cases}: give a number of cases >= 1")
    if args.memory_limit <= 0:
        raise UsageError(f"--memory-limit is {args.memory_limit:g}: give GiB > 0")
    if args.time_limit <= 0:
        raise UsageError(f"--time-limit is {args.time_limit:g}: give a number of seconds > 0")
    if args.workers < 1:
        raise UsageError(f"--workers is {args.workers}: give a number of processes >= 1")
    if args.chunk < 1:
        raise UsageError(f"--chunk is {args.chunk}: give a number of cases >= 1")
    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler goes with --executor dask: add --executor dask")
    if args.executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise UsageError("--executor dask needs Dask's distributed package, which is not "
                             "installed: pip install 'mybackprop[dask]'")
    if not args.oracles:
        raise UsageError("--oracles is empty: name at least one of torch, jax")
    try:
        space = CaseSpace(**_space_options(args))
        tolerance = Tolerance.parse(args.tolerance_factor or "")
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    with contextlib.ExitStack() as stack:  # on the way out: the parent's state, then workers
        # Workers start here and load while this process does; a usage error below stops them.
        helpers = None
        if args.workers > 1 and args.executor == "process":  # this process is one of the W
            hold_to_one_thread()  # before the oracles load, as the spawned workers do
            helpers = stack.enter_context(start_pool(args.workers - 1, args.oracles))
        elif args.executor == "dask":
            helpers = stack.enter_context(DaskExecutor(args.workers, args.scheduler,
                                                       args.oracles))
        try:
            specs = args.impl or ["mybackprop:matrix"]
            candidates = load_candidates(specs, args.isolate, int(args.memory_limit * 2**30))
            oracles = [load_oracle(name) for name in args.oracles]
        except (SpecError, CandidateLoadError, OracleUnavailable) as exc:
            raise UsageError(str(exc)) from None
        names = [c.name for c in candidates]
        folder = args.out or _default_folder(names[0] if len(names) == 1 else
                                             f"{len(names)}-candidates", args.seed)
        settings = Settings(str(folder), args.seed, args.cases, dict(vars(space)), tuple(names),
                            tuple(args.oracles), dict(tolerance.factor), args.time_limit,
                            args.isolate, int(args.memory_limit * 2**30), tuple(specs),
                            args.chunk)
        parent = _State(settings, candidates, oracles)  # runs the cases (one worker), shrinks
        stack.callback(parent.close)
        return _sweep_and_report(args, settings, parent, helpers)


def _sweep_and_report(args: argparse.Namespace, settings: Any, parent: Any,
                      helpers: Any = None) -> int:
    """Run the cases not yet recorded, shrink failures, write the summary; the exit code."""
    from tqdm import tqdm

    from mybackprop._report import RunWriter, iter_cases, write_summary
    from mybackprop._sweep import SMALLEST_FILE, chunks, shrink_first_failures, sweep

    folder, names, oracles = Path(settings.folder), list(settings.candidates), parent.oracles
    space, tolerance = parent.space, parent.tolerance
    done = _prepare_folder(folder, settings, args.resume)
    run = {"candidates": names, "seed": args.seed, "cases": args.cases,
           "space": {k: v for k, v in vars(space).items()},
           "oracles": {o.name: o.describe() for o in oracles},
           "tolerance_factor": tolerance.factor, "workers": args.workers,
           "executor": args.executor, "chunk": settings.chunk,
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    left = sum(len(done.get(case, ())) < len(names) for case in range(args.cases))
    if not args.quiet:
        versions = ", ".join(f"{o.name} {d['version']}" for o, d in
                             zip(oracles, run["oracles"].values(), strict=True))
        resumed = f", resuming: {args.cases - left} done" if args.resume else ""
        print(f"mybackprop check: {', '.join(names)} vs {versions}; {args.cases} cases, "
              f"seed {args.seed}, {args.workers} worker{'s' if args.workers > 1 else ''}"
              f"{resumed}")
    writer = RunWriter(folder)
    started = time.perf_counter()
    progress = tqdm(total=args.cases, initial=args.cases - left, unit="case",
                    disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    spent: dict[str, float] = {}
    try:
        for finished, seconds in sweep(settings, chunks(settings, done), args.workers, parent,
                                       args.executor, args.scheduler, started=helpers):
            writer.add_lines(line for _, line, _ in finished)
            for _, _, message in finished:
                if message and not args.quiet:
                    progress.write(message)
            for part, value in seconds.items():
                spent[part] = spent.get(part, 0.0) + value
            progress.update(len({case for case, _, _ in finished}))
    finally:
        progress.close()
        writer.close()
    if args.shrink:
        smallest = shrink_first_failures(parent, iter_cases(folder),
                                         lambda line: None if args.quiet else print(line))
        (folder / SMALLEST_FILE).write_text(
            "".join(json.dumps(r) + "\n" for r in smallest), encoding="utf-8")
    run["seconds"] = round(time.perf_counter() - started, 3)
    # Where this invocation's time went, summed over workers (a resumed run: its own part).
    run["seconds_by_part"] = {part: round(value, 3) for part, value in sorted(spent.items())}
    summary = write_summary(folder, run)
    _print_summary(summary, folder)
    bad = sum(summary["verdicts"][v] for v in FAILING)
    return EXIT_FAILURES if bad else EXIT_OK


def _prepare_folder(folder: Path, settings: Any, resume: bool) -> dict[int, set[str]]:
    """A new run folder, or (--resume) the one to continue: its settings must match."""
    from mybackprop._sweep import RUN_FILE, read_done

    run_file = folder / RUN_FILE
    if resume:
        if not run_file.exists():
            raise UsageError(f"--resume: {folder} holds no run to resume ({RUN_FILE} is "
                             "missing); give the --out folder of an interrupted run")
        recorded = json.loads(run_file.read_text(encoding="utf-8"))
        if recorded != settings.comparable():
            changed = sorted(k for k in recorded if recorded[k] != settings.comparable().get(k))
            raise UsageError(f"--resume: {folder} was started with other settings "
                             f"({', '.join(changed)}); repeat the original options")
        return read_done(folder)
    if (folder / "cases.jsonl").exists():
        raise UsageError(f"{folder} already holds a run: choose another --out, remove it, or "
                         "add --resume to continue it")
    folder.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(settings.comparable(), indent=2) + "\n", encoding="utf-8")
    return {}


def _diff(args: argparse.Namespace) -> int:
    from mybackprop._diff import diff_runs

    try:
        result = diff_runs(args.run_a, args.run_b)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(result.lines()))
    return EXIT_OK if result.empty else EXIT_FAILURES


def _report(args: argparse.Namespace) -> int:
    from mybackprop._html import render_run

    try:
        written = render_run(args.run_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    for path in written.values():
        print(f"wrote {path}")
    return EXIT_OK


def _list() -> int:
    from mybackprop._candidate import (
        CandidateLoadError,
        load_candidate,
        registered_candidates,
        registered_versions,
    )
    from oracles import versions

    print("candidates (use with --impl NAME; any MODULE:ATTR or FILE.py:ATTR works too):")
    packages = registered_versions()
    for name, spec in sorted(registered_candidates().items()):
        try:
            supports = load_candidate(name).supports.describe()
        except CandidateLoadError as exc:
            supports = f"cannot be loaded: {exc}"
        print(f"  {name:<20} {spec:<24} {packages[name]:<20} {supports}")
    print("oracles:")
    for name, version in versions().items():
        state = version or "not installed"
        print(f"  {name:<20} {name + ' ' + state:<45} float64")
    print(f"  {'finite_differences':<20} {'mybackprop (numpy)':<45} float64; breaks ties")
    return EXIT_OK


def _space_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"max_depth": args.max_depth, "max_width": args.max_width,
                               "max_batch": args.max_batch, "kinks": args.kinks}
    for name in ("activations", "losses", "reductions"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    if args.dtype:
        options["dtypes"] = (args.dtype,)
    return options


def _default_folder(impl: str, seed: int) -> Path:
    from mybackprop._sweep import slug as make_slug

    slug = make_slug(impl)
    base = DEFAULT_REPORTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-seed{seed}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    counts = ", ".join(f"{n} {v}" for v, n in summary["verdicts"].items() if n)
    worst = summary["max_err_over_tol"]
    worst_text = "" if worst is None else f"; worst error {worst:.3g}x tolerance"
    several = len(summary["by_candidate"]) > 1
    for name, verdicts in summary["by_candidate"].items() if several else ():
        print(f"  {name}: " + ", ".join(f"{n} {v}" for v, n in verdicts.items() if n))
    per = f" x {len(summary['by_candidate'])} candidates" if several else ""
    print(f"{summary['cases']} cases{per}: {counts}{worst_text}; "
          f"{summary['run']['seconds']:.1f} s")
    print(f"report: {folder / 'report.md'}")


if __name__ == "__main__":
    sys.exit(main())
