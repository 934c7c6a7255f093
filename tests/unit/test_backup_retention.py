"""Backup retention: the newest backup of each of the last 7 days, 4 ISO weeks and 12 months
is kept (BACKUP_KEEP_DAILY / _WEEKLY / _MONTHLY), every other finished backup is deleted,
and a folder that is not a finished backup is never touched."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command

from project.backups import retention

# One backup a night at 02:00 from 2025-11-01 to 2026-12-01, and a second one on the last day.
LAST_DAY = date(2026, 12, 1)  # a Tuesday, ISO week 49
NIGHTLY = [
    datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    for day in (LAST_DAY - timedelta(days=n) for n in range(396))
]
LATEST = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)

KEPT_DAYS = ["2026-12-01T14:30", *(f"2026-11-{day}T02:00" for day in range(30, 24, -1))]
KEPT_WEEKS = ["2026-11-22T02:00", "2026-11-15T02:00"]  # weeks 47 and 46; 48's is 11-29
KEPT_MONTHS = [
    f"{month}T02:00"
    for month in [
        "2026-10-31", "2026-09-30", "2026-08-31", "2026-07-31", "2026-06-30",
        "2026-05-31", "2026-04-30", "2026-03-31", "2026-02-28", "2026-01-31",
    ]
]  # fmt: skip
EXPECTED = sorted(KEPT_DAYS + KEPT_WEEKS + KEPT_MONTHS)


def _folder(stamp: datetime) -> str:
    return f"bazaar-{stamp:%Y%m%dT%H%M%SZ}"


def test_keeps_the_newest_of_each_of_the_last_days_weeks_and_months():
    kept = retention.backups_to_keep([*NIGHTLY, LATEST], daily=7, weekly=4, monthly=12)

    assert sorted(f"{stamp:%Y-%m-%dT%H:%M}" for stamp in kept) == EXPECTED
    assert len(kept) == 19


def test_a_fresh_installation_keeps_everything_it_has():
    three = NIGHTLY[:3]

    assert retention.backups_to_keep(three, daily=7, weekly=4, monthly=12) == set(three)


@pytest.fixture
def backup_folder(tmp_path):
    for stamp in [*NIGHTLY, LATEST]:
        folder = tmp_path / _folder(stamp)
        folder.mkdir()
        (folder / "database.dump").write_bytes(b"dump")
        (folder / "manifest.json").write_text("{}")
    # An unfinished backup (no manifest) and somebody's own folder: never pruned.
    (tmp_path / "bazaar-20250101T020000Z").mkdir()
    (tmp_path / "bazaar-20250101T020000Z" / "database.dump").write_bytes(b"partial")
    (tmp_path / "keep-me").mkdir()
    return tmp_path


def test_prune_backups_deletes_what_retention_does_not_keep(backup_folder, capsys):
    call_command("prune_backups", dir=str(backup_folder))

    left = sorted(path.name for path in backup_folder.iterdir())
    expected = sorted(
        [_folder(datetime.fromisoformat(stamp).replace(tzinfo=UTC)) for stamp in EXPECTED]
        + ["bazaar-20250101T020000Z", "keep-me"]
    )
    assert left == expected
    assert "Kept 19 backups; Deleted 378." in capsys.readouterr().out


def test_prune_backups_dry_run_deletes_nothing(backup_folder, capsys):
    before = sorted(path.name for path in backup_folder.iterdir())

    call_command("prune_backups", dir=str(backup_folder), dry_run=True)

    assert sorted(path.name for path in backup_folder.iterdir()) == before
    output = capsys.readouterr().out
    assert f"would delete {_folder(NIGHTLY[7])}" in output
    assert "Kept 19 backups; Would delete 378." in output


def test_retention_counts_come_from_the_settings(backup_folder, settings):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 2, 0, 0

    call_command("prune_backups", dir=str(backup_folder))

    finished = sorted(
        path.name for path in backup_folder.iterdir() if (path / "manifest.json").exists()
    )
    assert finished == [_folder(NIGHTLY[1]), _folder(LATEST)]
