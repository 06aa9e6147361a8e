"""The one reader of job arguments (`[jobs.<id>.args]` in the jobs file).

Every reader takes the value as the user wrote it, checks its declared type
with no silent coercion (a string is never read as a number, a bare number
string is never read as a duration), and raises `JobArgError` whose message
names the key (`args.<key>: expected ...`). Numbers must be finite.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import pandas as pd

from ops.core.clock import ZONE_EXPECTED, parse_zone
from ops.core.errors import JobArgError

__all__ = ["JobArgError", "day", "duration", "flag", "known_keys", "number", "whole", "zone", "zones"]

_HAS_UNIT = re.compile(r"[A-Za-z]")


def _shown(value: Any) -> str:
    return repr(str(value)[:40]) if not isinstance(value, str) else repr(value[:40])


def known_keys(args: dict[str, Any], allowed: Iterable[str], what: str = "") -> None:
    """JobArgError on the first key not in `allowed` (sorted, so the message is stable)."""
    allowed = set(allowed)
    unknown = sorted(set(args) - allowed)
    if unknown:
        listed = what or ", ".join(sorted(allowed))
        raise JobArgError(f"args.{unknown[0]}: unknown key (expected one of: {listed})")


def number(value: Any, where: str, *, minimum: float = 0.0, positive: bool = False) -> float:
    """A finite int or float, at least `minimum` (greater than it when `positive`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobArgError(f"{where}: expected a number, got {_shown(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise JobArgError(f"{where}: expected a finite number, got {_shown(value)}")
    if out < minimum or (positive and out <= minimum):
        if minimum == 0:
            raise JobArgError(f"{where}: expected a {'positive' if positive else 'non-negative'} number")
        raise JobArgError(f"{where}: expected a number {'above' if positive else 'of at least'} {minimum:g}")
    return out


def whole(value: Any, where: str, *, minimum: int = 0, noun: str = "a whole number of ") -> int:
    """A whole number (an int, or a float with no fraction), at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
        raise JobArgError(f"{where}: expected a whole number, got {_shown(value)}")
    out = int(value)
    if out < minimum:
        raise JobArgError(f"{where}: expected {noun}at least {minimum}")
    return out


def duration(value: Any, where: str, *, numbers_are: str | None = None, positive: bool = False,
             example: str = "15min or 2h") -> dt.timedelta:
    """A duration written with its unit ("7D", "36h", "15min").

    `numbers_are="days"` also takes a bare number as days (a retention of 7);
    a string of digits alone ("7") is always refused: pandas would read it
    as nanoseconds.
    """
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            if numbers_are is None or not math.isfinite(value):
                raise ValueError
            out = pd.Timedelta(**{numbers_are: value}).to_pytimedelta()
        elif isinstance(value, str) and _HAS_UNIT.search(value):
            out = pd.Timedelta(value.strip()).to_pytimedelta()
        else:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        lead = f"{numbers_are} or a duration such as 7D or 36h" if numbers_are else f"a duration such as {example}"
        raise JobArgError(f"{where}: expected {lead}, got {_shown(value)}") from None
    if out < dt.timedelta(0) or (positive and out == dt.timedelta(0)):
        raise JobArgError(f"{where}: expected a {'positive' if positive else 'non-negative'} duration"
                          if positive else f"{where}: expected a duration that is not negative")
    return out


def zone(value: Any, where: str) -> ZoneInfo:
    """An IANA time zone name."""
    try:
        return parse_zone(value)
    except ValueError:
        raise JobArgError(f"{where}: {ZONE_EXPECTED}, got {_shown(value)}") from None


def zones(value: Any, where: str) -> list[str]:
    """A list of IANA time zone names, kept as written (each one checked)."""
    if not isinstance(value, (list, tuple)):
        raise JobArgError(f"{where}: expected a list of time zone names, got {_shown(value)}")
    for name in value:
        zone(name, where)
    return list(value)


def flag(value: Any, where: str) -> bool:
    """true or false (a TOML boolean; the string "false" is refused, not read as true)."""
    if not isinstance(value, bool):
        raise JobArgError(f"{where}: expected true or false, got {_shown(value)}")
    return value


def day(value: Any, where: str) -> dt.date:
    """A calendar day: a TOML date or a "YYYY-MM-DD" string."""
    if isinstance(value, dt.date):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise JobArgError(f"{where}: expected a date such as 2026-11-30, got {_shown(value)}") from None
