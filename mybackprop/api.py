"""The Python API: check candidates from a script or a notebook, the way `mybackprop check`
does from the command line, with the same settings (``RunSettings.build``) and the same run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mybackprop.harness.contract import CandidateLoadError
from mybackprop.harness.settings import RunSettings, SettingsError


def run_settings(impl: str | Iterable[str] | None = None, **options: Any) -> RunSettings:
    """The settings a check with these options runs with, validated: the options of
    ``mybackprop check`` as keywords (``cases=500, max_depth=2, activations="tanh,relu"``).

    >>> run_settings("mybackprop:vector", cases=50).cases
    50
    """
    return RunSettings.build(impl=impl, **options)


def check(impl: Any = None, **options: Any) -> Any:
    """Check candidates on random cases against the oracles, like ``mybackprop check``; write
    the run folder and return what it left: ``.status``, ``.verdicts``, ``.findings`` (each
    kind of mistake with its count, first case and smallest case), ``.folder``,
    ``.summary``. In Jupyter the result shows as a compact report.

    ``impl`` is a function (``mybackprop.check(backprop, cases=200)``, run in this process) or
    what ``--impl`` takes (``"my_backprop.py:backprop"``, ``"module:function"``, a registered
    name, or several). Raises SettingsError, one line, for a setting, candidate or oracle that
    cannot be used.
    """
    from mybackprop.harness.loading import candidate_of
    from mybackprop.sweep.check import check as run_check

    if impl is None or isinstance(impl, str) or not callable(impl):
        return run_check(run_settings(impl, **options))
    try:
        candidate = candidate_of(impl)
    except CandidateLoadError as exc:
        raise SettingsError(str(exc)) from None
    settings = run_settings(candidate.name, **options)
    if settings.workers > 1 or settings.isolate or settings.executor != "process":
        raise SettingsError(f"{candidate.name} is a function object, which runs in this process:"
                            " give it as 'module:function' or 'file.py:function' for workers, "
                            "isolate or Dask")
    return run_check(settings, candidates=[candidate])
