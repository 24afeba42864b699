"""Presenting an `EvaluationResult`: a terminal table, Markdown and JSON reports, and one PNG bar
chart per metric (plus one for time per query), comparing the stages."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .evaluation import METRIC_LABELS, METRICS, EvaluationResult


def print_table(result: EvaluationResult, console: Console) -> None:
    """The metrics and milliseconds per query of each stage, as a rich table."""
    table = Table(title=f"{result.dataset} ({result.split}, {result.queries} queries)")
    table.add_column("stage")
    for name in METRICS:
        table.add_column(METRIC_LABELS[name], justify="right")
    table.add_column("ms / query", justify="right")
    for stage, values in result.metrics.items():
        cells = [f"{values[name]:.4f}" for name in METRICS]
        table.add_row(stage, *cells, f"{1000 * result.seconds_per_query[stage]:.1f}")
    console.print(table)


def markdown(result: EvaluationResult) -> str:
    """The report as Markdown: settings, then one row per stage."""
    header = ["stage", *(METRIC_LABELS[name] for name in METRICS), "ms / query"]
    lines = [
        f"# Retrieval evaluation: {result.dataset} ({result.split})",
        "",
        f"{result.queries} judged queries; {result.depth} documents retrieved per stage; "
        f"the best {result.rerank_candidates} hybrid candidates reranked.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for stage, values in result.metrics.items():
        cells = [f"{values[name]:.4f}" for name in METRICS]
        lines.append(
            f"| {stage} | " + " | ".join(cells) + f" | {1000 * result.seconds_per_query[stage]:.1f} |"
        )
    if result.warnings:
        lines += ["", "Warnings:", ""]
        lines += [f"- {warning}" for warning in result.warnings]
    lines += ["", "Settings:", ""]
    lines += [f"- {name}: `{value}`" for name, value in result.settings.items()]
    return "\n".join(lines) + "\n"


def write_reports(result: EvaluationResult, output_dir: Path) -> list[Path]:
    """Write ``report.md``, ``report.json`` (with every query's ranking) and the charts; returns
    the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report_md = output_dir / "report.md"
    report_md.write_text(markdown(result), encoding="utf-8")
    report_json = output_dir / "report.json"
    report_json.write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    return [report_md, report_json, *write_charts(result, output_dir)]


def write_charts(result: EvaluationResult, output_dir: Path) -> list[Path]:
    """One bar chart per metric, bars per stage, and one of milliseconds per query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(result.metrics)
    series = {METRIC_LABELS[name]: [result.metrics[s][name] for s in stages] for name in METRICS}
    series["ms per query"] = [1000 * result.seconds_per_query[s] for s in stages]
    paths = []
    for label, values in series.items():
        figure, axes = plt.subplots(figsize=(5, 3.2))
        try:
            bars = axes.bar(stages, values, color="#4c72b0")
            axes.bar_label(bars, fmt="%.3f" if label != "ms per query" else "%.1f")
            axes.set_title(f"{label} — {result.dataset}")
            if label != "ms per query":
                axes.set_ylim(0, 1.05)
            figure.tight_layout()
            path = output_dir / f"{_file_name(label)}.png"
            figure.savefig(path, dpi=120)
            paths.append(path)
        finally:
            plt.close(figure)
    return paths


def _file_name(label: str) -> str:
    return label.lower().replace("@", "-at-").replace(" ", "-")
