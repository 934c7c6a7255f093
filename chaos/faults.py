"""Faults, injected at random (seeded) every few seconds while the shoppers shop.

Every process kind is SIGKILLed in turn (a shuffled bag, so each comes up about as often):
a web process, an event dispatcher, and, of a random task cluster, its main process, its
sentinel, its monitor, its pusher, an idle worker or a busy one (see chaos.anatomy). Once
per run, at a random point in the middle: PostgreSQL crashes (`pg_ctl stop -m immediate`,
down a few seconds, started again), Redis is SIGKILLed and restarted empty, and, when the
simulated processor has an outage switch, the processor goes down for a while.

After each fault a recovery condition is watched (see `Fault.recovered`): the killed web
answers again, the events pending at a dispatcher kill are delivered, a probe task enqueued
on the killed cluster's queue completes, both web processes are ready again.
"""

import datetime
import logging
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from django.db import close_old_connections
from django.utils import timezone

from chaos import probes
from chaos.anatomy import Anatomy, busy_worker_pids
from chaos.processes import MANAGE, ProcessManager
from chaos.services import PrivatePostgres, PrivateRedis

logger = logging.getLogger("chaos")

PROCESS_KINDS = [
    "web",
    "dispatcher",
    "cluster-main",
    "sentinel",
    "monitor",
    "pusher",
    "idle-worker",
    "busy-worker",
]
CLUSTER_ROLES = {
    "cluster-main": "main",
    "sentinel": "sentinel",
    "monitor": "monitor",
    "pusher": "pusher",
}
RECOVERY_TIMEOUT = 180.0


@dataclass
class Fault:
    at: float  # seconds since the run began
    wall: datetime.datetime
    kind: str
    target: str
    pid: int | None = None
    queue: str = ""
    detail: str = ""
    recovery: float | None = None
    back_at: float | None = None  # a crashed service: when it answered again
    probe_id: str = ""
    recovered: Callable[[], bool] | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "at": round(self.at, 2),
            "kind": self.kind,
            "target": self.target,
            "pid": self.pid,
            "queue": self.queue,
            "detail": self.detail,
            "recovery_seconds": None if self.recovery is None else round(self.recovery, 2),
            "back_at": None if self.back_at is None else round(self.back_at, 2),
        }


