"""Django-Q2 clusters that recover from any process death on their own.

A Q2 cluster is a main process, its sentinel, and the sentinel's children: workers, a
monitor and a pusher, joined by two `multiprocessing.Queue`s. A child SIGKILLed while it
holds a queue's lock (an idle worker waits in `task_queue.get()` holding the read lock, the
monitor holds the result queue's) leaves that lock taken for good: Q2's sentinel replaces
the dead child, and the replacement blocks on the same lock forever. Replacing one child
can therefore never be trusted after a death that may have happened inside a lock:

- The sentinel (`SupervisedSentinel`) treats any child killed by a signal (SIGKILL, the
  OOM killer, a segfault) as the end of the whole cluster: it SIGKILLs every child, gives
  back the broker rows it had taken but not started, and exits. A child that exited on its
  own (a recycled worker, a worker that stopped itself after a timeout, a monitor or pusher
  that raised on a database error) went through Python's shutdown, whose `with lock:`
  blocks released every queue lock, so that child alone is replaced. A cluster alive but
  not making progress (tasks waiting while every worker is idle, results waiting while the
  monitor acknowledges nothing, a pusher that stopped polling) ends as a whole after
  `Q_STALL_SECONDS`.
- The main process (`ClusterSupervisor`, `manage.py run_worker <queue>`) starts a fresh
  sentinel, with fresh queues, whenever the previous one ended, and kills a sentinel whose
  heartbeat stops. It writes a heartbeat file that liveness probes read.
- Every process of the cluster asks the kernel to SIGKILL it when its parent dies
  (`PR_SET_PDEATHSIG`), and the main process is the subreaper of the tree, so killing the
  main process or the sentinel leaves no orphan working beside the replacement.

Nothing is lost when a cluster ends: tasks live in the database. A task a dead worker was
running is retried when its lease expires (project.background.runner); a task the dead
cluster had taken from the broker but not started comes back when its broker lease
(`Q_LEASE_SECONDS`) ends.
"""

import contextlib
import ctypes
import logging
import os
import signal
import time
import uuid
from multiprocessing import synchronize
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import setproctitle
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_q.cluster import Sentinel, get_mp_context
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.monitor import monitor
from django_q.pusher import pusher
from django_q.scheduler import scheduler
from django_q.status import Stat
from django_q.worker import worker

from project.background import liveness
from project.background.models import Heartbeat
from project.procfs import children_of

Array = get_mp_context().Array
Value = get_mp_context().Value
Event = get_mp_context().Event

logger = logging.getLogger("project.background.cluster")

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# The sentinel's exit code when it ended its cluster because a child died or stalled.
EXIT_BROKEN = 3
IDLE, RECYCLED = -1, -2  # Q2's worker timer values besides "seconds left"


