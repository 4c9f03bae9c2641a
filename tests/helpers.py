"""The one comparison helper every test uses: run a candidate on a problem, demand a verdict."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mybackprop as mb
from mybackprop.harness.contract import Candidate, Supports, to_gradients
from mybackprop.harness.runner import Checker, Outcome
from mybackprop.judging.compare import TensorComparison, compare
from mybackprop.judging.tolerance import Tolerance, gradient_scales
from mybackprop.spec.problem import Problem
from mybackprop.spec.table import KINKED_LOSSES

LEVELS = {"element": mb.element, "vector": mb.vector, "matrix": mb.matrix}
# The packaged suite's tests, as parametrised: gradients (activation x loss), mixed networks
# (loss), kinks (kinked activation, kinked loss), large logits and the smallest network (dtype).
SUITE_TESTS = (len(mb.ACTIVATIONS) * len(mb.LOSSES) + len(mb.LOSSES) + len(mb.KINKED_ACTIVATIONS)
               + len(KINKED_LOSSES) + 2 * len(mb.DTYPES))


def as_candidate(function: Any, name: str | None = None, **supports: Any) -> Candidate:
    return Candidate(name or getattr(function, "__name__", "candidate"), function,
                     Supports.coerce(supports or getattr(function, "supports", None)))


def check(function: Any, problem: Problem, oracles: list[Any], **supports: Any) -> Outcome:
    return Checker(oracles).check(as_candidate(function, **supports), problem)


def assert_verdict(outcome: Outcome, verdict: str) -> None:
    assert outcome.verdict == verdict, f"expected {verdict}, got {outcome.message()}"


def oracle_as_candidate(oracle: Any) -> Candidate:
    """An oracle in the candidate's seat: its float64 answer as a contract dict."""
    def answer(problem: Problem) -> dict[str, Any]:
        g = oracle.gradients(problem)
        return {"loss": g.loss, "dW": g.dW, "db": g.db, "dX": g.dX}
    return as_candidate(answer, name=f"oracle:{oracle.name}", dtypes={"float64"},
                        **mb.READS_PROBLEM)  # it reads the penalty and the parameters


def level_disagreements(function: Any, reference: Any, problem: Problem) -> list[TensorComparison]:
    """Tensors where two implementations in the same dtype differ by more than rounding."""
    answers = [to_gradients(f(problem.copy()), problem, Supports()) for f in (function, reference)]
    dtype = problem.dtype.name
    allowed = Tolerance().allowed(gradient_scales(problem), dtype, reference_dtype=dtype)
    return [c for c in compare(*answers, allowed) if not c.passed]


# -- a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium; "
    "scripts/test.sh installs it where it can)")


def in_chromium(page: Path, profile: Path, height: int) -> tuple[str, np.ndarray]:
    """The page's DOM after its scripts ran, and the RGB pixels of a 1300 x `height`
    screenshot, from real headless Chromium (a profile folder of its own)."""
    import matplotlib.image

    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    shot = profile.parent / f"{profile.name}-shot.png"
    subprocess.run([CHROMIUM, *flags, f"--window-size=1300,{height}", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120)
    return dom, matplotlib.image.imread(str(shot))[..., :3]


def share_of(pixels: np.ndarray, colour: int) -> int:
    """How many pixels are (within 5%) the colour 0xRRGGBB."""
    rgb = np.array([(colour >> 16) & 255, (colour >> 8) & 255, colour & 255]) / 255
    return int(np.all(np.abs(pixels - rgb) < 0.05, axis=-1).sum())

