"""What the benchmarks share: how each serving shape starts, their own database, free ports,
stopping what they started."""

import contextlib
import os
import signal
import socket
import subprocess

# How each serving shape starts a server of the pages (the page and checkout benches):
# {port} is the port, {workers} the process count.
SERVING_SHAPES: dict[str, list[str]] = {
    # HTTP and websockets alike from project.asgi in uvicorn (the shape before gunicorn).
    "uvicorn": [
        "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", "{workers}", "--log-level", "warning", "--no-proxy-headers",
        "--no-access-log",
    ],
    # HTTP on a WSGI server (websockets then served by uvicorn beside it, under /ws/). The
    # chosen one, with the flags of scripts/run.sh and the image's entrypoint:
    "gunicorn-sync": [
        "-m", "gunicorn", "project.wsgi:application", "--bind", "127.0.0.1:{port}",
        "--workers", "{workers}", "--worker-class", "sync", "--log-level", "warning",
        "--forwarded-allow-ips", "", "--no-control-socket",
    ],
    "gunicorn-gthread": [
        "-m", "gunicorn", "project.wsgi:application", "--bind", "127.0.0.1:{port}",
        "--workers", "{workers}", "--worker-class", "gthread", "--threads", "4",
        "--keep-alive", "5", "--log-level", "warning", "--forwarded-allow-ips", "",
        "--no-control-socket",
    ],
    "granian-wsgi": [
        "-m", "granian", "--interface", "wsgi", "project.wsgi:application", "--host",
        "127.0.0.1", "--port", "{port}", "--workers", "{workers}", "--blocking-threads", "4",
        "--log-level", "warning", "--no-ws",
    ],
    "granian-asgi": [
        "-m", "granian", "--interface", "asgi", "project.asgi:application", "--host",
        "127.0.0.1", "--port", "{port}", "--workers", "{workers}", "--log-level", "warning",
    ],
}  # fmt: skip


def ensure_database(url: str) -> None:
    """Create the database `url` names on its server if it does not exist yet."""
    import psycopg
    from psycopg import sql

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
        base, _, name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.99 for p99) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
