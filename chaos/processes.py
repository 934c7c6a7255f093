"""The run's process manager: start every top-level process in its own process group,
restart any that exits (as systemd or Kubernetes would), and stop them all at the end.

It also reads the process table (/proc) to tell a Django-Q2 cluster's parts apart; see
`ClusterAnatomy`.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from project.procfs import process_table

logger = logging.getLogger("chaos")

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(BASE_DIR / "manage.py")]
# A restart waits this long, doubling while the process keeps dying young (systemd's
# RestartSec with a backoff), up to the max.
RESTART_DELAY, RESTART_MAX_DELAY, HEALTHY_AFTER = 0.5, 8.0, 10.0


def worker_argv(queue: str, *, run_worker: str) -> tuple[list[str], dict[str, str]]:
    """How one task-queue cluster is started: the only place that knows. `run_worker` is
    "" (no such command: plain Q2), "--queue" or "positional" (how it takes the queue)."""
    env = {"Q_CLUSTER_NAME": queue}
    if run_worker == "--queue":
        return [*MANAGE, "run_worker", "--queue", queue], env
    if run_worker:
        return [*MANAGE, "run_worker", queue], env
    return [*MANAGE, "qcluster"], env


@dataclass
class Spec:
    name: str  # "web-1", "dispatcher-2", "critical-1", "emails"
    kind: str  # "web", "dispatcher" or "cluster"
    argv: list[str]
    env: dict[str, str]
    queue: str = ""
    port: int = 0


@dataclass
class Managed:
    spec: Spec
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = RESTART_DELAY
    restart_at: float | None = None
    groups: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid


@dataclass
class Restart:
    at: float
    name: str
    kind: str
    exit: str  # "SIGKILL", "exit 1", ...
    killed_by_chaos: bool


class ProcessManager:
    def __init__(self, log_dir: Path, clock) -> None:
        self.log_dir = log_dir
        self.clock = clock  # seconds since the run began
        self.managed: dict[str, Managed] = {}
        self.restarts: list[Restart] = []
        self.chaos_killed: set[int] = set()
        self.shutdown: dict = {}
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, spec: Spec) -> Managed:
        managed = Managed(spec=spec, log_path=self.log_dir / f"{spec.name}.log")
        self.managed[spec.name] = managed
        self._start(managed)
        return managed

    def _start(self, managed: Managed) -> None:
        with managed.log_path.open("ab") as log:
            log.write(f"\n=== chaos: start at t={self.clock():.1f}s ===\n".encode())
            log.flush()
            managed.process = subprocess.Popen(  # noqa: S603 - our own interpreter
                managed.spec.argv,
                cwd=BASE_DIR,
                env=managed.spec.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        managed.started_at = time.monotonic()
        managed.restart_at = None
        managed.groups.append(managed.process.pid)

    def supervise(self) -> None:
        """Restart whatever exits, until stop()."""
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                for managed in self.managed.values():
                    self._check(managed)

    def _check(self, managed: Managed) -> None:
        now = time.monotonic()
        if managed.restart_at is not None:
            if now >= managed.restart_at:
                self._start(managed)
            return
        code = managed.process.poll()
        if code is None:
            return
        lived = now - managed.started_at
        managed.delay = (
            RESTART_DELAY if lived > HEALTHY_AFTER else min(managed.delay * 2, RESTART_MAX_DELAY)
        )
        managed.restart_at = now + managed.delay
        exit_text = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        self.restarts.append(
            Restart(
                at=self.clock(),
                name=managed.spec.name,
                kind=managed.spec.kind,
                exit=exit_text,
                killed_by_chaos=managed.process.pid in self.chaos_killed,
            )
        )
        logger.info(
            "%s exited (%s); restarting in %.1fs", managed.spec.name, exit_text, managed.delay
        )

    def of_kind(self, kind: str) -> list[Managed]:
        return [m for m in self.managed.values() if m.spec.kind == kind]

    def kill(self, pid: int) -> bool:
        """SIGKILL one process (chaos); False if it was already gone."""
        self.chaos_killed.add(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def groups(self) -> set[int]:
        return {group for managed in self.managed.values() for group in managed.groups}

    def stale_group_members(self) -> dict[str, list[int]]:
        """Processes still alive in the groups of top-level processes that have exited:
        what a death left behind (e.g. a cluster's children after its main process died)."""
        table = process_table()
        found: dict[str, list[int]] = {}
        with self.lock:
            for managed in self.managed.values():
                current = managed.pid
                for group in managed.groups:
                    if group == current:
                        continue
                    members = [p.pid for p in table.values() if p.pgid == group]
                    if members:
                        found.setdefault(managed.spec.name, []).extend(members)
        return found

    def stop_all(self, *, grace: float = 15.0) -> None:
        """SIGTERM each live top-level process (a cluster's main process only: it stops its
        own children), wait, then SIGKILL every process group ever started."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        live = [m.process for m in self.managed.values() if m.pid is not None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.shutdown = {
            "stopped on SIGTERM": sum(1 for p in live if p.poll() is not None),
            "needed SIGKILL": [m.spec.name for m in self.managed.values() if m.pid is not None],
        }
        for group in self.groups():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        for managed in self.managed.values():
            if managed.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    managed.process.wait(timeout=5)

    def survivors(self, *, wait: float = 5.0) -> list[int]:
        """Processes left in any group this run started (should be none after stop_all);
        a process SIGKILLed a moment ago gets `wait` seconds to finish dying."""
        groups = self.groups()
        deadline = time.monotonic() + wait
        while True:
            left = sorted(p.pid for p in process_table().values() if p.pgid in groups)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.1)
