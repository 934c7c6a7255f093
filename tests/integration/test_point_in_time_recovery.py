"""docs/operations.md's WAL archiving, point-in-time recovery and replica promotion, run as
written on private PostgreSQL servers (this machine's installed binaries, own ports and
folders): a primary archiving with the documented `archive_command`, a `pg_basebackup`
base backup, a streaming standby made with `pg_basebackup -R`; then the primary is lost,
a copy is recovered to a moment between two commits, and the standby is promoted."""

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from chaos.services import _as_postgres, _pg_bin, free_port


class Server:
    """One private PostgreSQL data directory and the port it serves on."""

    def __init__(self, root: Path, name: str):
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()
        self.socket_dir = root

    def run(self, *argv: str) -> str:
        result = subprocess.run(  # noqa: S603 - the installed PostgreSQL tools
            _as_postgres([str(_pg_bin() / argv[0]), *argv[1:]]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{argv[0]}: {result.stderr}"
        return result.stdout

    def configure(self, text: str) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(text)

    def start(self) -> None:
        # fsync off: a throwaway server, and the machine is shared.
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def sql(self, query: str):
        url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
            cursor = connection.execute(query)
            return cursor.fetchall() if cursor.description else None


@pytest.fixture
def root():
    """A folder the postgres user may write (PostgreSQL refuses to run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="bazaar-pitr-"))
    folder.chmod(0o755)
    _give_to_postgres(folder)
    servers: list[Server] = []
    yield folder, servers
    for server in servers:
        server.stop("immediate")  # thrown away: no shutdown checkpoint needed
    shutil.rmtree(folder, ignore_errors=True)


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        shutil.chown(item, user="postgres", group="postgres")


def _wait_archived(primary: Server, segment: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ((last,),) = primary.sql("SELECT last_archived_wal FROM pg_stat_archiver")
        if last is not None and last >= segment:
            return
        time.sleep(0.1)
    raise AssertionError(f"{segment} was not archived")


def _replication_states(primary: Server) -> list[tuple]:
    """pg_stat_replication's states once a standby streams, or as they are after 30 s: the
    standby connects in its own time (seconds, on a loaded machine)."""
    deadline = time.monotonic() + 30
    states = primary.sql("SELECT state FROM pg_stat_replication")
    while states != [("streaming",)] and time.monotonic() < deadline:
        time.sleep(0.1)
        states = primary.sql("SELECT state FROM pg_stat_replication")
    return states


def test_recover_to_a_moment_from_the_wal_archive_and_promote_the_standby(root):
    folder, servers = root
    archive = folder / "wal-archive"
    archive.mkdir()
    _give_to_postgres(archive)
    primary = Server(folder, "primary")
    servers.append(primary)
    primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "--no-sync")
    primary.configure(
        "wal_level = replica\narchive_mode = on\n"
        f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n"
        "archive_timeout = 60\n"
    )
    with (primary.data / "pg_hba.conf").open("a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 trust\n")
    primary.start()
    primary.sql("CREATE TABLE note (id int PRIMARY KEY)")
    primary.sql("INSERT INTO note VALUES (1)")
    base = folder / "base"
    primary.run(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
        "-D", str(base), "--format=tar", "--gzip", "--wal-method=fetch", "--checkpoint=fast",
    )  # fmt: skip
    primary.sql("INSERT INTO note VALUES (2)")
    time.sleep(0.2)
    ((target,),) = primary.sql("SELECT now()::text")
    time.sleep(0.2)
    primary.sql("INSERT INTO note VALUES (3)")  # the mistake to go back before
    standby = Server(folder, "standby")
    servers.append(standby)
    primary.run(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
        "-D", str(standby.data), "-R", "--wal-method=stream", "--slot=standby1",
        "--create-slot", "--checkpoint=fast",
    )  # fmt: skip
    standby.configure("archive_mode = off\n")
    standby.start()
    ((segment,),) = primary.sql("SELECT pg_walfile_name(pg_switch_wal())")
    _wait_archived(primary, segment)
    streaming = _replication_states(primary)
    primary.stop()  # the primary is lost

    restored = Server(folder, "restored")
    servers.append(restored)
    restored.data.mkdir(mode=0o700)
    with tarfile.open(base / "base.tar.gz") as tar:
        tar.extractall(restored.data, filter="data")
    _give_to_postgres(restored.data)
    restored.configure(
        "archive_mode = off\n"
        f"restore_command = 'cp {archive}/%f %p'\n"
        f"recovery_target_time = '{target}'\n"
        "recovery_target_action = 'promote'\n"
    )
    (restored.data / "recovery.signal").touch()
    restored.start()
    deadline = time.monotonic() + 30
    while restored.sql("SELECT pg_is_in_recovery()") == [(True,)]:
        assert time.monotonic() < deadline, "recovery did not finish"
        time.sleep(0.1)

    assert streaming == [("streaming",)]
    assert restored.sql("SELECT id FROM note ORDER BY id") == [(1,), (2,)]
    assert "recovery stopping before commit" in restored.log.read_text()
    assert not (restored.data / "recovery.signal").exists()

    assert standby.sql("SELECT pg_promote()") == [(True,)]
    assert standby.sql("SELECT pg_is_in_recovery()") == [(False,)]
    standby.sql("INSERT INTO note VALUES (4)")
    assert standby.sql("SELECT id FROM note ORDER BY id") == [(1,), (2,), (3,), (4,)]
