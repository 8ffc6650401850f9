"""The one way Waimai writes CSV: cells that a spreadsheet would run as a formula are neutralised.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel, WPS and
LibreOffice (`=HYPERLINK(...)` in a customer's note, `@SUM(...)` in an adjustment reason). As OWASP's
"CSV Injection" advises, such a cell gets a leading single quote, which the spreadsheet shows as text.
Numbers stay numbers: an int, a float or a text that is just a signed decimal (`-3.05` in an amount column)
is written as it is; `-2+3` or `+1)*cmd` are not plain numbers and get the quote.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer with every text cell passed through `safe_cell`."""

    def __init__(self, f: IO[str], **fmt: Any) -> None:
        self._w = csv.writer(f, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._w.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f: IO[str], **fmt: Any) -> SafeWriter:
    return SafeWriter(f, **fmt)