def _prctl(option: int, value: int) -> bool:
    """Linux prctl(2); False where it is not available (the guarantees then need a
    process manager that kills the whole process group)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit now if it already has."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def killed(process) -> bool:
    """Did the child die by a signal (the only deaths that can leave a queue lock taken)?"""
    return process.exitcode is not None and process.exitcode < 0


def _child_main(parent_pid: int, target, *args) -> None:
    die_with_parent(parent_pid)
    target(*args)


class ClaimLog:
    """The broker rows the pusher took most recently, in memory shared with the sentinel."""

    SIZE = 256  # far more than a cluster holds at once (queue_limit + workers)

    def __init__(self):
        # Slot 0 counts the rows noted; the rest is a ring of their ids.
        self.slots = Array("q", self.SIZE + 1)

    def note(self, ack_ids) -> None:
        with self.slots.get_lock():
            for ack_id in ack_ids:
                self.slots[1 + self.slots[0] % self.SIZE] = ack_id
                self.slots[0] += 1

    def recent(self) -> list[int]:
        # Without the lock: the pusher may have died holding it, and a torn read of an
        # id only releases a row early or not at all, both harmless.
        return sorted({ack_id for ack_id in self.slots[1:] if ack_id > 0})


class ClusterBroken(Exception):
    """A child died abnormally or the cluster stopped making progress."""


class SupervisedSentinel(Sentinel):
    """Q2's sentinel, but a cluster that lost a child abnormally ends as a whole."""

    def __init__(self, stop_event, start_event, cluster_id, heartbeat, parent_pid: int):
        die_with_parent(parent_pid)
        setproctitle.setproctitle(f"bazaar worker {Conf.CLUSTER_NAME} sentinel")
        self.heartbeat = heartbeat
        self.stall_seconds = settings.Q_STALL_SECONDS
        # Progress beacons the children write through the (forked) broker object.
        self.pusher_beat = Value("d", time.time())
        self.ack_beat = Value("d", time.time())
        self.claimed = ClaimLog()
        self.waiting_since: dict[str, float] = {}
        super().__init__(stop_event, start_event, cluster_id)

    def spawn_cluster(self) -> None:
        self.broker.pusher_beat = self.pusher_beat
        self.broker.ack_beat = self.ack_beat
        self.broker.claimed = self.claimed
        super().spawn_cluster()

    def spawn_process(self, target, *args):
        # Q2's spawn_process, with every child set to die with this sentinel.
        process = get_mp_context().Process(
            target=_child_main,
            args=(os.getpid(), target, *args),
            name=f"Process-{uuid.uuid4().hex}",
        )
        process.daemon = True
        if target == worker:
            process.daemon = Conf.DAEMONIZE_WORKERS
            process.timer = args[2]
            self.pool.append(process)
        process.start()
        return process

    def spawn_pusher(self):
        return self.spawn_process(pusher, self.task_queue, self.event_out, self.broker)

    def spawn_worker(self) -> None:
        self.spawn_process(
            worker, self.task_queue, self.result_queue, Value("f", IDLE), self.timeout
        )

    def spawn_monitor(self):
        return self.spawn_process(monitor, self.result_queue, self.broker)

    def guard(self) -> None:
        queue = self.queue_name()
        logger.info("Q2 cluster [%s] running (sentinel %s)", queue, self.pid)
        self.start_event.set()
        Stat(self).save()
        cycle = Conf.GUARD_CYCLE
        # Schedules at once, then every 30 s: a cluster restarted often must still run them
        # (Q2's scheduler locks the schedule rows, so clusters never fire one twice).
        since_schedule = 30.0
        while True:
            try:
                self.check_children(cycle)
                self.check_progress()
            except ClusterBroken as broken:
                self.end_cluster(str(broken))
            self.heartbeat.value = time.time()
            since_schedule += cycle
            if since_schedule >= 30 and Conf.SCHEDULER:
                since_schedule = 0.0
                self.run_scheduler()
            Stat(self).save()
            if self.stop_event.wait(cycle):
                break
        self.stop()

    def check_children(self, cycle: float) -> None:
        """Replace a child only after a clean exit; any other death ends the cluster."""
        for process in list(self.pool):
            with process.timer.get_lock():
                if not process.is_alive():
                    if killed(process):
                        raise ClusterBroken(
                            f"worker {process.pid} died (exit code {process.exitcode})"
                        )
                    self.reincarnate(process)  # recycled, stopped itself after a timeout
                elif process.timer.value == 0:
                    raise ClusterBroken(f"worker {process.pid} is still running past its timeout")
                elif process.timer.value > 0:
                    process.timer.value = max(process.timer.value - cycle, 0)
        for role, process in (("monitor", self.monitor), ("pusher", self.pusher)):
            if not process.is_alive():
                if killed(process):
                    raise ClusterBroken(f"{role} {process.pid} died (exit code {process.exitcode})")
                self.reincarnate(process)

    def check_progress(self) -> None:
        """End a cluster that is alive but has stopped moving for `stall_seconds`."""
        now = time.time()
        idle_worker = any(process.timer.value == IDLE for process in self.pool)
        busy_worker = any(process.timer.value > 0 for process in self.pool)
        stalls = {
            # Tasks sit in the queue and nobody takes them (a worker holds a dead lock).
            "no worker takes the waiting tasks": not self.task_queue.empty() and not busy_worker,
            # Results sit in the queue and the monitor acknowledges none of them.
            "the monitor acknowledges no results": (
                not self.result_queue.empty() and now - self.ack_beat.value > self.stall_seconds
            ),
            # A worker is free and the pusher has not asked the broker for work.
            "the pusher stopped polling the broker": (
                idle_worker and now - self.pusher_beat.value > self.stall_seconds
            ),
        }
        for reason, stalled in stalls.items():
            if not stalled:
                self.waiting_since.pop(reason, None)
                continue
            since = self.waiting_since.setdefault(reason, now)
            if now - since > self.stall_seconds:
                raise ClusterBroken(f"{reason} for {now - since:.0f} s")

    def run_scheduler(self) -> None:
        try:
            scheduler(broker=self.broker)
        except Exception:
            # The database may be away; the next round (30 s) tries again.
            logger.exception("Q2 scheduler round failed")
            connections.close_all()

    def end_cluster(self, reason: str) -> None:
        """Kill every child, give back the tasks no worker started, and exit; the main
        process starts a fresh cluster."""
        logger.critical(
            "Q2 cluster [%s]: %s; restarting the whole cluster",
            self.queue_name(),
            reason,
        )
        for process in [self.pusher, *self.pool, self.monitor]:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(process.pid, signal.SIGKILL)
        self.release_untaken_tasks()
        os._exit(EXIT_BROKEN)

    def release_untaken_tasks(self) -> None:
        """Make the broker rows this cluster took lately due again, so another cluster runs
        what was waiting in our queue now rather than when its lease ends.

        The pusher notes every row it takes (`broker.claimed`). Releasing one whose task did
        run is harmless: the runner skips a finished task, and one still leased to a dead
        worker gets its check-back at the lease's end.
        """
        ack_ids = self.claimed.recent()
        if not ack_ids:
            return
        try:
            released = OrmQ.objects.filter(pk__in=ack_ids).update(lock=timezone.now())
        except Exception:  # noqa: BLE001 - the database is away: the lease brings them back
            logger.warning("Could not give back the cluster's tasks", exc_info=True)
            return
        if released:
            logger.info("Gave back %s task(s) the cluster had taken to the broker", released)


