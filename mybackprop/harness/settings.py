"""Run settings: what a run of checks is asked to do, validated once, at the door.

The command line, the pytest plugin and the Python API each turn their own options into one
``RunSettings`` through ``RunSettings.build`` (the same names as ``mybackprop check``'s options,
the same checks, the same one-line errors); the layers below only read it. It is frozen and
picklable, so a sweep's workers rebuild their checker from it alone.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mybackprop.harness.cases import CaseSpace
from mybackprop.harness.isolate import DEFAULT_MEMORY_LIMIT
from mybackprop.harness.runner import DEFAULT_TIME_LIMIT
from mybackprop.judging.tolerance import Tolerance
from mybackprop.spec.problem import SpecError

DEFAULT_IMPL = ("mybackprop:matrix",)
DEFAULT_ORACLES = ("torch", "jax")
# Named scales: (log10 of the inputs' scale, lo and hi; the highest power of 10 of the logits)
SPACES = {"default": ((-3.0, 3.0), 3), "ordinary": ((-1.0, 1.0), 0), "stress": ((2.0, 3.0), 3)}
CHUNK = 256  # cases per chunk: enough to fill the oracles' stacks, small enough to spread
EXECUTORS = ("process", "dask")
REPRO_MODES = ("first", "all", "none")


class SettingsError(SpecError):
    """A setting that cannot be used: one line naming it, then the fix."""


MAX_TIME_LIMIT = 86400.0  # seconds a case may take: a day
MAX_MEMORY_GIB = 1024  # an isolated candidate's address space
# The most a run takes of each (an absurd value is a one-line error, not a run that never ends
# or an overflow deep inside): cases and chunk, and processes.
MOST = {"cases": 10**9, "chunk": 10**6, "workers": 1024}
MAX_LOGIT_POWER = 6  # --logit-scale: 1e6 at most (the stress space draws 1e3)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs to know, in checked form. Build it with ``RunSettings.build``."""

    impl: tuple[str, ...] = DEFAULT_IMPL  # --impl values as given (a folder loads each file)
    cases: int = 100
    seed: int = 0
    space: CaseSpace = field(default_factory=CaseSpace)
    oracles: tuple[str, ...] = DEFAULT_ORACLES
    tolerance: Tolerance = field(default_factory=Tolerance)
    time_limit: float = DEFAULT_TIME_LIMIT  # seconds a candidate may take on one case
    # True: each candidate in a sandboxed worker process of its own; False: in this process;
    # None: sandboxed where the run grades untrusted code (a folder, or several files)
    isolate: bool | None = None
    memory_limit: int = DEFAULT_MEMORY_LIMIT  # bytes of address space, with isolate
    shrink: bool = True
    workers: int = 1
    executor: str = "process"
    scheduler: str | None = None
    chunk: int = CHUNK
    out: Path | None = None  # the run folder; None: a new one under reports/
    resume: bool = False
    quiet: bool = False  # only the summary
    verbose: bool = False  # every case that did not pass, as it finishes
    html: bool = True  # write report.html at the end
    repro: str = "first"  # repro scripts: all failing cases, each mistake's first, or none

    def __post_init__(self) -> None:
        for name, unit in (("cases", "a number of cases"), ("chunk", "a number of cases"),
                           ("workers", "a number of processes")):
            value, most = getattr(self, name), MOST[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise SettingsError(f"--{name} is {value}: give {unit} from 1 to {most:,}")
        if not 0 < self.time_limit <= MAX_TIME_LIMIT:  # nan fails too
            raise SettingsError(f"--time-limit is {self.time_limit:g}: give a number of "
                                f"seconds > 0 and at most {MAX_TIME_LIMIT:g} (a day)")
        if not 0 < self.memory_limit <= MAX_MEMORY_GIB * 2**30:
            raise SettingsError(f"--memory-limit is {self.memory_limit / 2**30:g}: give GiB > 0 "
                                f"and at most {MAX_MEMORY_GIB}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed < 2**63:
            raise SettingsError(f"--seed is {self.seed}: give an integer from 0 to 2**63 - 1")
        if self.out is not None and self.out.exists() and not self.out.is_dir():
            raise SettingsError(f"--out {self.out} is a file: give a folder (a new one, or a "
                                "run's with --resume)")
        if not self.impl:
            raise SettingsError("--impl is empty: name at least one candidate")
        if not self.oracles:
            raise SettingsError("--oracles is empty: name at least one of torch, jax")
        if self.executor not in EXECUTORS:
            raise SettingsError(f"--executor is {self.executor!r}: choose one of "
                                f"{', '.join(EXECUTORS)}")
        if self.repro not in REPRO_MODES:
            raise SettingsError(f"--repro is {self.repro!r}: choose one of "
                                f"{', '.join(REPRO_MODES)}")
        if self.scheduler and self.executor != "dask":
            raise SettingsError("--scheduler goes with --executor dask: add --executor dask")
        if self.executor == "dask":
            import importlib.util

            if importlib.util.find_spec("distributed") is None:
                raise SettingsError("--executor dask needs Dask's distributed package, which is "
                                    "not installed: pip install 'mybackprop[dask]'")

    @classmethod
    def build(cls, *, impl: str | Iterable[str] | None = None,
              oracles: str | Iterable[str] | None = None,
              tolerance_factor: str | Mapping[str, float] | None = None,
              memory_limit: float = DEFAULT_MEMORY_LIMIT / 2**30,
              out: str | Path | None = None, **options: Any) -> RunSettings:
        """Settings from a door's options, named as ``mybackprop check``'s (``max_depth`` for
        --max-depth). Lists may be given as 'a,b' or as sequences; memory_limit is in GiB;
        tolerance_factor as 'float32=8' or {'float32': 8}. The drawing options (see _space)
        make the CaseSpace; the rest (cases, seed, time_limit, isolate, shrink, workers,
        executor, scheduler, chunk, resume, quiet, verbose, html, repro) go as they are.
        Raises SettingsError, one line, for anything that cannot be used."""
        drawing = {name: options.pop(name) for name in DRAWING_OPTIONS if name in options}
        unknown = sorted(set(options) - ({f.name for f in dataclasses.fields(cls)}
                                         - {"space", "tolerance"}))
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r}: see mybackprop check --help "
                                "for the settings")
        try:
            drawn, tolerance = _space(**drawing), _tolerance(tolerance_factor)
        except SpecError as exc:  # the table's and the tolerance's own checks: one line too
            raise SettingsError(str(exc)) from None
        if not 0 < memory_limit <= MAX_MEMORY_GIB:  # before it is turned into bytes
            raise SettingsError(f"--memory-limit is {memory_limit:g}: give GiB > 0 and at most "
                                f"{MAX_MEMORY_GIB}")
        return cls(impl=names(impl) if impl else DEFAULT_IMPL, space=drawn,
                   oracles=DEFAULT_ORACLES if oracles is None else names(oracles),
                   tolerance=tolerance, memory_limit=int(memory_limit * 2**30),
                   out=None if out is None else Path(out), **options)

    @property
    def isolating(self) -> bool:
        """Whether candidates run isolated: as asked, or (isolate None) where the run grades
        a folder of submissions or several files, whose code nobody vouches for. A module
        or a registered name is installed code, and a single file its author's own run."""
        if self.isolate is not None:
            return self.isolate
        targets = [spec.rpartition(":")[0] for spec in self.impl]
        folders = any("/" in t and Path(t).is_dir() for t in targets)
        return folders or sum(t.endswith(".py") for t in targets) > 1

    def load_candidates(self) -> list[Any]:
        """The candidates named by impl, in this process or (isolating) in workers of their
        own."""
        from mybackprop.harness.loading import load_candidates

        # sandboxed candidates never see the run folder (nor, by default, reports/)
        hidden = [self.out if self.out is not None else Path("reports")]
        return load_candidates(list(self.impl), self.isolating, self.memory_limit, hidden)

    def load_oracles(self) -> list[Any]:
        from mybackprop.oracles import load_oracle

        return [load_oracle(name) for name in self.oracles]

    def checker(self, oracles: list[Any]) -> Any:
        """The Checker these settings describe, judging against `oracles` (loaded ones), with
        finite differences to break ties."""
        from mybackprop.harness.runner import Checker
        from mybackprop.oracles.finite_differences import FiniteDifferenceOracle

        return Checker(oracles, self.tolerance, tie_breaker=FiniteDifferenceOracle(),
                       time_limit=self.time_limit)


