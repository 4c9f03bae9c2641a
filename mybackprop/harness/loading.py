"""Loading candidates: --impl strings (registered names, MODULE:ATTR, FILE.py:ATTR, DIR/:ATTR)
into Candidates, in this process or (--isolate) in a worker process of their own."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from mybackprop.harness import supervise
from mybackprop.harness.contract import Candidate, CandidateError, CandidateLoadError, Supports
from mybackprop.harness.conventions import adapted
from mybackprop.harness.isolate import DEFAULT_MEMORY_LIMIT, IsolatedRunner
from mybackprop.spec.problem import Problem

ENTRY_POINT_GROUP = "mybackprop.candidates"


def registered_candidates() -> dict[str, str]:
    """Candidates installed packages register in the entry-point group: name -> module:attr."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def registered_versions() -> dict[str, str]:
    """name -> 'package version' of the distribution that registered each candidate."""
    return {ep.name: f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown package"
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_candidate(spec: str) -> Candidate:
    """Load a registered name, ``module:attr`` or ``path/to/file.py:attr``.

    Raises CandidateLoadError, one line naming the problem and the fix, if it cannot.
    """
    registered = registered_candidates()
    if ":" not in spec and spec in registered:
        loaded = load_candidate(registered[spec])
        return Candidate(spec, loaded.function, loaded.supports)
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(registered)) or "none installed"
        raise CandidateLoadError(f"--impl {spec!r} is not MODULE:ATTR, FILE.py:ATTR or a "
                                 f"registered name ({known}): e.g. mymodule:backprop")
    supervise.note(calling=f"the import of {spec}")
    if module_name.endswith(".py"):
        module = _import_file(Path(module_name), spec)
    else:
        module = _import_module(module_name, spec, attr)
    try:
        function = getattr(module, attr)
    except AttributeError:
        raise CandidateLoadError(f"--impl {spec!r}: module {module_name} has no attribute "
                                 f"{attr!r}") from None
    _check_callable(spec, attr, function)
    return _candidate(spec, function)


def candidate_of(function: Any) -> Candidate:
    """A function object (or callable object) as a candidate, run in this process: named by its
    module and name ('backprop' for one defined in a notebook or a script)."""
    qualname = getattr(function, "__qualname__", type(function).__name__)
    module = getattr(function, "__module__", None)
    name = qualname if module in (None, "__main__") else f"{module}:{qualname}"
    _check_callable(name, qualname, function)
    return _candidate(name, function)


def _candidate(name: str, function: Any) -> Candidate:
    """The Candidate of a user's function: its declaration read, and, where it declares
    conventions other than the canonical ones, its calls converted (harness/conventions.py)."""
    supports = Supports.coerce(getattr(function, "supports", None))
    if not supports.conventions.canonical:
        function = adapted(function, supports.conventions, supports.returns_dX,
                           supports.returns_intermediates)
    return Candidate(name, function, supports)


def load_candidates(specs: list[str], isolate: bool = False,
                    memory_limit: int | None = None,
                    hidden: list[Path] | None = None) -> list[Candidate]:
    """Load every --impl; DIR/:ATTR stands for each .py file in DIR (a class's submissions).

    A folder is recognised only when its path has a '/' (class/:backprop, ./class:backprop):
    a bare name is always a module, even where a folder of that name exists (mybackprop:matrix
    from the repository root names the module, not the folder of its sources).

    A named candidate that cannot be loaded is a usage error. In a folder, one student's broken
    file must not stop the others: it becomes a candidate whose every case is an error.
    """
    candidates: list[Candidate] = []
    for spec in specs:
        folder, _, attr = spec.rpartition(":")
        if "/" in folder and Path(folder).is_dir():
            files = sorted(Path(folder).glob("*.py"))
            if not files:
                raise CandidateLoadError(f"--impl {spec!r}: folder {folder!r} holds no .py file")
            candidates += [_load_or_report(f"{file}:{attr}", isolate, memory_limit, hidden)
                           for file in files]
        else:
            candidates.append(_load(spec, isolate, memory_limit, hidden=hidden))
    names = [c.name for c in candidates]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise CandidateLoadError(f"--impl names {twice[0]!r} twice: give each candidate once")
    return candidates


