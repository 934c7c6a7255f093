"""The process table, read from /proc (Linux): who is whose child, in which group and state.

Plain Python, no Django: the worker supervisor, the tests and the chaos run all use it.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str  # "R", "S", "Z" (zombie), …
    start: int  # clock ticks after boot, to order processes by birth


def process_table(*, zombies: bool = False) -> dict[int, Proc]:
    """Every process (zombies only if asked)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; the fields follow it.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X") and not zombies:
            continue
        pid = int(entry.name)
        table[pid] = Proc(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))
    return table


def children(table: dict[int, Proc], pid: int) -> list[Proc]:
    """The children of `pid` in `table`, oldest first."""
    return sorted((p for p in table.values() if p.ppid == pid), key=lambda p: (p.start, p.pid))


def children_of(pid: int, *, zombies: bool = False) -> list[int]:
    """The pids of `pid`'s children, oldest first."""
    return [proc.pid for proc in children(process_table(zombies=zombies), pid)]
