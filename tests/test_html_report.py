"""mybackprop report: a self-contained HTML page, looked at in a real headless Chromium."""

from __future__ import annotations

import pytest
from helpers import in_chromium, needs_chromium, share_of
from test_cli import run

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A run with a correct candidate, a buggy one, and one whose name and error message are
    HTML; rendered again from cases.jsonl alone by `mybackprop report`."""
    folder = tmp_path_factory.mktemp("html")
    hostile = folder / f"{HOSTILE_NAME}.py"
    hostile.write_text("def backprop(problem):\n"
                       f"    raise ValueError({HOSTILE_MESSAGE!r})\n")
    out = folder / "run"
    result = run("check", "--impl", "mybackprop:matrix", "--impl", "mybackprop.zoo:sign_flipped",
                 "--impl", f"{hostile}:backprop", "--cases", "12", "--seed", "4", "--no-shrink",
                 "--quiet", "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    (out / "report.html").unlink(missing_ok=True)
    rendered = run("report", str(out))
    assert rendered.returncode == 0, rendered.stderr
    return out / "report.html"


def test_the_page_is_self_contained_and_escapes_what_candidates_wrote(report):
    html = report.read_text()
    assert html.count("<svg") >= 5  # 3 heatmaps, errors, error against size, worst failures
    for fetch in ("src=\"http", "href=\"http", "<link", "<img", "@import"):
        assert fetch not in html, fetch
    assert HOSTILE_MESSAGE not in html and HOSTILE_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "wrong pattern" not in html and "constant_factor" in html  # sign_flipped diagnosed
    # Errors (the hostile candidate raised) have their own section, apart from the failures.
    failures, errors = html.split('id="failures"')[1], html.split('id="errors"')[1]
    assert "&lt;script&gt;" not in failures.split("</table>")[0]
    assert "raised ValueError: &lt;script&gt;alert(1)&lt;/script&gt;" in errors


def test_the_heatmap_shows_only_what_was_drawn(tmp_path):
    out = tmp_path / "run"
    result = run("check", "--impl", "mybackprop.zoo:sign_flipped", "--activations", "tanh,relu",
                 "--losses", "mse", "--cases", "10", "--no-shrink", "--quiet", "--out", str(out))
    assert result.returncode == 1, result.stderr
    heatmap = (out / "report.html").read_text().split("<svg")[1]
    assert "tanh" in heatmap and "relu" in heatmap and "mse" in heatmap
    for never_drawn in ("softplus", "softmax", "huber", "sigmoid"):
        assert never_drawn not in heatmap


def test_report_of_a_folder_without_cases_is_one_line_and_exit_2(tmp_path):
    result = run("report", str(tmp_path))
    assert result.returncode == 2
    assert "has no cases.jsonl: give a run folder" in result.stderr


@needs_chromium
def test_chromium_loads_the_page_and_shows_the_plots(report, tmp_path):
    # tall enough for a heatmap per candidate over the whole table
    dom, pixels = in_chromium(report, tmp_path / "profile", 5000)
    assert "Failures (" in dom and dom.count("<svg") >= 5
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # still text after the scripts ran
    # The plots' own colours are on screen: the red of failing bars and the heatmap's cells.
    red, blue = share_of(pixels, 0xc44e52), share_of(pixels, 0x4c72b0)
    assert red > 500 and blue > 500, (red, blue)