def _load(spec: str, isolate: bool, memory_limit: int | None, alone: bool = True,
          hidden: list[Path] | None = None) -> Candidate:
    """In-process, or (isolate) in a worker process that alone runs the candidate's code.

    Sandboxed, it sees of the user's files only its own: a file of a folder of submissions
    (not `alone`) its file, a single file its folder, a module the folder the run started in;
    `hidden` (the run folder) stays out of view even there."""
    if not isolate:
        return load_candidate(spec)
    target, sep, _ = spec.rpartition(":")
    if sep and target.endswith(".py"):
        path = Path(target).resolve()
        visible = [path if not alone else path.parent]
    else:
        visible = [Path.cwd()]
    runner = IsolatedRunner(spec, memory_limit or DEFAULT_MEMORY_LIMIT, visible=visible,
                            hidden=[p.resolve() for p in hidden or []])

    def in_worker(problem: Problem) -> Any:  # the Checker calls runner.run, never this
        raise CandidateError("isolated candidates run in their worker process")

    return Candidate(runner.name, in_worker, runner.supports, runner)


def _load_or_report(spec: str, isolate: bool, memory_limit: int | None,
                    hidden: list[Path] | None = None) -> Candidate:
    try:
        return _load(spec, isolate, memory_limit, alone=False, hidden=hidden)
    except CandidateLoadError as exc:
        message = str(exc)

        def unloadable(problem: Problem) -> Any:
            raise CandidateError(f"could not be loaded: {message}")

        return Candidate(spec, unloadable)


CONTRACT = "a candidate is called as candidate(problem) and returns {'loss', 'dW', 'db', 'dX'}"


def _check_callable(spec: str, attr: str, function: Any) -> None:
    """A usage error before the first case for what cannot be a candidate: not callable, a
    class, or a callable that cannot take one argument."""
    if inspect.isclass(function):
        raise CandidateLoadError(f"--impl {spec!r} is a class: {CONTRACT}; point at a function, "
                                 "or at an instance with __call__(self, problem)")
    if not callable(function):
        raise CandidateLoadError(f"--impl {spec!r} is a {type(function).__name__}, not "
                                 f"callable: {CONTRACT}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: the first case will tell
        return
    try:
        signature.bind(None)
    except TypeError:
        name = getattr(function, "__name__", attr)
        raise CandidateLoadError(f"--impl {spec!r}: {name}{signature} cannot be called with one "
                                 f"argument: {CONTRACT}") from None


def _import_module(module_name: str, spec: str, attr: str) -> Any:
    """Import `module_name` as ``python -m`` would: the current folder comes first."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except SystemExit as exc:  # not the harness's exit: the candidate cannot be loaded
        raise CandidateLoadError(f"--impl {spec!r}: importing {module_name} called "
                                 f"sys.exit({exc.code!r})") from None
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name
                                    or module_name.startswith(exc.name + ".")):
            raise CandidateLoadError(f"--impl {spec!r}: importing {module_name} raised "
                                     f"ModuleNotFoundError: {exc}") from None
        hint = (f"; for the folder of candidates write {module_name}/:{attr}"
                if Path(module_name).is_dir() else "")
        raise CandidateLoadError(f"--impl {spec!r}: no module named {exc.name!r} in {here} or "
                                 f"the installed packages: run from the folder that holds "
                                 f"{exc.name.split('.')[0]}.py, or give its path as "
                                 f"FILE.py:{attr}{hint}") from None
    except Exception as exc:  # the candidate's own import failed: say so, in one line
        raise CandidateLoadError(f"--impl {spec!r}: importing {module_name} raised "
                                 f"{type(exc).__name__}: {exc}") from None


def _import_file(path: Path, spec: str) -> Any:
    """Run the file as a module of its own; its folder comes first on sys.path, as for
    ``python path/to/file.py``, so that it imports the modules beside it."""
    if not path.is_file():
        raise CandidateLoadError(f"--impl {spec!r}: file {str(path)!r} does not exist")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"_mybackprop_candidate_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as exc:  # not the harness's exit: the candidate cannot be loaded
        raise CandidateLoadError(f"--impl {spec!r}: running {path} called "
                                 f"sys.exit({exc.code!r})") from None
    except Exception as exc:
        raise CandidateLoadError(f"--impl {spec!r}: running {path} raised "
                                 f"{type(exc).__name__}: {exc}") from None
    return module


