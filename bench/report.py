"""Turns the runs into figures: medians and ratios, the terminal table, the chart and RESULTS.md."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .scenarios import Scenario

BENCH_DIR = Path(__file__).resolve().parent
MEDIAN_FIELDS = (
    "throughput",
    "cpu_us_per_msg",
    "api_calls_per_msg",
    "wall_s",
    "backend_cpu_s",
    "p50_ms",
    "p99_ms",
    "drain_s",
    "longest_left_s",
    "overhead_s",
    "spans",
    "spans_received",
    "process_spans_received",
    "handled",
    "gc_collections",
)
COLUMNS = ("scenario", "msgs", "msg/s", "x floor", "CPU us/msg", "x floor", "calls/msg", "RSS MB", "notes")


def summarise(scenarios: list[Scenario], runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per scenario: the median of each figure over its good runs, peak RSS over all, ratios to its baseline."""
    summary = {s.name: _row(s, runs.get(s.name, [])) for s in scenarios}
    for scenario in scenarios:
        row, base = summary[scenario.name], summary.get(scenario.baseline)
        if base and "cpu_us_per_msg" in row and base.get("cpu_us_per_msg"):
            row["cpu_ratio"] = round(row["cpu_us_per_msg"] / base["cpu_us_per_msg"], 3)
            row["throughput_ratio"] = round(row["throughput"] / base["throughput"], 3)
        ideal = scenario.ideal_throughput
        if ideal and "throughput" in row:
            row["ideal_throughput"] = ideal
            row["efficiency"] = round(row["throughput"] / ideal, 4)
    return summary


def _row(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"label": scenario.label, "group": scenario.group, "baseline": scenario.baseline}
    good = [r for r in runs if "error" not in r and "skipped" not in r and r.get("completed", True)]
    row["runs"] = len(good)
    if not good:
        reasons = [r.get("skipped") or r.get("error") or "did not complete in time" for r in runs] or ["not run"]
        row["skipped" if any("skipped" in r for r in runs) else "error"] = reasons[0]
        return row
    row["messages"] = good[0].get("messages")
    for field in MEDIAN_FIELDS:
        values = [r[field] for r in good if isinstance(r.get(field), int | float)]
        if values:
            row[field] = round(statistics.median(values), 4)
    cpu = [r["cpu_us_per_msg"] for r in good if r.get("cpu_us_per_msg")]
    if len(cpu) > 1:
        row["cpu_us_per_msg_range"] = [min(cpu), max(cpu)]
    rss = [r["rss_peak_mb"] for r in good if r.get("rss_peak_mb")]
    if rss:
        row["rss_peak_mb"] = max(rss)
    if any("process_spans_received" in r for r in good):
        row["process_spans_received_all"] = [r.get("process_spans_received") for r in good]
        row["handled_all"] = [r.get("handled") for r in good]
    for field in ("api_calls", "summary", "statuses", "handlers_started", "queue_after", "telemetry", "span_export"):
        if field in good[-1]:
            row[field] = good[-1][field]
    return row


def _notes(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"skipped: {row['skipped']}"
    if "error" in row:
        return f"error: {str(row['error'])[:100]}"
    notes = []
    if "efficiency" in row:
        notes.append(f"{row['efficiency']:.1%} of ideal {row['ideal_throughput']:.0f}/s")
    if "p50_ms" in row:
        notes.append(f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms (service CPU and RSS)")
    if "drain_s" in row:
        notes.append(f"drained in {row['drain_s']:.2f} s; longest handler had {row['longest_left_s']:.2f} s left")
    if row.get("spans"):
        notes.append(f"{row['spans']:.0f} spans to a discarding exporter")
    if "process_spans_received" in row:
        notes.append(
            f"{row['spans_received']:.0f} spans received over OTLP/HTTP; message spans "
            f"{row['process_spans_received']:.0f} of {row['handled']:.0f} handled"
        )
    if row.get("span_export", {}).get("dropped"):
        notes.append(f"{row['span_export']['dropped']} dropped")
    if "gc_collections" in row:
        notes.append(f"{row['gc_collections']:.0f} GC runs")
    return "; ".join(notes)


def _cells(name: str, row: dict[str, Any]) -> list[str]:
    def number(key: str, spec: str) -> str:
        value = row.get(key)
        return format(value, spec) if isinstance(value, int | float) else "-"

    return [
        name,
        number("messages", ".0f"),
        number("throughput", ",.0f"),
        number("throughput_ratio", ".2f"),
        number("cpu_us_per_msg", ".0f"),
        number("cpu_ratio", ".2f"),
        number("api_calls_per_msg", ".3f"),
        number("rss_peak_mb", ".0f"),
        _notes(row),
    ]


def table(summary: dict[str, dict[str, Any]]) -> str:
    """A plain-text table for the terminal."""
    rows = [list(COLUMNS), *(_cells(name, row) for name, row in summary.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]
    return "\n".join(lines)


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    """The results table in Markdown."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(name, row)) + " |" for name, row in summary.items()]
    return "\n".join(lines)


def verdict_lines(verdicts: list[dict[str, Any]]) -> str:
    """One line per target for the terminal."""
    marks = {True: "MET   ", False: "MISSED", None: "n/a   "}
    return "\n".join(
        f"{marks[v['met']]}  {v['target']} [{v['scenario']}]: {v['measured'] or v.get('note', '-')} "
        f"(target {v['limit']})"
        for v in verdicts
    )


def chart(summary: dict[str, dict[str, Any]], path: Path) -> bool:
    """Throughput and CPU per message per scenario, as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: only the chart needs it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    names = [n for n, r in summary.items() if isinstance(r.get("cpu_us_per_msg"), int | float)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 0.42 * len(names) + 1.6), sharey=True)
    colors = [_color(summary[n]["group"], n) for n in names]
    positions = range(len(names))
    for axis, key, title in ((left, "throughput", "messages/s"), (right, "cpu_us_per_msg", "CPU µs per message")):
        values = [summary[n][key] for n in names]
        axis.barh(positions, values, color=colors)
        for y, value in zip(positions, values, strict=True):
            axis.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        axis.set_title(title)
        axis.set_xlim(0, max(values) * 1.18)
        axis.grid(axis="x", alpha=0.3)
    floor = summary.get("floor", {}).get("cpu_us_per_msg")
    if floor:
        right.axvline(floor, color="black", linestyle=":", linewidth=1, label="floor")
        right.axvline(floor * 1.25, color="tab:red", linestyle="--", linewidth=1, label="1.25x floor (target)")
        right.legend(loc="lower right", fontsize=8)
    left.set_yticks(list(positions), names)
    left.invert_yaxis()
    figure.suptitle("mq-service against fauxqs: throughput and consumer CPU per message (median of runs)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _color(group: str, name: str) -> str:
    if name in ("floor", "boto3", "publish-floor"):
        return "tab:gray"
    return {"consume": "tab:blue", "tracing": "tab:purple", "io": "tab:green", "publish": "tab:orange"}.get(
        group, "tab:olive"
    )


def markdown(results: dict[str, Any], *, chart_written: bool) -> str:
    """RESULTS.md: the figures of this run, with the method and the hand-written findings."""
    from .results_text import render  # noqa: PLC0415 - the long prose lives in its own module

    return render(results, table=markdown_table(results["scenarios"]), chart_written=chart_written)
