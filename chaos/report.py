"""The run's verdict: the invariant table and the counts, printed and saved as JSON."""

import json
import statistics
from collections import Counter
from pathlib import Path

DETAIL_LINES = 8


def median_max(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.median(values), max(values)


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def recovery_table(faults: list, cluster: dict[str, list[float]]) -> dict[str, dict]:
    by_kind: dict[str, list] = {}
    for fault in faults:
        by_kind.setdefault(fault.kind, []).append(fault.recovery)
    table = {}
    for kind, values in by_kind.items():
        seen = [v for v in values if v is not None]
        median, worst = median_max(seen)
        own_median, own_worst = median_max(cluster.get(kind, []))
        table[kind] = {
            "faults": len(values),
            "recovered": len(seen),
            "median": median,
            "max": worst,
            "own_cluster_median": own_median,
            "own_cluster_max": own_worst,
            "own_cluster_observed": len(cluster.get(kind, [])),
        }
    return table


def print_report(result: dict, rows: list) -> None:
    width = max(len(row.name) for row in rows)
    value_width = min(60, max(len(row.value) for row in rows))
    print()
    print(f"Bazaar chaos run {result['run']}  (seed {result['seed']}, {result['options']})")
    print()
    print(f"{'invariant'.ljust(width)}  {'value'.ljust(value_width)}  result")
    print(f"{'-' * width}  {'-' * value_width}  ---------")
    for row in rows:
        verdict = "OK" if row.ok else "VIOLATION"
        print(f"{row.name.ljust(width)}  {row.value.ljust(value_width)}  {verdict}")
    for row in rows:
        if not row.ok and row.details:
            print(f"\n{row.name}:")
            for line in row.details[:DETAIL_LINES]:
                print(f"  - {line}")
            if len(row.details) > DETAIL_LINES:
                print(f"  ... {len(row.details) - DETAIL_LINES} more in the JSON")
    summary = result["summary"]
    print()
    print(
        f"orders placed: {sum(summary['orders by status'].values())}  {summary['orders by status']}"
    )
    print(f"payments by status: {summary['payments by status']}")
    print(f"refunds by status: {summary['refunds by status']}  processor: {summary['processor']}")
    print(f"kills by kind: {result['kills by kind']}")
    if result["skipped faults"]:
        print(f"faults skipped (no such process at that moment): {result['skipped faults']}")
    print(f"restarts by kind (by the process manager): {result['restarts by kind']}")
    inside = result["cluster restarts inside run_worker"]
    if any(inside["per cluster"].values()):
        print(f"clusters restarted inside run_worker: {inside['per cluster']}")
        print(f"  because: {inside['reasons']}")
    print()
    print("recovery (s)      faults  recovered  median    max   own cluster median/max (n)")
    for kind, stats in result["recovery"].items():
        own = (
            f"{_fmt(stats['own_cluster_median'])}/{_fmt(stats['own_cluster_max'])} "
            f"({stats['own_cluster_observed']})"
            if stats["own_cluster_observed"]
            else ""
        )
        print(
            f"{kind:<17} {stats['faults']:>6}  {stats['recovered']:>9}  "
            f"{_fmt(stats['median']):>6} {_fmt(stats['max']):>6}   {own}"
        )
    if result["server errors"]:
        print(f"\nserver errors ({len(result['server errors'])}):")
        for error in result["server errors"][:DETAIL_LINES]:
            when = f"t={error.get('t_sent', '?')}-{error.get('t', '?')}s"
            print(
                f"  {when} {error['method']} {error['path']} HTTP {error['status']} "
                f"on :{error['port']}: {error.get('cause', '?')}"
            )
    print()
    print(f"traffic: {dict(result['traffic'])}")
    print(f"tasks: {result['tasks']}")
    for line in result["failed tasks"][:DETAIL_LINES]:
        print(f"  failed: {line}")
    print(f"settled: {result['settle']}")
    print(f"shutdown: {result.get('shutdown')}")
    verdict = "no violations" if result["ok"] else f"{result['violations']} VIOLATION(S)"
    print(f"\n{verdict}; logs and results in {result['run_dir']}")


def write_json(path: Path, result: dict, rows: list) -> None:
    payload = {**result, "invariants": [row.as_dict() for row in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str))


def restarts_by_kind(restarts: list) -> dict[str, str]:
    counts = Counter(r.kind for r in restarts)
    by_itself = Counter(r.kind for r in restarts if not r.killed_by_chaos)
    return {
        kind: f"{count} ({by_itself[kind]} exited by themselves)" if by_itself[kind] else str(count)
        for kind, count in sorted(counts.items())
    }