class ClusterSupervisor:
    """The main process of `run_worker`: one cluster at a time, restarted whenever it ends."""

    RESTART_DELAYS = (0.5, 1, 2, 5)  # seconds, after quick successive failures
    STABLE_AFTER = 60  # seconds a cluster must live for the delay to start over

    def __init__(self, *, queue: str, heartbeat_file: Path | None, stop_timeout: float):
        self.queue = queue
        self.heartbeat_file = heartbeat_file
        self.stop_timeout = stop_timeout
        self.stall_seconds = settings.Q_STALL_SECONDS
        self.stopping = Event()
        # The running cluster's sentinel, its stop event and heartbeat: set by each
        # _run_one_cluster() before anything reads them.
        self.sentinel: BaseProcess
        self.stop_event: synchronize.Event
        self.heartbeat: Synchronized[float]
        self.restarts = 0
        # The same progress, in the database, for /metrics (project.background.liveness).
        self.beater = liveness.Beater(kind=Heartbeat.Kind.WORKER, queue=queue)

    def run(self) -> int:
        setproctitle.setproctitle(f"bazaar worker {self.queue} supervisor")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        # Orphans of a dead sentinel become our children, so none can outlive it unseen.
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        failures = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            reason = self._run_one_cluster()
            self._reap_leftovers()
            if self.stopping.is_set():
                break
            failures = 0 if time.monotonic() - started > self.STABLE_AFTER else failures + 1
            delay = self.RESTART_DELAYS[min(failures, len(self.RESTART_DELAYS)) - 1]
            self.restarts += 1
            logger.critical(
                "Q2 cluster [%s] ended (%s); starting a fresh one in %.1f s (restart %s)",
                self.queue,
                reason,
                delay,
                self.restarts,
            )
            self.stopping.wait(delay)
        self._remove_heartbeat_file()
        logger.info("Q2 cluster [%s] supervisor stopped", self.queue)
        return 0

    def _request_stop(self, signum, frame) -> None:
        self.stopping.set()

    def _run_one_cluster(self) -> str:
        connections.close_all()  # never share a database connection with a forked child
        self.stop_event, start_event = Event(), Event()
        self.heartbeat = Value("d", time.time())
        self.sentinel = get_mp_context().Process(
            target=SupervisedSentinel,
            args=(self.stop_event, start_event, uuid.uuid4(), self.heartbeat, os.getpid()),
            name=f"Sentinel-{self.queue}",
        )
        self.sentinel.start()
        while self.sentinel.is_alive():
            if self.stopping.is_set():
                self._stop_cluster()
                return "stopped"
            stalled = time.time() - self.heartbeat.value
            # A sentinel that is still starting has not beaten yet; give it its own time.
            if stalled > self.stall_seconds + (0 if start_event.is_set() else 30):
                logger.critical(
                    "Q2 sentinel [%s] %s made no progress for %.0f s; killing it",
                    self.queue,
                    self.sentinel.pid,
                    stalled,
                )
                self._kill_sentinel()
                return "sentinel stalled"
            self._write_heartbeat_file(start_event.is_set())
            if start_event.is_set():
                self.beater.beat()
            self.sentinel.join(0.5)
        return f"sentinel exit code {self.sentinel.exitcode}"

    def _stop_cluster(self) -> None:
        """Graceful stop (running tasks finish), bounded: a cluster that cannot stop is killed."""
        self.stop_event.set()
        self.sentinel.join(self.stop_timeout)
        if self.sentinel.is_alive():
            logger.warning("Q2 cluster [%s] did not stop in time; killing it", self.queue)
            self._kill_sentinel()

    def _kill_sentinel(self) -> None:
        pid = self.sentinel.pid  # None only before start()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sentinel.join(5)

    def _reap_leftovers(self) -> None:
        """SIGKILL and reap what is left of an ended cluster (adopted by us as subreaper).

        Reaps by pid, never `waitpid(-1)`, which could take a sentinel's exit status from
        multiprocessing.
        """
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            leftovers = children_of(os.getpid(), zombies=True)
            if not leftovers:
                return
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)

    def _write_heartbeat_file(self, running: bool) -> None:
        if self.heartbeat_file is None or not running:
            return
        try:
            self.heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat_file.touch()
        except OSError:
            logger.exception("Cannot write the worker heartbeat file %s", self.heartbeat_file)

    def _remove_heartbeat_file(self) -> None:
        if self.heartbeat_file is not None:
            self.heartbeat_file.unlink(missing_ok=True)


def heartbeat_path(queue: str) -> Path:
    """Where a worker's liveness heartbeat is written by default."""
    return Path(settings.WORKER_HEARTBEAT_DIR) / f"worker-{queue}.alive"
