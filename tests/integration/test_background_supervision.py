"""Any single death in a worker cluster is recovered on its own, within seconds.

Real `manage.py run_worker` processes; every kind of process in the tree is SIGKILLed in
the state an attacker of the guarantee would pick (an idle worker holds the task queue's
read lock, a busy one holds none, the monitor holds the result queue's), then a task
enqueued afterwards must run within 10 s, nothing may run twice, and no process of the
old cluster may survive beside the new one.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.cache import cache
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_q.models import OrmQ

from project.background import monitoring, schedules
from project.background.models import TaskRecord
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.workers import BASE_DIR, q_workers, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("q_workers")

RECOVERY_SECONDS = 10


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_within_recovery_time(q_workers):  # noqa: F811
    """Enqueue a task now and return the seconds until it has succeeded (fails past 10 s)."""
    started = time.monotonic()
    result = fixture_tasks.noop.enqueue(7)

    def done():
        result.refresh()
        return result.is_finished

    q_workers.wait_for(done, timeout=RECOVERY_SECONDS)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 7
    return time.monotonic() - started


def old_cluster_pids(cluster) -> set[int]:
    """The sentinel and its children, all of which a whole-cluster restart replaces."""
    return set(cluster.descendants())


def assert_replaced_without_orphans(q_workers, cluster, before: set[int]) -> None:  # noqa: F811
    q_workers.wait_for(lambda: not any(alive(pid) for pid in before), timeout=5)
    q_workers.wait_for(lambda: len(cluster.roles()["worker"]) == 2, timeout=RECOVERY_SECONDS)
    assert cluster.process.poll() is None  # the supervisor itself lives on
    assert not set(cluster.descendants()) & before


@pytest.mark.parametrize("role", ["worker", "monitor", "pusher"])
def test_a_killed_idle_child_restarts_the_cluster_and_the_next_task_runs_within_10_s(
    q_workers,  # noqa: F811
    role,
):
    [cluster] = q_workers.start("critical").values()
    run_within_recovery_time(q_workers)  # warm: every child has done its first round
    before = old_cluster_pids(cluster)
    victim = cluster.roles()[role][0]

    os.kill(victim, signal.SIGKILL)

    assert_replaced_without_orphans(q_workers, cluster, before)
    run_within_recovery_time(q_workers)
    assert "restarting the whole cluster" in cluster.log()


def test_a_killed_sentinel_takes_its_children_with_it_and_is_replaced(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical").values()
    before = old_cluster_pids(cluster)

    os.kill(cluster.sentinel(), signal.SIGKILL)

    assert_replaced_without_orphans(q_workers, cluster, before)
    run_within_recovery_time(q_workers)


def test_a_killed_busy_worker_is_recovered_once_and_new_work_runs_meanwhile(
    q_workers,  # noqa: F811
):
    [cluster] = q_workers.start("critical").values()
    key = f"busy-{os.getpid()}-{time.monotonic_ns()}"
    slow = fixture_tasks.slow_once.enqueue(key, seconds=30)
    record = q_workers.wait_for(
        lambda: TaskRecord.objects.filter(pk=slow.id, status="RUNNING").first(), timeout=10
    )
    victim = int(record.worker_ids[-1].rsplit(":", 1)[1])
    assert victim in cluster.descendants()
    before = old_cluster_pids(cluster)

    os.kill(victim, signal.SIGKILL)

    assert_replaced_without_orphans(q_workers, cluster, before)
    run_within_recovery_time(q_workers)
    # The killed attempt is taken over when its lease ends, and completes exactly once.
    q_workers.wait_for(lambda: slow.refresh() or slow.is_finished, timeout=30)
    assert slow.status == TaskResultStatus.SUCCESSFUL
    assert slow.attempts == 2
    assert slow.errors[0].exception_class_path == "project.background.runner.WorkerLost"
    assert fixture_tasks.count(f"{key}:completed") == 1


def test_a_worker_that_exits_on_its_own_is_replaced_alone(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical").values()
    sentinel = cluster.sentinel()
    key = f"exit-{os.getpid()}-{time.monotonic_ns()}"

    result = fixture_tasks.exit_worker_once.enqueue(key)

    # The worker went through Python's shutdown (no lock left taken): only it is replaced.
    q_workers.wait_for(lambda: fixture_tasks.count(f"{key}:started") >= 1, timeout=10)
    q_workers.wait_for(lambda: len(cluster.roles()["worker"]) == 2, timeout=10)
    run_within_recovery_time(q_workers)
    assert cluster.sentinel() == sentinel
    assert "restarting the whole cluster" not in cluster.log()
    # Its attempt is taken over when the lease ends, and completes once.
    q_workers.wait_for(lambda: result.refresh() or result.is_finished, timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert fixture_tasks.count(f"{key}:completed") == 1


def test_tasks_a_dying_cluster_had_taken_but_not_started_run_at_once_elsewhere(
    q_workers,  # noqa: F811
):
    [cluster] = q_workers.start("critical").values()
    key = f"busy-{os.getpid()}-{time.monotonic_ns()}"
    busy = [fixture_tasks.slow_once.enqueue(f"{key}-{n}", seconds=30) for n in range(2)]
    q_workers.wait_for(
        lambda: (
            TaskRecord.objects.filter(pk__in=[r.id for r in busy], status="RUNNING").count() == 2
        ),
        timeout=10,
    )
    # Both workers are busy: the pusher takes this one into the cluster's queue, where it waits.
    waiting = fixture_tasks.noop.enqueue(3)
    q_workers.wait_for(
        lambda: not OrmQ.objects.filter(key="critical", lock__lte=timezone.now()).exists(),
        timeout=5,
    )
    victim = cluster.roles()["worker"][0]
    killed_at = time.monotonic()

    os.kill(victim, signal.SIGKILL)

    # Given back to the broker as the cluster ends, not left to its lease (Q_LEASE_SECONDS).
    q_workers.wait_for(lambda: waiting.refresh() or waiting.is_finished, timeout=10)
    assert time.monotonic() - killed_at < 5
    assert "Gave back" in cluster.log()


def test_a_task_stuck_behind_a_dead_read_lock_is_given_back_at_once(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical", Q_STALL_SECONDS="2").values()
    run_within_recovery_time(q_workers)
    workers = cluster.roles()["worker"]
    # Every worker frozen while idle: one of them holds the task queue's read lock.
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()

    waiting = fixture_tasks.noop.enqueue(5)

    # Nobody takes it: the watchdog ends the cluster after Q_STALL_SECONDS, and the task,
    # unreadable behind the lock, is given back from the pusher's notes, not its lease.
    q_workers.wait_for(lambda: waiting.refresh() or waiting.is_finished, timeout=10)
    assert time.monotonic() - started < 8
    assert "no worker takes the waiting tasks" in cluster.log()
    assert "Gave back" in cluster.log()
    assert not any(alive(pid) for pid in workers)


def test_a_killed_monitor_leaves_no_delivery_repeating_forever(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical").values()
    results = [fixture_tasks.noop.enqueue(n) for n in range(3)]
    q_workers.wait_for(lambda: all(r.refresh() or r.is_finished for r in results), timeout=10)

    os.kill(cluster.roles()["monitor"][0], signal.SIGKILL)
    run_within_recovery_time(q_workers)

    # Every broker row is acknowledged (deleted): nothing is delivered again and again.
    q_workers.wait_for(lambda: not OrmQ.objects.filter(key="critical").exists(), timeout=15)
    assert all(TaskRecord.objects.get(pk=r.id).attempts == 1 for r in results)


def test_a_killed_main_process_leaves_no_orphan_and_a_new_one_takes_over(
    q_workers,  # noqa: F811
):
    [cluster] = q_workers.start("critical").values()
    # Tasks queued while nothing runs: the new cluster must take them within its lease.
    tree = [cluster.pid, *cluster.descendants()]

    os.kill(cluster.pid, signal.SIGKILL)
    cluster.process.wait(timeout=5)

    # The kernel takes the sentinel, and with it every worker, the monitor and the pusher.
    wait_for(lambda: not any(alive(pid) for pid in tree), timeout=5)
    queued = [fixture_tasks.noop.enqueue(n) for n in range(3)]
    q_workers.stop("critical")
    # Its process manager starts it again.
    q_workers.start("critical")
    q_workers.wait_for(
        lambda: all(r.refresh() or r.is_finished for r in queued), timeout=RECOVERY_SECONDS
    )
    run_within_recovery_time(q_workers)


def test_sigterm_stops_a_cluster_and_all_its_processes(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical").values()
    tree = [cluster.pid, *cluster.descendants()]

    os.kill(cluster.pid, signal.SIGTERM)

    assert cluster.process.wait(timeout=15) == 0
    wait_for(lambda: not any(alive(pid) for pid in tree), timeout=5)
    assert not cluster.heartbeat_file.exists()


def test_a_frozen_monitor_is_detected_and_the_cluster_restarted(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical", Q_STALL_SECONDS="2").values()
    run_within_recovery_time(q_workers)
    monitor_pid = cluster.roles()["monitor"][0]
    before = old_cluster_pids(cluster)

    # Alive but not making progress: the results it should acknowledge pile up.
    os.kill(monitor_pid, signal.SIGSTOP)
    results = [fixture_tasks.noop.enqueue(n) for n in range(2)]

    assert_replaced_without_orphans(q_workers, cluster, before)
    assert "the monitor acknowledges no results" in cluster.log()
    q_workers.wait_for(lambda: all(r.refresh() or r.is_finished for r in results), timeout=15)
    run_within_recovery_time(q_workers)


def test_metrics_and_the_alert_report_a_queue_that_is_alive_but_stalled(
    q_workers,  # noqa: F811
    settings,
    client,
):
    settings.Q_STALL_SECONDS = 2
    settings.QUEUE_ALERT_INTERVAL = 300
    cache.delete("background:queue-alert:stalled:critical")
    # Watchdog of the cluster itself far away, so the stall stays for us to observe.
    [cluster] = q_workers.start("critical", Q_STALL_SECONDS="600").values()
    run_within_recovery_time(q_workers)
    assert monitoring.queue_stats()["critical"]["stalled"] is False
    group = os.getpgid(cluster.pid)

    os.killpg(group, signal.SIGSTOP)  # every process of the cluster frozen: alive, no progress
    try:
        waiting = fixture_tasks.noop.enqueue(1)
        wait_for(lambda: monitoring.queue_stats()["critical"]["stalled"], timeout=10)
        assert monitoring.check_queue_depths() == ["critical"]  # the alert, once per interval
        assert monitoring.check_queue_depths() == []
        metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
        assert 'bazaar_task_queue_stalled{queue="critical"} 1.0' in metrics
        readyz = client.get("/readyz").json()
        assert readyz["task_queues"] == "stalled: critical"
    finally:
        os.killpg(group, signal.SIGCONT)

    q_workers.wait_for(lambda: waiting.refresh() or waiting.is_finished, timeout=RECOVERY_SECONDS)
    wait_for(lambda: not monitoring.queue_stats()["critical"]["stalled"], timeout=10)


def test_the_liveness_probe_follows_the_heartbeat(q_workers):  # noqa: F811
    [cluster] = q_workers.start("critical", Q_STALL_SECONDS="2").values()
    probe = [
        sys.executable,
        str(BASE_DIR / "manage.py"),
        "worker_alive",
        "critical",
        "--heartbeat-file",
        str(cluster.heartbeat_file),
        "--max-age",
        "3",
    ]
    env = q_workers.env("critical")
    assert subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0

    os.kill(cluster.pid, signal.SIGSTOP)  # the supervisor hangs: nobody beats
    try:
        time.sleep(3.5)
        stale = subprocess.run(probe, env=env, capture_output=True, text=True, check=False)
    finally:
        os.kill(cluster.pid, signal.SIGCONT)
    assert stale.returncode == 1
    assert "heartbeat is" in stale.stderr


def test_a_schedule_row_delivered_twice_in_one_interval_runs_its_work_once(db):
    name = f"test-schedule-{time.monotonic_ns()}"
    runs_before = fixture_tasks.count(fixture_tasks.SCHEDULE_RUNS_KEY)

    first = schedules.run_scheduled(name, "tests.fixtures.tasks.count_schedule_run")
    again = schedules.run_scheduled(name, "tests.fixtures.tasks.count_schedule_run")

    assert (first, again) == ("ran", "skipped")
    assert fixture_tasks.count(fixture_tasks.SCHEDULE_RUNS_KEY) == runs_before + 1
