"""The Python API: check candidates from a script or a notebook, the way `mybackprop check`
does from the command line, with the same settings (``RunSettings.build``) and the same run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mybackprop.harness.settings import RunSettings


def run_settings(impl: str | Iterable[str] | None = None, **options: Any) -> RunSettings:
    """The settings a check with these options runs with, validated: the options of
    ``mybackprop check`` as keywords (``cases=500, max_depth=2, activations="tanh,relu"``).

    >>> run_settings("mybackprop:vector", cases=50).cases
    50
    """
    return RunSettings.build(impl=impl, **options)


def check(impl: str | Iterable[str] | None = None, **options: Any) -> Any:
    """Check candidates on random cases against the oracles, like ``mybackprop check``; write
    the run folder and return what it left (``.folder``, ``.summary``, ``.failed``).

    ``impl`` is what ``--impl`` takes (``"my_backprop.py:backprop"``, ``"module:function"``,
    a registered name, or several). Raises SettingsError, one line, for a setting, candidate
    or oracle that cannot be used.
    """
    from mybackprop.sweep.check import check as run_check

    return run_check(run_settings(impl, **options))
