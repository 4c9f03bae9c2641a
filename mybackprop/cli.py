"""The command line: ``mybackprop check`` runs random cases against the oracles and writes a report.

Imports stay light here: torch and jax load only when a command needs an oracle.
Exit codes: 0 every checked case passed, 1 some case failed or errored or a candidate had nothing
checked, or the run ended without finishing (the supervisor says how: harness/supervise.py), 2
usage error, 128 + n a run killed by signal n.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

# numpy only: --help needs no torch, jax or matplotlib
from mybackprop.harness.runner import DEFAULT_TIME_LIMIT
from mybackprop.harness.settings import CHUNK, EXECUTORS, REPRO_MODES, SPACES, RunSettings
from mybackprop.spec.problem import SpecError

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


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
    check.add_argument("--depth", metavar="N|LO-HI",
                       help="layers per network, exactly N or from LO to HI (instead of "
                            "1 to --max-depth)")
    check.add_argument("--widths", metavar="N0,N1,...",
                       help="exact widths: the input's, then each layer's (e.g. 4,8,3: two "
                            "layers)")
    check.add_argument("--width", metavar="N|LO-HI",
                       help="every width (the input's too), exactly N or from LO to HI "
                            "(instead of 1 to --max-width)")
    check.add_argument("--batch", metavar="N|LO-HI",
                       help="samples per batch, exactly N or from LO to HI (instead of 1 to "
                            "--max-batch)")
    check.add_argument("--hidden-activations", type=_names, metavar="A,B",
                       help="what hidden layers may use (default: --activations)")
    check.add_argument("--output-activations", type=_names, metavar="A,B",
                       help="what the output layer may use (default: --activations)")
    check.add_argument("--bias", choices=("any", "always", "never"), default="any",
                       help="any: each layer has a bias or not at random (default); always; "
                            "never")
    check.add_argument("--space", choices=SPACES, default="default",
                       help="the scales drawn: default (inputs 1e-3 to 1e3, logits up to 1e3 "
                            "times larger: saturated networks, overflow); ordinary (inputs "
                            "0.1 to 10, ordinary logits: every gradient carries signal); "
                            "stress (inputs 1e2 to 1e3, logits 1e3 times larger)")
    check.add_argument("--input-scale", metavar="LO:HI",
                       help="inputs' scale from LO to HI, e.g. 0.1:10 (overrides --space)")
    check.add_argument("--logit-scale", type=float, metavar="MAX",
                       help="the output layer's weights up to MAX times the hidden scale, a "
                            "power of 10, e.g. 1 or 1000 (overrides --space)")
    check.add_argument("--l2", metavar="C,C",
                       help="the L2 penalty coefficients drawn, e.g. 0,0.01 (default: each "
                            "candidate's declared one; 0, 0.01, 0.5 for one that reads it)")
    check.add_argument("--leaky-slope", metavar="S,S",
                       help="leaky_relu's slopes below zero drawn, e.g. 0.01,0.2 (default: "
                            "each candidate's declared one, 0.01 unless it says; 0.01, 0.1, "
                            "0.2, 0.3 for one that reads problem.leaky_slope)")
    check.add_argument("--elu-alpha", metavar="A,A",
                       help="elu's alphas drawn, e.g. 1,0.5 (default: each candidate's "
                            "declared one, 1 unless it says; 1, 0.5, 1.5 for one that reads "
                            "problem.elu_alpha)")
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
    check.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                       help="run each candidate in its own sandboxed process (bubblewrap: no "
                            "view of the harness, the run folder or other submissions) with a "
                            "time and memory limit: a crash (os._exit, segfault, out of "
                            "memory) is an error. Default: on for a folder of submissions or "
                            "several files, off otherwise; --no-isolate runs them in-process")
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
    check.add_argument("--verbose", action="store_true",
                       help="print every case that does not pass, as it finishes (by default "
                            "each kind of mistake is printed once, with its count)")
    check.add_argument("--repro", choices=REPRO_MODES, default="first",
                       help="repro scripts: first (default): the first case of each kind of "
                            "mistake and its smallest case; all: every failing case; none")
    check.add_argument("--no-html", dest="html", action="store_false",
                       help="do not write report.html (mybackprop report RUN_DIR writes it "
                            "later)")
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
    layers = commands.add_parser(
        "layers", help="check every layer of a layer kit alone",
        description="Check each layer a kit declares (mybackprop.layer_functions or "
        "layer_objects) alone: its forward against the reference, its backward as a "
        "vector-Jacobian product against PyTorch's and JAX's, on random shapes; a failure is "
        "shrunk to the smallest shapes and named at your function. Exit 0 when every layer "
        "passes, 1 when one does not.")
    layers.add_argument("--impl", required=True, metavar="MODULE:ATTR",
                        help="the kit: module:name or path/to/file.py:name")
    layers.add_argument("--cases", type=int, default=500,
                        help="random cases per layer, the dtypes in turn (500)")
    layers.add_argument("--seed", type=int, default=0)
    layers.add_argument("--no-shrink", dest="shrink", action="store_false",
                        help="report the first failing case as drawn")
    layers.add_argument("--steps", type=int, default=5,
                        help="training steps of the trajectory, SGD and SGD with momentum, "
                             "against torch.optim.SGD and optax.sgd (5; 0: none)")
    layers.add_argument("--out", type=Path, metavar="DIR",
                        help="also write DIR/report.html (the verdicts and the trajectory plots) "
                             "and DIR/layers.json (the same, as data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "diff":
            return _diff(args)
        if args.command == "report":
            return _report(args)
        if args.command == "layers":
            return _layers(args)
        return _list() if args.command == "list" else _check(args)
    except UsageError as exc:
        print(f"mybackprop: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _layers(args: argparse.Namespace) -> int:
    from mybackprop.harness.contract import CandidateLoadError
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.layer_state import check_layers

    if not 1 <= args.cases <= 1_000_000:
        raise UsageError(f"--cases {args.cases}: give 1 to 1000000 cases per layer")
    if not 0 <= args.steps <= 1000:
        raise UsageError(f"--steps {args.steps}: give 0 to 1000 training steps")
    try:
        kit = kit_named(args.impl)
    except CandidateLoadError as exc:
        print(f"mybackprop: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from mybackprop.harness.trajectory import train

    layout = kit.conventions.describe() or "canonical"
    described = (f"{kit.style}; {layout}; {', '.join(kit.dtypes)}; {args.cases} cases per "
                 f"layer, seed {args.seed}")
    print(f"mybackprop layers: {args.impl} ({described})")
    results = check_layers(kit, args.cases, args.seed, args.shrink)
    alone = [r for r in results if "," not in r.layer]
    state = [r for r in results if "," in r.layer]
    for result in alone + [r for r in state if r.label != "PASS"]:
        print("\n".join(result.lines()))
    bad = [r for r in alone if r.verdict != "pass"]
    bad_state = [r for r in state if r.verdict != "pass"]
    trajectories: list = []
    no_trajectory = "no trajectory: --steps 0"
    if bad:
        no_trajectory = "no trajectory: a layer fails alone (fix it first)"
    elif args.steps:
        momenta = (0.0,) if kit.update is not None else (0.0, 0.9)  # its own step: plain SGD
        trajectories = [t for t in (train(kit, args.steps, momentum=m, seed=args.seed)
                                    for m in momenta) if t is not None]
        no_trajectory = "no trajectory: no loss the kit's layers can feed"
    for trajectory in trajectories:
        print("\n".join(trajectory.lines()))
    bad_steps = [t for t in trajectories if t.verdict != "pass"]
    headline = (f"{len(alone) - len(bad)} of {len(alone)} layers pass alone; state across "
                f"calls (stale cache, accumulation, parameters, aliasing): "
                f"{len(state) - len(bad_state)} of {len(state)} checks pass"
                + (f"; trajectories: {len(trajectories) - len(bad_steps)} of "
                   f"{len(trajectories)} follow PyTorch's" if trajectories else "")
                + (f"; fix {', '.join(r.layer for r in bad)} first: a network built from a "
                   "wrong layer fails however it is wired" if bad else "")
                + (f"; fix {', '.join(r.layer for r in bad_state)}: state that one call never "
                   "shows and a training loop does" if bad_state and not bad else ""))
    print(headline)
    if args.out is not None:
        from mybackprop.reporting.html import write_layers_html

        page = write_layers_html(args.out, args.impl, described, results, trajectories,
                                 headline, no_trajectory)
        print(f"report: {page}")
    return EXIT_FAILURES if bad or bad_state or bad_steps else EXIT_OK


def entry(argv: list[str] | None = None) -> int:
    """The mybackprop command: main, with `check` run under a supervisor (harness/supervise.py),
    a process no candidate ran in, which decides the exit code: a candidate that ends the
    process (os._exit(0) in-process) makes the run an error, never a clean exit."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        command = build_parser().parse_args(argv).command
    except UsageError:
        command = None  # main says it, once
    if command != "check":
        return main(argv)
    from mybackprop.harness.supervise import supervised

    return supervised(lambda: main(argv))


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """The run settings of `mybackprop check`'s options: the door's one conversion."""
    options = {name: value for name, value in vars(args).items() if name != "command"}
    return RunSettings.build(**options)


