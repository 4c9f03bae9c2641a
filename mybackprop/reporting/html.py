"""`mybackprop report RUN_DIR`: report.html (self-contained), report.md and summary.json, from
the run's cases.jsonl alone.

The page is a Jinja2 template with autoescaping on (a candidate named <script> shows as text);
the plots are matplotlib figures inlined as SVG (no network, no files beside the page): a verdict
heatmap per candidate (activation x loss), the distribution of errors in units of the tolerance,
error against depth, width and batch size, and per-tensor errors of the worst failures. The
failure table sorts by any column (a few lines of inline script).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mybackprop.harness.runner import FAILING as BAD
from mybackprop.reporting.records import (
    CASES_FILE,
    CONSENSUS,
    MARKDOWN_FILE,
    SUMMARY_FILE,
    candidate_notes,
    read_cases,
    run_file,
    write_summary,
)

HTML_FILE = "report.html"
LAYERS_FILE = "layers.json"  # mybackprop layers --out: the verdicts and trajectories as data
WORST_SHOWN = 8  # failures with per-tensor error bars


def render_run(folder: Path) -> dict[str, Path]:
    """Write report.html, report.md and summary.json for the run in `folder`."""
    if not (folder / CASES_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {CASES_FILE}: give a run folder written by "
                                "mybackprop check")
    records = read_cases(folder)
    run = _run_settings(folder, records)
    write_html(folder, write_summary(folder, run, records), records)
    return {name: folder / name for name in (HTML_FILE, MARKDOWN_FILE, SUMMARY_FILE)}


def write_html(folder: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """report.html, from a summary and the records it was made from."""
    (folder / HTML_FILE).write_text(render_html(summary, records), encoding="utf-8")


def _run_settings(folder: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's settings: from summary.json when the run finished, else from the records."""
    try:
        return json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))["run"]
    except (OSError, ValueError, KeyError):
        first = records[0] if records else {}
        return {"candidates": sorted({r["candidate"] for r in records}) or ["?"],
                "seed": first.get("seed", 0), "cases": len({r["case"] for r in records}) or 1,
                "space": {}, "oracles": first.get("oracles", {}), "tolerance_factor": {},
                "started": "unknown (the run did not finish; rendered from cases.jsonl)"}


def _relative_script(path: Any) -> str:
    """A repro script's path as the run writes it, or nothing: a link in the report goes only
    to a file of the run folder, whatever a record says."""
    return path if run_file(path) else ""