def _space(*, activations: Any = None, losses: Any = None, reductions: Any = None,
           dtype: str | None = None, max_depth: int = 5, max_width: int = 16,
           max_batch: int = 64, kinks: str = "avoid", depth: Any = None, widths: Any = None,
           width: Any = None, batch: Any = None, hidden_activations: Any = None,
           output_activations: Any = None, bias: str = "any", space: str = "default",
           input_scale: Any = None, logit_scale: float | None = None,
           l2: Any = None, leaky_slope: Any = None, elu_alpha: Any = None) -> CaseSpace:
    """The CaseSpace of a door's drawing options (the ranges as 'N' or 'LO-HI' text or ints)."""
    options: dict[str, Any] = {"max_depth": max_depth, "max_width": max_width,
                               "max_batch": max_batch, "kinks": kinks}
    for name, value in (("activations", activations), ("losses", losses),
                        ("reductions", reductions), ("hidden_activations", hidden_activations),
                        ("output_activations", output_activations)):
        if value:
            options[name] = names(value)
    if dtype:
        options["dtypes"] = (dtype,)
    if depth is not None:
        options["min_depth"], options["max_depth"] = _int_range("--depth", depth)
    if width is not None:
        options["min_width"], options["max_width"] = _int_range("--width", width)
    if batch is not None:
        options["min_batch"], options["max_batch"] = _int_range("--batch", batch)
    if widths:
        try:
            options["widths"] = tuple(int(w) for w in names(widths) if w) if isinstance(
                widths, str) else tuple(widths)
        except ValueError:
            raise SettingsError(f"--widths {widths!r} is not a list of integers, e.g. "
                                "4,8,3") from None
    biases = {"any": None, "always": True, "never": False}
    if bias not in biases:
        raise SettingsError(f"--bias is {bias!r}: choose one of any, always, never")
    options["bias"] = biases[bias]
    if space not in SPACES:
        raise SettingsError(f"--space is {space!r}: choose one of {', '.join(SPACES)}")
    options["input_log10_scale"], options["max_output_log10_scale"] = SPACES[space]
    if input_scale is not None:
        options["input_log10_scale"] = _log_range(input_scale)
    if logit_scale is not None:
        power = math.log10(logit_scale) if 0 < logit_scale < math.inf else math.nan
        if not (0 <= power <= MAX_LOGIT_POWER and power == round(power)):
            raise SettingsError(f"--logit-scale is {logit_scale:g}: give a power of 10 from 1 "
                                f"to {10**MAX_LOGIT_POWER:g}, e.g. 1, 10 or 1000")
        options["max_output_log10_scale"] = int(round(power))
    for option, value, example in (("l2", l2, "0,0.01"), ("leaky_slope", leaky_slope, "0.01,0.2"),
                                   ("elu_alpha", elu_alpha, "1,0.5")):
        if value is None:
            continue
        try:
            options[option] = tuple(float(v) for v in names(value)) if isinstance(value, str) \
                else tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise SettingsError(f"--{option.replace('_', '-')} {value!r} is not a list of "
                                f"numbers, e.g. {example}") from None
    return CaseSpace(**options)