def _check(args: argparse.Namespace) -> int:
    from mybackprop.sweep.check import check

    try:
        settings = settings_from_args(args)
        checked = check(settings)
    except SpecError as exc:  # SettingsError too: one line, exit 2
        raise UsageError(str(exc)) from None
    _print_summary(checked.summary, checked.folder)
    return EXIT_OK if checked.status == "pass" else EXIT_FAILURES


def _diff(args: argparse.Namespace) -> int:
    from mybackprop.reporting.diff import diff_runs

    try:
        result = diff_runs(args.run_a, args.run_b)
    except (FileNotFoundError, SpecError) as exc:  # a record mybackprop did not write too
        raise UsageError(str(exc)) from None
    print("\n".join(result.lines()))
    return EXIT_OK if result.empty else EXIT_FAILURES


def _report(args: argparse.Namespace) -> int:
    from mybackprop.reporting.html import render_run

    try:
        written = render_run(args.run_dir)
    except (FileNotFoundError, SpecError) as exc:  # a record mybackprop did not write too
        raise UsageError(str(exc)) from None
    for path in written.values():
        print(f"wrote {path}")
    return EXIT_OK


def _list() -> int:
    from mybackprop.harness.contract import CandidateLoadError
    from mybackprop.harness.loading import (
        load_candidate,
        registered_candidates,
        registered_versions,
    )
    from mybackprop.oracles import versions

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


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    from mybackprop.reporting.records import summary_lines

    print("\n".join(summary_lines(summary, folder)))


if __name__ == "__main__":
    sys.exit(entry())
