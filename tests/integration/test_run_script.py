"""`make run` (scripts/run.sh) stopped by SIGTERM, as a supervisor, an IDE or `timeout` stops
it, stops every process it started, as Ctrl+C does: the pages' server (gunicorn, its master
and workers), the websockets' (uvicorn), the four workers and their clusters. The script
runs the embedded default (no DATABASE_URL, no REDIS_URL) on a free port with its own
BAZAAR_VAR_DIR."""

import os
import signal
import subprocess
from pathlib import Path

from django.conf import settings

from tests.fixtures.asgi_server import free_port, healthy
from tests.fixtures.workers import descendants_of, process_title, wait_for

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "run.sh"
QUEUES = ("critical", "emails", "analytics", "default")


def _alive(pids: list[int]) -> list[str]:
    return [title for title in map(process_title, pids) if title]  # zombies have no cmdline


def test_sigterm_stops_the_servers_and_every_worker_it_started(tmp_path):
    port = free_port()
    dropped = ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX", "DJANGO_SETTINGS_MODULE")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["BAZAAR_VAR_DIR"] = str(tmp_path)
    script = subprocess.Popen(
        [str(SCRIPT), "127.0.0.1", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the test's cleanup can kill it all
    )
    try:
        # Five Python processes start at once: on a loaded machine that takes a while.
        wait_for(lambda: healthy(port) or script.poll() is not None, timeout=120, interval=0.2)
        assert script.poll() is None, "scripts/run.sh exited before the shop answered"
        started = wait_for(lambda: _every_worker_running(script.pid), timeout=60)

        script.send_signal(signal.SIGTERM)

        assert script.wait(timeout=20) == 143
        wait_for(lambda: not _alive(started), timeout=3)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
    assert {f"worker-{queue}.log" for queue in QUEUES} <= {p.name for p in tmp_path.iterdir()}


def _every_worker_running(pid: int) -> list[int] | None:
    """The script's descendants once both servers and each queue's run_worker are up."""
    descendants = descendants_of(pid)
    titles = " ".join(map(process_title, descendants))
    running = (
        "gunicorn: worker" in titles
        and "uvicorn" in titles
        and all(f"run_worker {queue}" in titles for queue in QUEUES)
    )
    return descendants if running else None