# The options that draw the cases: _space's keywords, read from it so they are written once.
DRAWING_OPTIONS = tuple(inspect.signature(_space).parameters)


def _int_range(option: str, value: Any) -> tuple[int, int]:
    """(lo, hi) from 3, '3', '2-4' or (2, 4)."""
    try:
        if isinstance(value, str):
            low, _, high = value.partition("-")
            return int(low), int(high or low)
        if isinstance(value, int):
            return value, value
        low, high = value
        return int(low), int(high)
    except (TypeError, ValueError):
        raise SettingsError(f"{option} {value!r} is not N or LO-HI, e.g. 2 or 1-3") from None


def _log_range(value: Any) -> tuple[float, float]:
    """log10 (lo, hi) from '0.1:10' or (0.1, 10)."""
    try:
        low, high = (float(v) for v in (value.split(":") if isinstance(value, str) else value))
        if not 0 < low <= high:
            raise ValueError
    except ValueError:
        raise SettingsError(f"--input-scale {value!r} is not LO:HI with 0 < LO <= HI, e.g. "
                            "0.1:10") from None
    return math.log10(low), math.log10(high)


def _tolerance(factor: str | Mapping[str, float] | None) -> Tolerance:
    if isinstance(factor, Mapping):
        return Tolerance({k: float(v) for k, v in factor.items()})
    return Tolerance.parse(factor or "")


def names(value: str | Iterable[str]) -> tuple[str, ...]:
    """('a', 'b') from 'a,b' or from a sequence of names."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part.strip())
