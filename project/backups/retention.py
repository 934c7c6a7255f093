"""Which backups to keep: the newest of each of the last `daily` days, `weekly` ISO weeks
and `monthly` months that have a backup (grandfather-father-son). Everything else may go."""

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime

Period = Callable[[datetime], Hashable]

DAY: Period = lambda stamp: stamp.date()  # noqa: E731 - a table of one-line keys
WEEK: Period = lambda stamp: stamp.isocalendar()[:2]  # noqa: E731
MONTH: Period = lambda stamp: (stamp.year, stamp.month)  # noqa: E731


def backups_to_keep(
    stamps: Iterable[datetime], *, daily: int, weekly: int, monthly: int
) -> set[datetime]:
    newest_first = sorted(stamps, reverse=True)
    keep: set[datetime] = set()
    for count, period in ((daily, DAY), (weekly, WEEK), (monthly, MONTH)):
        periods_seen: set[Hashable] = set()
        for stamp in newest_first:
            if len(periods_seen) >= count:
                break
            if period(stamp) not in periods_seen:
                periods_seen.add(period(stamp))
                keep.add(stamp)
    return keep
