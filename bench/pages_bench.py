"""Page benchmark: req/s, p50 and p99 of the shop's pages against Django's own yardsticks.

    .venv/bin/python bench/pages_bench.py [--shapes gunicorn-sync,uvicorn] [--duration 5]

Serves the shop in the production shape (PostgreSQL, Redis cache and sessions, DEBUG off, JSON
access log) with 2 worker processes, under each serving shape asked for (by default the one
`make run` and the image serve pages with: gunicorn's sync workers), and loads each page
with wrk (16 connections, keep-alive): home, product listing (24), category, search, product,
add to cart (an htmx POST with the page's CSRF token) and the cart with 3 lines, for an
anonymous visitor and a signed-in one. Two bench-only references are served by the same
server with the same middleware and settings (bench/pages_reference/): a bare view rendering
24 product names and prices from one query, and a POST that writes one row. Each page's rate
is reported as a ratio to its reference measured in the same run (the target: at least 0.5),
so the figures compare across machines and loads. Queries per request come from the page
profile's in-process count (bench/pages_profile.py says where the milliseconds go).

The table is printed and written to var/bench/pages-<time>.json (and pages-latest.json).
BENCH_APP_DIR=/path/to/checkout measures another checkout (see bench/pages_setup.py).
Without wrk (Debian package `wrk`) a small Python load generator stands in, and says so.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pages_setup
from support import SERVING_SHAPES

WORKERS = 2
# How each serving shape starts (bench/support.py).
SHAPES = SERVING_SHAPES
# What make run, the image and Kubernetes serve pages with (docs/performance.md, "The
# serving shape"); --shapes compares it with the others.
DEFAULT_SHAPES = ["gunicorn-sync"]
TARGET_RATIO = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(shape: str, log: Path, metrics_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [
        part.format(port=port, workers=WORKERS, app=pages_setup.APP_DIR) for part in SHAPES[shape]
    ]
    env = {**pages_setup.ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and server modules
        [sys.executable, *args],
        cwd=pages_setup.APP_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not answers(port):
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise SystemExit(f"{shape} did not start; see {log}")
        time.sleep(0.2)
    # One worker answering is not all of them: wait until the whole group is idle (every
    # worker has imported Django and the project), or the first page is measured half-served.
    while time.monotonic() < deadline:
        before = group_cpu_seconds(process.pid)
        time.sleep(0.5)
        if group_cpu_seconds(process.pid) - before < 0.05:
            break
    return process, port


def answers(port: int) -> bool:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every live process of a process group: the
    server's, whatever the machine's load, since wall-clock rates are noisy on a shared box."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def ensure_wrk() -> str | None:
    """wrk's path: installed from Debian's packages when missing and we may; else None."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("pages: installing wrk (apt-get install -y wrk)", file=sys.stderr)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet).returncode:  # noqa: S607
        subprocess.run(["apt-get", "update"], **quiet)  # noqa: S607
        subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet)  # noqa: S607
    return shutil.which("wrk")


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for our values


def request_parts(page: pages_setup.Page, visitor: pages_setup.Visitor) -> dict:
    headers = {"Cookie": visitor.cookie_for(page), **page.headers}
    body = page.body(visitor)
    if page.method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return {"method": page.method, "path": page.path, "headers": headers, "body": body}


LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(wrk: str, port: int, parts: dict, seconds: int, connections: int) -> dict:
    script = "\n".join(
        [
            f"wrk.method = {lua_string(parts['method'])}",
            f"wrk.body = {lua_string(parts['body'])}",
            *(
                f"wrk.headers[{lua_string(k)}] = {lua_string(v)}"
                for k, v in parts["headers"].items()
            ),
        ]
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        result = subprocess.run(  # noqa: S603 - wrk with arguments we built
            [
                wrk,
                "--threads",
                "2",
                "--connections",
                str(connections),
                "--duration",
                f"{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "--script",
                file.name,
                f"http://127.0.0.1:{port}{parts['path']}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(file.name)
    out = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    latency = {p: float(v) * UNITS[u] for p, v, u in LATENCY.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rate,
        "requests": done,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "bad_responses": int(bad.group(1)) if bad else 0,
        # Read errors are servers closing idle keep-alive connections (gunicorn sync).
        "timeouts": int(errors.group(4)) if errors else 0,
    }


async def _python_load(port: int, parts: dict, seconds: float, connections: int) -> dict:
    """wrk's job in asyncio, for machines without wrk: keep-alive connections in a loop."""
    head = "".join(f"{k}: {v}\r\n" for k, v in parts["headers"].items())
    body = parts["body"].encode()
    request = (
        f"{parts['method']} {parts['path']} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal bad
        reader = writer = None
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not status_line.split(b" ")[1].startswith((b"2", b"3")):
                bad += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [math.nan]
    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "bad_responses": bad,
        "timeouts": 0,
    }


def load(wrk: str | None, port: int, parts: dict, seconds: int, connections: int) -> dict:
    if wrk:
        return run_wrk(wrk, port, parts, seconds, connections)
    return asyncio.run(_python_load(port, parts, seconds, connections))


def measure_shape(shape: str, scenario, counts, options, wrk) -> list[dict]:
    logs = pages_setup.VAR_DIR
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-metrics-") as metrics_dir:
        server, port = start_server(shape, logs / f"pages-{shape}.log", Path(metrics_dir))
        try:
            rows = []
            for visitor in scenario.visitors:
                for page in scenario.pages:
                    parts = request_parts(page, visitor)
                    # Every worker warm (templates compiled, pools open) before the clock runs.
                    load(wrk, port, parts, options.warmup, options.connections)
                    cpu = group_cpu_seconds(server.pid)
                    figures = load(wrk, port, parts, options.duration, options.connections)
                    cpu = group_cpu_seconds(server.pid) - cpu
                    figures["server_cpu_ms"] = (
                        round(cpu * 1000 / figures["requests"], 2) if figures["requests"] else None
                    )
                    rows.append(
                        {
                            "shape": shape,
                            "page": page.name,
                            "visitor": visitor.name,
                            "reference": page.reference,
                            "queries": counts[(page.name, visitor.name)],
                            **figures,
                        }
                    )
                    print(
                        f"  {shape}: {page.name} ({visitor.name}) {figures['rps']:.0f} req/s",
                        file=sys.stderr,
                    )
        finally:
            stop(server)
    by_name = {(r["page"], r["visitor"]): r for r in rows}
    for row in rows:
        if row["reference"]:
            reference = by_name[(row["reference"], row["visitor"])]
            # No ratio when either side completed no request in its window (a loaded machine).
            measured = row["requests"] and reference["requests"]
            row["ratio"] = round(row["rps"] / reference["rps"], 3) if measured else None
            # What the ratio is where the server's CPU is the limit, whatever else runs.
            if row["server_cpu_ms"] and reference["server_cpu_ms"]:
                row["cpu_ratio"] = round(reference["server_cpu_ms"] / row["server_cpu_ms"], 3)
    return rows


def print_tables(rows: list[dict], shapes: list[str], *, loader: str) -> None:
    for shape in shapes:
        print(f"\n{shape}, {WORKERS} worker processes, {loader}:\n")
        print(
            "page | visitor | req/s | p50 ms | p99 ms | queries | server CPU ms/req | "
            "ratio to reference | CPU ratio"
        )
        print("--- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---:")
        for row in (r for r in rows if r["shape"] == shape):
            ratio = row.get("ratio")
            mark = "" if ratio is None or ratio >= TARGET_RATIO else " (below 0.5)"
            bad = f" ({row['bad_responses']} not 2xx/3xx)" if row["bad_responses"] else ""
            cpu_ratio = row.get("cpu_ratio")
            print(
                f"{row['page']} | {row['visitor']} | {row['rps']:.0f}{bad} | "
                f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['queries']} | "
                f"{row['server_cpu_ms'] or 0:.1f} | "
                + (
                    "reference"
                    if row["reference"] is None
                    else "n/a (no request completed)"
                    if ratio is None
                    else f"{ratio:.2f}{mark}"
                )
                + (" | " + ("" if cpu_ratio is None else f"{cpu_ratio:.2f}"))
            )
    if len(shapes) > 1:
        print("\nreq/s and server CPU ms per request by serving shape (same run):\n")
        print("page | visitor | " + " | ".join(f"{s} req/s | CPU ms" for s in shapes))
        print("--- | --- | " + " | ".join("---: | ---:" for _ in shapes))
        keyed = {(r["shape"], r["page"], r["visitor"]): r for r in rows}
        for row in (r for r in rows if r["shape"] == shapes[0]):
            same = [keyed[(s, row["page"], row["visitor"])] for s in shapes]
            cells = [f"{r['rps']:.0f} | {r['server_cpu_ms'] or 0:.1f}" for r in same]
            print(f"{row['page']} | {row['visitor']} | " + " | ".join(cells))
        print("\ngeometric means over all pages and visitors (req/s; server CPU ms per request):")
        for shape in shapes:
            mine = [r for r in rows if r["shape"] == shape]
            rate = geometric_mean([r["rps"] for r in mine])
            cpu = geometric_mean([r["server_cpu_ms"] or 0 for r in mine])
            print(f"  {shape}: {rate:.0f} req/s; {cpu:.2f} ms")


def geometric_mean(values: list[float]) -> float:
    positive = [value for value in values if value > 0]
    return math.exp(statistics.fmean(math.log(v) for v in positive)) if positive else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        default=",".join(DEFAULT_SHAPES),
        help=f"comma-separated, of: {', '.join(SHAPES)}",
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per page")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per page, not counted")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--page", action="append", help="only pages whose name contains this")
    parser.add_argument("--json", type=Path, help="write the figures here as well")
    options = parser.parse_args()
    shapes = [s.strip() for s in options.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes: {', '.join(unknown)}")
    import importlib.util

    missing = [s for s in shapes if importlib.util.find_spec(SHAPES[s][1]) is None]
    if missing:
        parser.error(
            f"not installed in this virtualenv: {', '.join(SHAPES[s][1] for s in missing)}"
        )

    wrk = ensure_wrk()
    loader = "wrk" if wrk else "the Python load generator (wrk is not installed)"
    pages_setup.VAR_DIR.mkdir(parents=True, exist_ok=True)
    pages_setup.ensure_database()
    pages_setup.configure("pages-setup-access.log")
    import pages_profile

    scenario = pages_setup.seed()
    if options.page:
        # The references always run: every ratio needs its own.
        scenario.pages[:] = [
            p
            for p in scenario.pages
            if p.reference is None or any(n in p.name for n in options.page)
        ]
    counts = pages_profile.count_queries(scenario)
    started = time.time()
    rows = []
    for shape in shapes:
        rows += measure_shape(shape, scenario, counts, options, wrk)
    print(
        f"\npages: {pages_setup.APP_DIR} at {pages_setup.APP_COMMIT}, "
        f"{pages_setup.PRODUCT_COUNT} products, {options.connections} connections, "
        f"{options.duration:g} s per page; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print_tables(rows, shapes, loader=loader)
    below = [r for r in rows if r.get("ratio") is not None and r["ratio"] < TARGET_RATIO]
    unmeasured = [r for r in rows if r["reference"] and r.get("ratio") is None]
    print(
        f"\ntarget (every page at least {TARGET_RATIO:g} of its reference): "
        + (
            "met"
            if not below
            else f"not met by {len(below)} of {sum('ratio' in r for r in rows)} measurements"
        )
        + (f"; {len(unmeasured)} without a ratio (raise --duration)" if unmeasured else "")
    )
    result = {
        "app_dir": str(pages_setup.APP_DIR),
        "commit": pages_setup.APP_COMMIT,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "loader": "wrk" if wrk else "python",
        "workers": WORKERS,
        "connections": options.connections,
        "duration_s": options.duration,
        "load_average": os.getloadavg()[0],
        "rows": rows,
    }
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    text = json.dumps(result, indent=2)
    (pages_setup.VAR_DIR / f"pages-{stamp}.json").write_text(text)
    (pages_setup.VAR_DIR / "pages-latest.json").write_text(text)
    if options.json:
        options.json.write_text(text)


if __name__ == "__main__":
    main()
