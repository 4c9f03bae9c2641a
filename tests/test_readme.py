"""The front door is true: the README's commands run as written and print what it shows."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def normalized(lines: list[str], folder: str | None = None) -> list[str]:
    """Lines without what differs run to run: seconds, and the run folder's name."""
    lines = [re.sub(r"; \d+\.\d s$", "", line) for line in lines]
    return lines if folder is None else [line.replace(folder, "reports/...") for line in lines]


def test_the_demo_runs_and_writes_its_report(tmp_path):
    result = subprocess.run(["./scripts/demo.sh", "--cases", "20", "--out", str(tmp_path / "run")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: 20 checked cases pass" in result.stdout
    assert (tmp_path / "run" / "report.html").is_file()


def test_the_readme_failure_example_prints_what_the_readme_shows(tmp_path):
    block = re.search(r"```\n\$ (mybackprop check --impl mybackprop\.zoo:.*?)\n(.*?)```", README,
                      re.S)
    command, shown = block.group(1), block.group(2).splitlines()
    args = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "mybackprop", *args, "--out",
                             str(tmp_path / "run")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    printed = normalized(result.stdout.splitlines()[1:], str(tmp_path / "run"))
    assert normalized(shown) == printed[:len(shown)]


def test_the_docs_command_builds_the_site():
    result = subprocess.run(["./scripts/docs.sh"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ROOT / "site" / "reference" / "cli" / "index.html").is_file()
