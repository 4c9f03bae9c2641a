"""The docs cannot drift from the code: the generated reference pages are what the code gives
now, the site builds offline, and the README stays a short front door."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "docs.py")
docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)


@pytest.mark.parametrize("page", sorted(docs.PAGES))
def test_generated_pages_are_up_to_date(page):
    assert (ROOT / page).read_text() == docs.PAGES[page](), (
        f"{page} is out of date: run .venv/bin/python scripts/docs.py")


def test_a_table_entry_without_its_page_is_caught(monkeypatch):
    from mybackprop.spec import table

    assert docs.stale() == []
    # A new activation in the table, and the page not regenerated: the check names the page.
    new = dataclasses.replace(table.ACTIVATION_TABLE[1], name="relu6", formula="min(max(z, 0), 6)")
    monkeypatch.setattr(table, "ACTIVATION_TABLE", (*table.ACTIVATION_TABLE, new))
    assert docs.stale() == ["docs/reference/table.md"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr  # the real table, untouched, is up to date


def test_a_new_option_without_its_page_is_caught(monkeypatch):
    from mybackprop import cli

    build = cli.build_parser

    def with_new_option():
        parser = build()
        commands = next(a for a in parser._actions if a.dest == "command")
        commands.choices["check"].add_argument("--frobnicate", help="a new option")
        return parser

    monkeypatch.setattr(cli, "build_parser", with_new_option)
    assert docs.stale() == ["docs/reference/cli.md"]


def test_the_site_builds_offline(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict",
                             "--site-dir", str(tmp_path / "site")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "site" / "reference" / "table" / "index.html").read_text()
    assert "leaky_relu" in page and "batch_mean" in page
    # It reads offline too: no script or style sheet from elsewhere.
    for built in (tmp_path / "site").rglob("*.html"):
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css)"', built.read_text()), built


def test_the_readme_is_a_short_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for command in ("./scripts/demo.sh", "./scripts/test.sh", "./scripts/docs.sh"):
        assert command in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci  # CI runs the README's test command