class FaultInjector:
    def __init__(
        self,
        *,
        manager: ProcessManager,
        anatomy: Anatomy,
        postgres: PrivatePostgres,
        redis: PrivateRedis,
        env: dict[str, str],
        seconds: float,
        interval: tuple[float, float],
        seed: int,
        clock: Callable[[], float],
        outage_seconds: float,
        pg_down_seconds: float,
        has_outage_switch: bool,
    ) -> None:
        self.manager = manager
        self.anatomy = anatomy
        self.postgres = postgres
        self.redis = redis
        self.env = env
        self.seconds = seconds
        self.interval = interval
        self.rng = random.Random(seed)
        self.clock = clock
        self.outage_seconds = outage_seconds
        self.pg_down_seconds = pg_down_seconds
        self.faults: list[Fault] = []
        self.skipped: dict[str, int] = {}
        self._bag: list[str] = []
        self._stop = threading.Event()
        # Once per run, somewhere in the middle of the load.
        self.once = {
            "postgres-crash": self.rng.uniform(0.35, 0.5) * seconds,
            "redis-restart": self.rng.uniform(0.55, 0.7) * seconds,
        }
        if has_outage_switch:
            self.once["processor-outage"] = self.rng.uniform(0.15, 0.3) * seconds
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    # --- the schedule -------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._run, "faults"), (self._watch, "recovery")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop_injecting(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait for the watcher to see every fault recover (or time out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            f.recovered is not None and f.recovery is None for f in self.faults
        ):
            time.sleep(0.5)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(*self.interval)):
            if self.clock() >= self.seconds:
                break
            due = [kind for kind, at in self.once.items() if at <= self.clock()]
            try:
                if due:
                    self._once(due[0])
                else:
                    self._kill_next()
            except Exception:
                logger.exception("Fault injection failed")
            finally:
                close_old_connections()

    def _next_kind(self) -> str:
        if not self._bag:
            self._bag = PROCESS_KINDS[:]
            self.rng.shuffle(self._bag)
        return self._bag.pop()

    def _kill_next(self) -> None:
        kind = self._next_kind()
        fault = self._kill(kind)
        if fault is None:
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
            self._bag.insert(0, kind)  # try it again later
            return
        self.faults.append(fault)
        logger.info("t=%5.1fs  killed %s %s (pid %s)", fault.at, kind, fault.target, fault.pid)

    # --- process kills ------------------------------------------------------------------
    def _kill(self, kind: str) -> Fault | None:
        if kind in ("web", "dispatcher"):
            candidates = [m for m in self.manager.of_kind(kind) if m.pid is not None]
            if not candidates:
                return None
            managed = self.rng.choice(candidates)
            pid = managed.pid
            fault = self._fault(kind, managed.spec.name, pid)
            if not self.manager.kill(pid):
                return None
            if kind == "web":
                fault.recovered = _answers(managed.spec.port, "/healthz")
            else:
                fault.recovered = _events_pending_at_delivered(fault.wall)
            return fault
        return self._kill_cluster_part(kind)

    def _kill_cluster_part(self, kind: str) -> Fault | None:
        # A busy worker may take a moment to turn up: look for one for a few seconds.
        deadline = time.monotonic() + (5 if kind == "busy-worker" else 0)
        while True:
            fault = self._try_cluster_part(kind)
            if fault is not None or time.monotonic() >= deadline:
                return fault
            time.sleep(0.05)

    def _try_cluster_part(self, kind: str) -> Fault | None:
        clusters = [m for m in self.manager.of_kind("cluster") if m.pid is not None]
        self.rng.shuffle(clusters)
        parts_list = self.anatomy.read(clusters)
        recorded_busy = None
        for parts in parts_list:
            busy = parts.busy
            if busy is None and kind.endswith("worker"):
                recorded_busy = busy_worker_pids() if recorded_busy is None else recorded_busy
                busy = recorded_busy
            busy = busy or set()
            if kind in CLUSTER_ROLES:
                pid = getattr(parts, CLUSTER_ROLES[kind])
            elif kind == "busy-worker":
                pid = next((p for p in parts.workers if p in busy), None)
            else:
                pid = next((p for p in parts.workers if p not in busy), None)
            if not pid:
                continue
            fault = self._fault(kind, parts.cluster, pid, queue=parts.queue)
            fault.detail = f"roles from {parts.source}"
            if not self.manager.kill(pid):
                continue
            fault.detail += f", {_ready_tasks(parts.queue)} tasks waiting on the queue"
            self._probe(fault, parts.queue)
            return fault
        return None

    def _fault(self, kind: str, target: str, pid: int | None = None, queue: str = "") -> Fault:
        return Fault(
            at=self.clock(), wall=timezone.now(), kind=kind, target=target, pid=pid, queue=queue
        )

    def _probe(self, fault: Fault, queue: str) -> None:
        """Enqueue a probe on the queue; recovery is when it (or a later one) completes."""
        try:
            fault.probe_id = probes.enqueue(queue)
        except Exception:  # noqa: BLE001 - the database may be down right now
            logger.warning("Could not enqueue a probe on %s", queue, exc_info=True)
            return
        fault.recovered = _task_finished(fault.probe_id)

    # --- once per run ---------------------------------------------------------------------
    def _once(self, kind: str) -> None:
        del self.once[kind]
        fault = self._fault(kind, kind.split("-")[0])
        self.faults.append(fault)
        logger.info("t=%5.1fs  %s", fault.at, kind)
        if kind == "postgres-crash":
            self.postgres.crash()
            time.sleep(self.pg_down_seconds)
            self.postgres.start()
            fault.back_at = self.clock()
            fault.detail = f"down {fault.back_at - fault.at:.1f}s"
            self._ready_and_probe(fault)
        elif kind == "redis-restart":
            self.redis.crash()
            self.redis.start()
            fault.back_at = self.clock()
            fault.detail = f"SIGKILL, restarted empty, down {fault.back_at - fault.at:.1f}s"
            self._ready_and_probe(fault)
        else:
            result = subprocess.run(  # noqa: S603 - our own manage.py
                [*MANAGE, "simulated_gateway", "outage", "--seconds", str(self.outage_seconds)],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            fault.detail = f"{self.outage_seconds:g}s, exit {result.returncode}"
            if result.returncode != 0:
                fault.detail += f": {(result.stderr or result.stdout).strip()[-200:]}"
            fault.recovered = _payment_captured_after(
                fault.wall + datetime.timedelta(seconds=self.outage_seconds)
            )

    def _ready_and_probe(self, fault: Fault) -> None:
        webs = [m.spec.port for m in self.manager.of_kind("web")]
        ready = [_answers(port, "/readyz") for port in webs]
        close_old_connections()
        self._probe(fault, "critical")
        probed = fault.recovered or (lambda: True)
        state = {"ready": False}

        def recovered() -> bool:
            state["ready"] = state["ready"] or all(check() for check in ready)
            return state["ready"] and probed()

        fault.recovered = recovered

    # --- recovery watching ----------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        self._closed.set()

    def _watch(self) -> None:
        while not self._closed.is_set():
            for fault in list(self.faults):
                if fault.recovered is None or fault.recovery is not None:
                    continue
                if self.clock() - fault.at > RECOVERY_TIMEOUT:
                    continue
                try:
                    if fault.recovered():
                        fault.recovery = self.clock() - fault.at
                except Exception:  # noqa: BLE001 - a check may fail while things are down
                    logger.debug("Recovery check failed", exc_info=True)
                finally:
                    close_old_connections()
            self._closed.wait(0.2)


def _answers(port: int, path: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return check


def _ready_tasks(queue: str) -> int | str:
    from django.tasks import TaskResultStatus

    from project.background.models import TaskRecord

    try:
        return TaskRecord.objects.filter(queue=queue, status=TaskResultStatus.READY).count()
    except Exception:  # noqa: BLE001 - the database may be down right now
        return "?"


def _task_finished(record_id: str) -> Callable[[], bool]:
    def check() -> bool:
        from project.background.models import TaskRecord

        return TaskRecord.objects.filter(pk=record_id, finished_at__isnull=False).exists()

    return check


def _events_pending_at_delivered(wall: datetime.datetime) -> Callable[[], bool]:
    """Every event that was due and undelivered at the kill has been delivered since."""

    def check() -> bool:
        from project.events.models import OutboxEvent

        return (
            not OutboxEvent.objects.pending()
            .filter(created_at__lte=wall, next_attempt_at__lte=wall)
            .exists()
        )

    return check


def _payment_captured_after(wall: datetime.datetime) -> Callable[[], bool]:
    def check() -> bool:
        from shop.models import Payment, PaymentStatus

        return (
            timezone.now() > wall
            and Payment.objects.filter(status=PaymentStatus.CAPTURED, updated_at__gt=wall).exists()
        )

    return check


def cluster_recoveries(faults: list[Fault], anatomy: Anatomy) -> dict[str, list[float]]:
    """For each kill inside a cluster: seconds until a task started after it completed on
    a worker of that same cluster (the queue's other cluster may have carried on meanwhile)."""
    from django.tasks import TaskResultStatus

    from project.background.models import TaskRecord

    kills = [
        f for f in faults if f.queue and f.kind in (*CLUSTER_ROLES, "idle-worker", "busy-worker")
    ]
    if not kills:
        return {}
    finished = []
    for worker_ids, started, ended in TaskRecord.objects.filter(
        status=TaskResultStatus.SUCCESSFUL, last_attempted_at__gte=min(f.wall for f in kills)
    ).values_list("worker_ids", "last_attempted_at", "finished_at"):
        pid = str(worker_ids[-1]).rpartition(":")[2] if worker_ids else ""
        cluster = anatomy.cluster_of(int(pid)) if pid.isdigit() else None
        if cluster:
            finished.append((cluster, started, ended))
    result: dict[str, list[float]] = {}
    for fault in kills:
        ends = [e for c, s, e in finished if c == fault.target and s >= fault.wall]
        if ends:
            result.setdefault(fault.kind, []).append((min(ends) - fault.wall).total_seconds())
    return result
