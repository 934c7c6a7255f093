"""The one CSV writer for files people open in a spreadsheet (reports, product exports).

A cell whose text starts with =, +, -, @, tab or carriage return could run as a formula in
Excel, LibreOffice or Google Sheets (CSV injection: a shop named `=HYPERLINK(...)` in staff's
marketplace report). Such a cell is written with a single quote in front, as OWASP advises,
so the spreadsheet shows it as text.

Genuine numbers stay numbers: int, Decimal and float values, and text that is a plain number
such as "-12.50" or "+3", are written unchanged, because a spreadsheet cannot run a plain
number and quoting one would turn every negative amount into text that no longer adds up.

`unescape_cell` undoes the quote, so a file exported here and imported again (the product
CSV) round-trips.
"""

import csv
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def escape_cell(value: Any) -> Any:
    """The value as it may safely go into a CSV cell (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(text):
        return ESCAPE + text
    return text


def unescape_cell(text: str) -> str:
    """Undo `escape_cell` on a cell read back from one of our files."""
    if text.startswith(ESCAPE) and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


class SafeWriter:
    """csv.writer's writerow/writerows, with every cell passed through `escape_cell`."""

    def __init__(self, file: Any, **options: Any) -> None:
        self._writer = csv.writer(file, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([escape_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(file: Any, **options: Any) -> SafeWriter:
    """Like `csv.writer(file, **options)`, escaping formula cells."""
    return SafeWriter(file, **options)
