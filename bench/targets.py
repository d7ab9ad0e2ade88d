"""The targets the report checks, each measured against this run's own baselines."""

from __future__ import annotations

from typing import Any

CPU_RATIO_MAX = 1.25
CPU_RATIO_TRACED_MAX = 1.5
API_CALLS_PER_MSG_MAX = 0.22
IO_EFFICIENCY_MIN = {"io-bounded-10": 0.90, "io-partitioned-10": 0.85}
RSS_MAX_MB = 120.0
DRAIN_MARGIN_S = 1.0
NOOP_SERVER_SCENARIOS = ("bounded-1", "bounded-10", "bounded-50", "unbounded", "partitioned-10")
SERVER_GROUPS = ("consume", "io", "tracing")
# Traced scenarios exporting to the harness's OTLP receiver: every handled message's span must arrive there.
OTLP_SCENARIOS = ("lean-bounded-10-traced", "lean-bounded-10-traced-gc", "lean-bounded-10-traced-sdk")
# The lean client's targets: (target, scenario, measured field, against scenario, limit, "max" or "min").
LEAN_TARGETS = (
    ("CPU/msg, lean Server vs aiobotocore floor", "lean-bounded-10", "cpu_us_per_msg", "floor", 0.5, "max"),
    ("CPU/msg, lean Server vs lean floor", "lean-bounded-10", "cpu_us_per_msg", "lean-floor", 1.15, "max"),
    ("CPU/msg, lean Publisher vs aiobotocore floor", "lean-publisher", "cpu_us_per_msg", "publish-floor", 0.5, "max"),
    ("CPU/msg, lean traced (OTLP/HTTP) vs lean metrics only", "lean-bounded-10-traced", "cpu_us_per_msg",
     "lean-bounded-10-metrics", 2.0, "max"),
    ("CPU/msg, batch handler vs single-message Server (lean)", "lean-batch-100", "cpu_us_per_msg", "lean-bounded-10",
     1.0, "max"),
    ("throughput, lean Server vs aiobotocore Server", "lean-bounded-10", "throughput", "bounded-10", 1.5, "min"),
    ("peak RSS, lean Server vs aiobotocore Server", "lean-bounded-10", "rss_peak_mb", "bounded-10", 1.0, "max"),
)  # fmt: skip


def evaluate(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per target and scenario: measured, limit, met (None when not measured)."""
    verdicts = [_cpu(summary, name, CPU_RATIO_MAX) for name in NOOP_SERVER_SCENARIOS if name in summary]
    if "bounded-10-traced" in summary:
        verdicts.append(_cpu(summary, "bounded-10-traced", CPU_RATIO_TRACED_MAX))
    verdicts += [_relative(summary, target) for target in LEAN_TARGETS if target[1] in summary]
    verdicts += [_spans(summary[name]) | {"scenario": name} for name in OTLP_SCENARIOS if name in summary]
    verdicts.append(_api_calls(summary))
    verdicts += [_efficiency(summary, name, low) for name, low in IO_EFFICIENCY_MIN.items() if name in summary]
    verdicts.append(_rss(summary))
    if "drain" in summary:
        verdicts.append(_drain(summary["drain"]))
    return verdicts


def _verdict(target: str, scenario: str, measured: Any, limit: str, met: bool | None, **extra: Any) -> dict[str, Any]:
    return {"target": target, "scenario": scenario, "measured": measured, "limit": limit, "met": met, **extra}


def _unmeasured(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return "not run"
    return row.get("skipped") or row.get("error")


def _cpu(summary: dict[str, dict[str, Any]], name: str, limit: float) -> dict[str, Any]:
    row = summary[name]
    target = "CPU/msg vs floor, tracing on" if "traced" in name else "CPU/msg vs floor, no-op handler"
    why = _unmeasured(row)
    if why:
        return _verdict(target, name, None, f"<= {limit}x", None, note=why)
    ratio = row["cpu_ratio"]
    return _verdict(target, name, f"{ratio:.2f}x", f"<= {limit}x", ratio <= limit, profile=[name])


def _relative(summary: dict[str, dict[str, Any]], spec: tuple[str, str, str, str, float, str]) -> dict[str, Any]:
    """`field` of `name` over `field` of `other`, at most (max) or at least (min) `limit`."""
    target, name, field, other, limit, bound = spec
    wanted = f"{'<=' if bound == 'max' else '>='} {limit}x {other}"
    row, base = summary[name], summary.get(other)
    why = _unmeasured(row) or _unmeasured(base)
    if why or base is None or not row.get(field) or not base.get(field):
        return _verdict(target, name, None, wanted, None, note=why or "not measured")
    ratio = row[field] / base[field]
    met = ratio <= limit if bound == "max" else ratio >= limit
    return _verdict(target, name, f"{ratio:.2f}x", wanted, met)


def _spans(row: dict[str, Any]) -> dict[str, Any]:
    target, limit = "message spans received over OTLP", "== messages handled, every run"
    why = _unmeasured(row)
    if why or "process_spans_received" not in row:
        return _verdict(target, "", None, limit, None, note=why or "not measured")
    received, handled = row["process_spans_received_all"], row["handled_all"]
    measured = ", ".join(f"{r}/{h}" for r, h in zip(received, handled, strict=True))
    return _verdict(target, "", measured, limit, received == handled)


def _api_calls(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = {
        name: row["api_calls_per_msg"]
        for name, row in summary.items()
        if row["group"] in SERVER_GROUPS and name not in ("floor", "boto3") and row.get("api_calls_per_msg")
    }
    if not rows:
        return _verdict("SQS calls/msg, steady state", "all Server scenarios", None, "<= 0.22", None)
    worst = max(rows, key=lambda name: rows[name])
    measured = f"{rows[worst]:.3f} (worst: {worst})"
    return _verdict("SQS calls/msg, steady state", "all Server scenarios", measured, "<= 0.22",
                    rows[worst] <= API_CALLS_PER_MSG_MAX)  # fmt: skip


def _efficiency(summary: dict[str, dict[str, Any]], name: str, low: float) -> dict[str, Any]:
    row = summary[name]
    why = _unmeasured(row)
    if why:
        return _verdict("I/O-bound efficiency vs ideal", name, None, f">= {low:.0%}", None, note=why)
    efficiency = row["efficiency"]
    return _verdict("I/O-bound efficiency vs ideal", name, f"{efficiency:.1%}", f">= {low:.0%}", efficiency >= low)


def _rss(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = {name: row["rss_peak_mb"] for name, row in summary.items() if row.get("rss_peak_mb") and name != "boto3"}
    if not rows:
        return _verdict("peak RSS under load", "all", None, f"<= {RSS_MAX_MB:.0f} MB", None)
    worst = max(rows, key=lambda name: rows[name])
    measured = f"{rows[worst]:.1f} MB (worst: {worst})"
    return _verdict("peak RSS under load", "all", measured, f"<= {RSS_MAX_MB:.0f} MB", rows[worst] <= RSS_MAX_MB)


def _drain(row: dict[str, Any]) -> dict[str, Any]:
    why = _unmeasured(row)
    if why:
        return _verdict("drain time", "drain", None, "<= longest remaining + 1 s", None, note=why)
    measured = f"{row['drain_s']:.2f} s (longest handler had {row['longest_left_s']:.2f} s left)"
    met = row["drain_s"] <= row["longest_left_s"] + DRAIN_MARGIN_S
    return _verdict("drain time", "drain", measured, "<= longest remaining + 1 s", met)
