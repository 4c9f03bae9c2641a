"""pytest plugin: ``pytest --impl module:attr`` runs mybackprop's property suite on a candidate.

Registered through the ``pytest11`` entry point, so it is active wherever mybackprop is
installed, and does nothing unless ``--impl`` is given. With ``--impl`` and no test paths, the
session collects the packaged suite (mybackprop/suite/); with paths, exactly those (a node of
the suite, or your own tests using the fixtures below). The header names the candidate.
A candidate declared as a layer kit (mybackprop.layer_functions or layer_objects) also gets
the layer checks (suite/test_layers.py): each layer alone, its state, a training trajectory.
``--mybackprop-expect FILE`` lists tests to skip or xfail:

    # lines: skip|xfail  TEST-ID-PATTERN  [reason]      (* and ? are wildcards, [ ] literal)
    skip   test_gradients[softmax-*]      softmax is next week's assignment
    xfail  test_kinks[leaky_relu]         we take leaky_relu'(0) = 0.5

Works with pytest-xdist (``-n auto``): every worker loads the candidate and draws the same
derandomized examples, so verdicts do not depend on the number of workers. The terminal
summary counts the examples checked (over every worker) and the rate per second of the session.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

SUITE = Path(__file__).parent / "suite"
DEFAULT_EXAMPLES = 30
EXAMPLES_KEY = "mybackprop_examples_checked"
# Examples this process has checked (the suite counts each one it hands to the checker).
_checked = {"examples": 0}


def count_example() -> None:
    _checked["examples"] += 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mybackprop", "mybackprop: check a backprop implementation")
    group.addoption("--impl", action="store", metavar="MODULE:ATTR",
                    help="run mybackprop's property suite on this candidate (module:function, "
                         "path/to/file.py:function, or a registered name)")
    group.addoption("--mybackprop-expect", action="store", metavar="FILE",
                    help="file of 'skip|xfail TEST-ID-PATTERN [reason]' lines")
    group.addoption("--mybackprop-examples", action="store", type=int, default=DEFAULT_EXAMPLES,
                    metavar="N", help=f"random cases per property ({DEFAULT_EXAMPLES})")


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("impl", None)
    if not spec:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):  # -n W: one thread per worker (sweep.threads)
        from mybackprop.sweep.threads import hold_to_one_thread

        hold_to_one_thread()
    from mybackprop.harness.contract import CandidateLoadError
    from mybackprop.harness.loading import load_candidate
    from mybackprop.spec.problem import SpecError

    try:
        settings = config._mybackprop_settings = settings_from_options(config)  # type: ignore
        config._mybackprop_candidate = load_candidate(settings.impl[0])  # type: ignore
    except (SpecError, CandidateLoadError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config._mybackprop_expectations = _read_expectations(  # type: ignore[attr-defined]
        config.getoption("mybackprop_expect"))
    if config.args_source != pytest.Config.ArgsSource.ARGS:  # no paths given: the suite
        config.args[:] = [str(SUITE)]
    config._mybackprop_started = time.perf_counter()  # type: ignore[attr-defined]
    config._mybackprop_workers_checked = 0  # type: ignore[attr-defined]


def settings_from_options(config: pytest.Config) -> Any:
    """The run settings of this session's options: the door's one conversion (--impl; the
    rest keep the defaults `mybackprop check` has)."""
    from mybackprop.harness.settings import RunSettings

    return RunSettings.build(impl=[config.getoption("impl")])


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: report the count to the controller
        workeroutput[EXAMPLES_KEY] = _checked["examples"]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    config = node.config
    if hasattr(config, "_mybackprop_workers_checked"):
        config._mybackprop_workers_checked += node.workeroutput.get(EXAMPLES_KEY, 0)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not hasattr(config, "_mybackprop_started"):
        return
    examples = _checked["examples"] + config._mybackprop_workers_checked  # type: ignore
    seconds = time.perf_counter() - config._mybackprop_started  # type: ignore[attr-defined]
    if examples:
        terminalreporter.write_line(f"mybackprop: {examples} examples checked in {seconds:.1f} s "
                                    f"({examples / seconds:.0f} examples/s, start-up included)")


def pytest_report_header(config: pytest.Config) -> list[str]:
    candidate = getattr(config, "_mybackprop_candidate", None)
    if candidate is None:
        return []
    from mybackprop.oracles import versions

    oracles = ", ".join(f"{name} {v}" for name, v in versions().items() if v)
    return [f"mybackprop: candidate {candidate.name} ({candidate.supports.describe()})",
            f"mybackprop: oracles {oracles}; finite differences break ties"]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The suite's layer checks (suite/test_layers.py) are collected for a layer kit only."""
    if collection_path.parent != SUITE or collection_path.name != "test_layers.py":
        return None
    from mybackprop.harness.layer_check import kit_of

    function = getattr(getattr(config, "_mybackprop_candidate", None), "function", None)
    while function is not None and kit_of(function) is None:
        function = getattr(function, "__wrapped__", None)
    return True if function is None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for kind, pattern, reason in getattr(config, "_mybackprop_expectations", []):
        # Test ids hold brackets (test_gradients[relu-mse]): only * and ? are wildcards.
        matches = re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
                             + r"\Z").match
        for item in items:
            if matches(item.name) or matches(item.nodeid):
                mark = pytest.mark.skip if kind == "skip" else pytest.mark.xfail
                item.add_marker(mark(reason=reason or f"listed in {kind} expectations"))


def _read_expectations(path: str | None) -> list[tuple[str, str, str]]:
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise pytest.UsageError(f"--mybackprop-expect {path}: {exc.strerror}") from None
    expectations = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split(maxsplit=2)
        if not fields:
            continue
        if len(fields) < 2 or fields[0] not in ("skip", "xfail"):
            raise pytest.UsageError(f"{path}:{number}: expected 'skip|xfail TEST-ID-PATTERN "
                                    f"[reason]', got {line.strip()!r}")
        expectations.append((fields[0], fields[1], fields[2] if len(fields) > 2 else ""))
    return expectations


@pytest.fixture(scope="session")
def mybackprop_candidate(request: pytest.FixtureRequest) -> Any:
    candidate = getattr(request.config, "_mybackprop_candidate", None)
    if candidate is None:
        pytest.skip("no candidate: run pytest --impl MODULE:ATTR")
    return candidate


@pytest.fixture(scope="session")
def mybackprop_checker() -> Any:
    from mybackprop.harness.runner import Checker
    from mybackprop.oracles import load_oracle
    from mybackprop.oracles.finite_differences import FiniteDifferenceOracle
    from mybackprop.sweep.threads import freeze_loaded

    checker = Checker([load_oracle("torch"), load_oracle("jax")],
                      tie_breaker=FiniteDifferenceOracle())
    freeze_loaded()  # pytest_configure held an xdist worker to one thread before this
    return checker


@pytest.fixture(scope="session")
def mybackprop_examples(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("mybackprop_examples"))
