"""Run the benchmarks: `python -m bench.run [--quick] [--messages N] [--repeats R] [--only a,b] [--profile MODE]`.

Starts fauxqs on a free loopback port, runs every scenario in a fresh process (repeats interleaved, so a
noisy neighbour hits all scenarios alike), then prints the table and writes results.json, chart.png and
RESULTS.md into bench/ (scratch output and profiles go to bench/out/).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import report, targets
from .backend import Fauxqs
from .profile import profile_scenario, py_spy
from .scenarios import Scenario, Sizes, build, run_worker
from .service_scenarios import run_drain, run_http_publish, service_available

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
MAX_PROFILES = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The harness's options."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, one repeat, no profiles (under 2 minutes)")
    parser.add_argument("--messages", type=int, help="messages per no-op scenario (default 30000; quick 5000)")
    parser.add_argument("--repeats", type=int, help="runs of each scenario; the median is reported (default 3)")
    parser.add_argument("--only", help="comma-separated scenario names (baselines are always run)")
    parser.add_argument(
        "--profile", help="auto (scenarios missing a CPU target; the default), none (default with --quick), or names"
    )
    parser.add_argument("--budget-s", type=float, default=540.0, help="start no new repeat after this long")
    parser.add_argument("--output", type=Path, default=BENCH_DIR, help="where results.json, chart.png, RESULTS.md go")
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: redraw the chart and RESULTS.md from results.json"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, report, write the outputs."""
    args = parse_args(argv)
    if args.report_only:
        return _rewrite(args.output)
    sizes = Sizes.for_run(quick=args.quick, messages=args.messages)
    repeats = args.repeats or (1 if args.quick else 3)
    scenarios = _selected(build(sizes), args.only)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    backend = Fauxqs()
    backend.start()
    try:
        runs = _run_all(backend, scenarios, repeats, began + args.budget_s)
        summary = report.summarise(scenarios, runs)
        verdicts = targets.evaluate(summary)
        profiles = _profiles(backend, scenarios, verdicts, args.profile or ("none" if args.quick else "auto"))
    finally:
        backend.stop()
    results = {
        "meta": _meta(args, sizes, repeats, time.monotonic() - began),
        "scenarios": summary,
        "targets": verdicts,
        "profiles": profiles,
        "runs": runs,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return _write(results, args.output)


def _rewrite(output: Path) -> int:
    """Summarise the stored runs again (with the current report code) and rewrite the outputs."""
    results = json.loads((output / "results.json").read_text())
    runs = results["runs"]
    scenarios = [s for s in build(Sizes(**results["meta"]["sizes"])) if s.name in runs]
    results["scenarios"] = report.summarise(scenarios, runs)
    results["targets"] = targets.evaluate(results["scenarios"])
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return _write(results, output)


def _write(results: dict[str, Any], output: Path) -> int:
    chart = report.chart(results["scenarios"], output / "chart.png")
    (output / "RESULTS.md").write_text(report.markdown(results, chart_written=chart))
    print(report.table(results["scenarios"]))
    print(report.verdict_lines(results["targets"]))
    print(f"\nwrote {output / 'RESULTS.md'}, results.json{', chart.png' if chart else ''}")
    return 0


def _selected(scenarios: list[Scenario], only: str | None) -> list[Scenario]:
    if not only:
        return scenarios
    wanted = {name.strip() for name in only.split(",")} | {"floor", "publish-floor"}
    unknown = wanted - {s.name for s in scenarios}
    if unknown:
        raise SystemExit(f"bench: unknown scenarios: {', '.join(sorted(unknown))}")
    return [s for s in scenarios if s.name in wanted]


def _runner(scenario: Scenario) -> Callable[[Fauxqs, Scenario], dict[str, Any]]:
    if scenario.group in ("http", "drain"):
        missing = service_available()
        if missing is not None:
            return lambda backend, s: {"skipped": missing}
        run = run_http_publish if scenario.group == "http" else run_drain
        return lambda backend, s: run(backend, s, OUT_DIR)
    return run_worker


def _run_all(
    backend: Fauxqs, scenarios: list[Scenario], repeats: int, stop_at: float
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in scenarios}
    for repeat in range(repeats):
        if repeat and time.monotonic() > stop_at:
            _log(f"time budget spent: stopping after {repeat} repeat(s)")
            break
        for scenario in scenarios:
            if any("skipped" in run for run in runs[scenario.name]):
                continue
            began = time.monotonic()
            try:
                result = _runner(scenario)(backend, scenario)
            except Exception as exc:  # one broken scenario must not lose the others' figures
                result = {"error": repr(exc)}
            runs[scenario.name].append(result)
            _log(f"[{repeat + 1}/{repeats}] {scenario.name:<20} {time.monotonic() - began:6.1f} s  {_brief(result)}")
    return runs


def _brief(result: dict[str, Any]) -> str:
    if "skipped" in result or "error" in result:
        return str(result.get("skipped") or result.get("error"))[:160]
    parts = [f"{key}={result[key]}" for key in ("throughput", "cpu_us_per_msg", "p99_ms", "drain_s") if key in result]
    return " ".join(parts)


def _profiles(backend: Fauxqs, scenarios: list[Scenario], verdicts: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    if mode == "none":
        return {}
    if py_spy() is None:
        return {"error": "py-spy is not installed: pip install -r bench/requirements.txt"}
    if mode == "auto":
        names = [name for verdict in verdicts if not verdict["met"] for name in verdict.get("profile", ())]
        names = list(dict.fromkeys(["floor", *names] if names else []))[:MAX_PROFILES]
    else:
        names = [name.strip() for name in mode.split(",")]
    by_name = {s.name: s for s in scenarios}
    profiles = {}
    for name in names:
        if name in by_name:
            _log(f"profiling {name}")
            profiles[name] = profile_scenario(backend, by_name[name], OUT_DIR)
    return profiles


def _meta(args: argparse.Namespace, sizes: Sizes, repeats: int, elapsed_s: float) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": args.quick,
        "repeats": repeats,
        "sizes": vars(sizes),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpus()} CPUs",
        "elapsed_s": round(elapsed_s, 1),
        "command": " ".join(["python -m bench.run", *(sys.argv[1:] if sys.argv[0].endswith("run.py") else [])]),
    }


def _cpus() -> int:
    import os  # noqa: PLC0415

    return len(os.sched_getaffinity(0))


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