def render_html(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mybackprop.reporting", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    # Architectures, names and paths have no spaces: let them break after - / : . (a
    # zero-width space), so that a long one does not squeeze the diagnosis beside it.
    environment.filters["breakable"] = lambda text: re.sub(r"([-/:.])", "\\1\u200b", str(text))
    # Under --repro first, a kind's first case has its script though its record does not say so.
    scripts = {(f["candidate"], f["example"]["case"]): f["example"]["repro"]
               for f in summary["findings"]}
    failures = [_failure_row(r, scripts.get((r["candidate"], r["case"]), ""))
                for r in records if r["verdict"] == "fail"]
    failures.sort(key=lambda row: -(row["err"] if row["err"] is not None else math.inf))
    # Errors (the candidate raised, hung, returned the wrong shape...) are refusals of the
    # contract, not wrong numbers: grouped by kind, apart from the failures.
    errors = [f for f in summary["findings"] if f["verdict"] == "error"]
    candidates = summary["run"]["candidates"]
    checked = {name: c["checked"] for name, c in summary["status"]["by_candidate"].items()}
    return environment.get_template("report.html.j2").render(
        summary=summary, run=summary["run"], candidates=candidates, failures=failures,
        errors=errors, status=summary["status"],
        notes=[(name, note) for name, c in summary["status"]["by_candidate"].items()
               for note in candidate_notes(c)],
        heatmaps={c: _svg(_heatmap(records, c)) if checked.get(c) else "" for c in candidates},
        distribution=_svg(_distribution(records)),
        against_size=_svg(_against_size(records)),
        worst_bars=_svg(_worst_bars(records)) if any(r["verdict"] in BAD and r.get(
            "comparisons") for r in records) else "",
        oracles=summary["run"].get("oracles", {}))


def _failure_row(record: dict[str, Any], script: str = "") -> dict[str, Any]:
    diagnosis = record.get("diagnosis") or {}
    failing = [c["name"] for c in record.get("comparisons", []) if not c.get("passed", True)]
    return {"case": record["case"], "candidate": record["candidate"],
            "verdict": record["verdict"], "architecture": record["architecture"],
            "batch_size": record["batch_size"], "dtype": record["dtype"],
            "err": record.get("max_err_over_tol"),
            "pattern": diagnosis.get("pattern", ""),
            "summary": diagnosis.get("summary") or record.get("reason", ""),
            "tensors": ", ".join(diagnosis.get("parameters") or failing),
            "repro": _relative_script(record.get("repro") or script)}


def _svg(figure: Any) -> str:
    """The figure as an inline <svg> element (text, so the page needs nothing else)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported only when a page is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, and escaped by us
    return plt


def _figure(width: float, height: float, **grid: Any) -> Any:
    return _pyplot().subplots(figsize=(width, height), **grid)


def _heatmap(records: list[dict[str, Any]], candidate: str) -> Any:
    """Share of cases not passing, per activation (rows) x loss (columns), for one candidate."""
    from mybackprop.spec.table import ACTIVATIONS, LOSSES

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        if r["candidate"] != candidate or r["verdict"] == "skipped":
            continue
        for activation in r["activations"]:
            cell = counts[(activation, r["loss"])]
            cell[0] += r["verdict"] in BAD
            cell[1] += 1
    # Only what was drawn, in the table's order: rows of activations no case used say nothing.
    rows = [a for a in ACTIVATIONS if any(key[0] == a for key in counts)]
    columns = [loss for loss in LOSSES if any(key[1] == loss for key in counts)]
    share = np.full((len(rows), len(columns)), np.nan)
    for (activation, loss), (bad, total) in counts.items():
        share[rows.index(activation), columns.index(loss)] = bad / total
    figure, axes = _figure(1.6 + 1.5 * len(columns), 1.0 + 0.42 * len(rows))
    image = axes.imshow(share, cmap="RdYlGn_r", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(columns)), [c.replace("_", " ") for c in columns], rotation=20,
                    ha="right")
    axes.set_yticks(range(len(rows)), rows)
    for (i, j), value in np.ndenumerate(share):
        if not np.isnan(value):
            bad, total = counts[(rows[i], columns[j])]
            # White on the map's dark ends (deep green, deep red), black in its light middle.
            colour = "white" if value < 0.2 or value > 0.8 else "black"
            axes.text(j, i, f"{bad}/{total}", ha="center", va="center", fontsize=9,
                      fontweight="bold", color=colour)
    axes.set_title("cases failing or in error, by activation and loss")
    figure.colorbar(image, ax=axes, label="share not passing")
    return figure


def _ratios(records: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    kept = [r for r in records if isinstance(r.get("max_err_over_tol"), int | float)
            and not math.isnan(r["max_err_over_tol"]) and r["verdict"] in CONSENSUS]
    # an error past float range (infinite ratio) is drawn at the largest finite one
    values = np.array([min(max(r["max_err_over_tol"], 1e-12), np.finfo(float).max)
                       for r in kept])
    return values, kept


def _distribution(records: list[dict[str, Any]]) -> Any:
    values, _ = _ratios(records)
    figure, axes = _figure(7.5, 3.2)
    if values.size:
        bins = np.linspace(math.floor(np.log10(values.min())),
                           math.ceil(np.log10(values.max())) + 1e-9, 40)
        axes.hist(np.log10(values), bins=bins, color="#4c72b0")
    axes.axvline(0, color="#c44e52", linestyle="--", label="tolerance (1x)")
    axes.set_xlabel("log10(worst error / tolerance) per case")
    axes.set_ylabel("cases")
    axes.set_title("errors in units of the tolerance (right of the line fails)")
    axes.legend()
    return figure


def _against_size(records: list[dict[str, Any]]) -> Any:
    values, kept = _ratios(records)
    figure, axes = _figure(10, 3.2, ncols=3, sharey=True)
    for ax, key, label in zip(axes, ("depth", "max_width", "batch_size"),
                              ("depth", "widest layer", "batch size N"), strict=True):
        x = np.array([r[key] for r in kept])
        colours = ["#c44e52" if r["verdict"] in BAD else "#4c72b0" for r in kept]
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, x.size) if key == "depth" else 0
        ax.scatter(x + jitter, np.log10(values), s=8, c=colours, alpha=0.6)
        ax.axhline(0, color="#c44e52", linestyle="--")
        ax.set_xlabel(label)
    axes[0].set_ylabel("log10(error / tolerance)")
    figure.suptitle("error against network size (red: fail or error)")
    return figure


def _worst_bars(records: list[dict[str, Any]]) -> Any:
    """Per-tensor error over tolerance for the worst failures: where in the network it breaks."""
    worst = sorted((r for r in records if r["verdict"] == "fail"),
                   key=lambda r: -(r.get("max_err_over_tol") or 0))[:WORST_SHOWN]
    figure, axes = _figure(10, 0.6 + 0.45 * max(1, sum(len(r["comparisons"]) for r in worst)))
    labels, values, colours = [], [], []
    for r in worst:
        for c in r["comparisons"]:
            labels.append(f"case {r['case']} {c['name']}")
            values.append(max(c["err_over_tol"], 1e-12))
            colours.append("#c44e52" if not c["passed"] else "#4c72b0")
    y = np.arange(len(labels))
    axes.barh(y, np.log10(values), color=colours)
    axes.set_yticks(y, labels, fontsize=7)
    axes.invert_yaxis()
    axes.axvline(0, color="black", linestyle="--")
    axes.set_xlabel("log10(error / tolerance) per tensor (red: out of tolerance)")
    axes.set_title(f"per-tensor errors of the {len(worst)} worst failures")
    return figure


def inline_html(summary: dict[str, Any], folder: Path) -> str:
    """A compact report for a notebook: the headline, the verdicts by candidate, and each kind
    of mistake once with its count, first case and smallest case; report.html has the rest."""
    from html import escape

    status = summary["status"]
    colour = "#d4edda" if status["status"] == "pass" else "#f8d7da"
    cell = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
    worst = summary["max_err_over_tol"]
    html_file = folder / HTML_FILE
    parts = [f'<div class="mybackprop"><p><b style="background:{colour};padding:2px 6px">'
             f"{escape(status['headline'])}</b></p>",
             f"<p>{summary['cases']} cases, seed {summary['run']['seed']}; worst error "
             + ("n/a" if worst is None else f"{worst:.3g}&times; tolerance")
             + (f'; <a href="{escape(str(html_file))}">report.html</a>'
                if html_file.exists() else "")
             + f" in <code>{escape(str(folder))}</code></p>",
             "<table><tr>" + "".join(f'<th style="{cell}">{escape(h)}</th>'
                                     for h in ("candidate", *summary["verdicts"])) + "</tr>"]
    for name, counts in summary["by_candidate"].items():
        parts.append("<tr>" + "".join(f'<td style="{cell}">{escape(str(v))}</td>'
                                      for v in (name, *counts.values())) + "</tr>")
    parts.append("</table>")
    if summary["findings"]:
        parts.append('<table style="margin-top:1em"><tr>' + "".join(
            f'<th style="{cell}">{h}</th>' for h in ("candidate", "cases", "kind", "what",
                                                   "first case", "smallest case")) + "</tr>")
        for finding in summary["findings"]:
            example, smallest = finding["example"], finding["smallest"]
            first = (f"case {example['case']}: {example['architecture']}, "
                     f"N={example['batch_size']}, {example['dtype']}")
            small = (f"{smallest['architecture']}, N={smallest['batch_size']} "
                     f"({smallest['parameters']} parameters)" if smallest else "")
            parts.append("<tr>" + "".join(
                f'<td style="{cell}">{escape(str(v))}</td>'
                for v in (finding["candidate"], f"{finding['count']} {finding['verdict']}",
                          finding["kind"], finding["summary"], first, small)) + "</tr>")
        parts.append("</table>")
    return "\n".join([*parts, "</div>"])


# -- mybackprop layers --out: one page of the layer checks and the trajectories ----------------

def write_layers_html(folder: Path, impl: str, described: str, results: list[Any],
                      trajectories: list[Any], headline: str, no_trajectory: str) -> Path:
    """report.html for `mybackprop layers --out`: every layer's verdict with its diagnosis,
    and each trajectory's loss and parameter distance per step, plotted; layers.json holds
    the same as data."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mybackprop.reporting", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    passed = all(r.verdict == "pass" for r in results) and all(
        t.verdict == "pass" for t in trajectories)
    page = environment.get_template("layers.html.j2").render(
        impl=impl, described=described, results=results, trajectories=trajectories,
        plots=[_svg(_trajectory(t)) for t in trajectories], headline=headline, passed=passed,
        no_trajectory=no_trajectory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HTML_FILE
    path.write_text(page)
    # the same, as data: every verdict, and each trajectory's loss and distance per step
    (folder / LAYERS_FILE).write_text(json.dumps({
        "impl": impl, "settings": described, "headline": headline,
        "layers": [{"layer": r.layer, "functions": r.names, "verdict": r.verdict,
                    "cases": r.cases, "failed": r.failed, "errors": r.errors,
                    "problem": r.problem, "diagnosis": r.diagnosis, "notes": r.notes}
                   for r in results],
        "trajectories": [{"optimizer": t.optimizer, "network": t.network, "dtype": t.dtype,
                          "verdict": t.verdict, "first_wrong_step": t.first_wrong,
                          "said": t.said, "loss": t.losses,
                          "reference_loss": t.reference_losses,
                          "distance_from_torch": t.distances,
                          "optax_distance_from_torch": t.optax_distances}
                         for t in trajectories]}, indent=1))
    return path


def _trajectory(t: Any) -> Any:
    """Loss per step (the kit's and PyTorch's) and the distance of the parameters from
    PyTorch's (the kit's and optax's), log scale; the first wrong step marked."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    steps = np.arange(1, len(t.losses) + 1)
    left.plot(steps, t.reference_losses, "o-", color="#888", label="PyTorch SGD")
    left.plot(steps, t.losses, "x--", color="#c0392b", label="your layers")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.legend(fontsize=8)
    floor = 1e-18  # a distance of exactly 0 drawn at the floor of the log axis
    right.semilogy(steps, np.maximum(t.distances, floor), "x--", color="#c0392b",
                   label="your layers")
    right.semilogy(steps, np.maximum(t.optax_distances, floor), "o-", color="#888",
                   label="optax.sgd")
    right.set_xlabel("step")
    right.set_ylabel("parameters: distance from PyTorch's")
    right.legend(fontsize=8)
    if t.first_wrong is not None:
        for axis in (left, right):
            axis.axvline(t.first_wrong, color="#c0392b", alpha=0.3)
    figure.tight_layout()
    return figure

