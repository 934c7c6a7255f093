"""Telling a Django-Q2 cluster's processes apart.

Three sources, the first that answers wins:

1. Process titles. With setproctitle installed, Django-Q2 names its children
   `qcluster <name> idle` / `qcluster <name> processing <task> ...` (workers),
   `qcluster <name> monitor` and `qcluster <name> pusher`, and `run_worker` names its own
   `bazaar worker <queue> supervisor` (the cluster's main process) and
   `bazaar worker <queue> sentinel`. Read from /proc/<pid>/cmdline; a worker is busy while
   its title says "processing".
2. Django-Q2's own status (`django_q.status.Stat`, saved in the cache by each sentinel every
   guard cycle): the cluster's main process (`pid`), its `sentinel`, `monitor`, `pusher` and
   `workers`. Busy workers then come from our task records: a RUNNING TaskRecord's last
   `worker_ids` entry is "host:pid" of the worker running it.
3. The process tree, when neither answers (no setproctitle and the cache is down): the
   sentinel is the first process under the top-level one with several children; it spawns
   its workers first, then the monitor, then the pusher, so roles learnt earlier are
   remembered by pid and a cluster never seen before is read by spawn order.
"""

import logging
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from chaos.processes import Managed
from project.procfs import Proc, children, process_table

logger = logging.getLogger("chaos")

WORKER_TITLE = re.compile(r"^qcluster \S+ (idle|processing\b)")
AUX_TITLE = re.compile(r"^qcluster \S+ (monitor|pusher)$")


@dataclass
class Parts:
    cluster: str
    queue: str
    main: int | None = None
    sentinel: int | None = None
    monitor: int | None = None
    pusher: int | None = None
    workers: list[int] = field(default_factory=list)
    busy: set[int] | None = None  # known from titles; None: ask the task records
    source: str = "tree"


def title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _descendants(table: dict[int, Proc], pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        kids = [child.pid for parent in frontier for child in children(table, parent)]
        found += kids
        frontier = kids
    return found


class Anatomy:
    def __init__(self, worker_counts: dict[str, int]) -> None:
        self.worker_counts = worker_counts
        # pid -> (cluster name, role), for every cluster process ever seen.
        self.roles: dict[int, tuple[str, str]] = {}

    def stats(self) -> list:
        from django_q.status import Stat

        try:
            return Stat.get_all()
        except Exception:  # noqa: BLE001 - the cache may be down; the tree still answers
            logger.debug("Django-Q2 status unavailable", exc_info=True)
            return []

    def read(self, managed: list[Managed]) -> list[Parts]:
        table = process_table()
        stats = None
        found = []
        for cluster in managed:
            if cluster.pid is None:
                continue
            tree = [cluster.pid, *_descendants(table, cluster.pid)]
            parts = self._from_titles(cluster, table, tree)
            if parts is None:
                stats = self.stats() if stats is None else stats
                stat = next((s for s in stats if s.sentinel in tree and s.pid in tree), None)
                parts = (
                    self._from_stat(cluster, stat, set(tree))
                    if stat is not None
                    else self._from_tree(cluster, table)
                )
            self._remember(parts)
            found.append(parts)
        return found

    def _remember(self, parts: Parts) -> None:
        for role, pids in (
            ("main", [parts.main]),
            ("sentinel", [parts.sentinel]),
            ("monitor", [parts.monitor]),
            ("pusher", [parts.pusher]),
            ("worker", parts.workers),
        ):
            for pid in pids:
                if pid:
                    self.roles[pid] = (parts.cluster, role)

    def _from_titles(self, cluster: Managed, table: dict[int, Proc], tree: list[int]):
        titles = {pid: title(pid) for pid in tree}
        workers = [pid for pid in tree if WORKER_TITLE.match(titles[pid])]
        aux = {AUX_TITLE.match(t).group(1): pid for pid, t in titles.items() if AUX_TITLE.match(t)}
        if not workers and not aux:
            return None
        parent_pids = {table[pid].ppid for pid in [*workers, *aux.values()] if pid in table}
        sentinel = next((pid for pid in tree if titles[pid].endswith(" sentinel")), None)
        if sentinel is None and len(parent_pids) == 1:
            sentinel = parent_pids.pop()
        return Parts(
            cluster=cluster.spec.name,
            queue=cluster.spec.queue,
            main=cluster.pid,
            sentinel=sentinel,
            monitor=aux.get("monitor"),
            pusher=aux.get("pusher"),
            workers=workers,
            busy={pid for pid in workers if " processing " in titles[pid]},
            source="titles",
        )

    def _from_stat(self, cluster: Managed, stat, tree: set[int]) -> Parts:
        return Parts(
            cluster=cluster.spec.name,
            queue=cluster.spec.queue,
            main=stat.pid,
            sentinel=stat.sentinel,
            monitor=stat.monitor if stat.monitor in tree else None,
            pusher=stat.pusher if stat.pusher in tree else None,
            workers=[pid for pid in stat.workers if pid in tree],
            source="stat",
        )

    def _from_tree(self, cluster: Managed, table: dict[int, Proc]) -> Parts:
        parts = Parts(cluster=cluster.spec.name, queue=cluster.spec.queue)
        frontier = [cluster.pid]
        while frontier and parts.sentinel is None:
            for pid in frontier:
                if len(children(table, pid)) >= 2:
                    parts.sentinel, parts.main = pid, table[pid].ppid
                    break
            frontier = [child.pid for pid in frontier for child in children(table, pid)]
        if parts.sentinel is None:
            return parts
        kids = [child.pid for child in children(table, parts.sentinel)]
        known = {pid: self.roles[pid][1] for pid in kids if pid in self.roles}
        if not known and len(kids) == self.worker_counts.get(cluster.spec.queue, 0) + 2:
            known = {pid: "worker" for pid in kids[:-2]} | {kids[-2]: "monitor", kids[-1]: "pusher"}
        parts.workers = [pid for pid in kids if known.get(pid) == "worker"]
        parts.monitor = next((pid for pid in kids if known.get(pid) == "monitor"), None)
        parts.pusher = next((pid for pid in kids if known.get(pid) == "pusher"), None)
        return parts

    def cluster_of(self, pid: int) -> str | None:
        entry = self.roles.get(pid)
        return entry[0] if entry else None


def busy_worker_pids() -> set[int]:
    """Pids of the workers running a task right now, by our task records (this host)."""
    from django.tasks import TaskResultStatus

    from project.background.models import TaskRecord

    host = socket.gethostname()
    pids = set()
    for worker_ids in TaskRecord.objects.filter(status=TaskResultStatus.RUNNING).values_list(
        "worker_ids", flat=True
    ):
        if worker_ids:
            name, _, pid = str(worker_ids[-1]).rpartition(":")
            if name == host and pid.isdigit():
                pids.add(int(pid))
    return pids
