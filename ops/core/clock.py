"""Time: the one `utc_now`, the one way to read a time zone name, and silence-style durations."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ops.core.errors import SettingsError

ZONE_EXPECTED = "expected an IANA time zone name such as Europe/Istanbul or UTC"


CLOCK_OFFSET_VAR = "OPSBENCH_CLOCK_OFFSET"
_LONGEST_OFFSET_S = 100 * 366 * 86400.0


def clock_offset() -> dt.timedelta:
    """How far opsbench's clock runs from the wall clock: `OPSBENCH_CLOCK_OFFSET` seconds (default 0).

    It moves every process started with it to the same other moment while time still
    passes (leases, timeouts and backoffs keep working): the test suite pins its date this
    way, CLI subprocesses and notebook kernels included, and a replay can run a past day.
    Read at every call, so a process that changes its environment follows."""
    raw = os.environ.get(CLOCK_OFFSET_VAR, "").strip()
    if not raw:
        return dt.timedelta(0)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or abs(seconds) > _LONGEST_OFFSET_S:
        raise SettingsError(f"{CLOCK_OFFSET_VAR}: expected a number of seconds to add to the clock, such as "
                            f"-86400, got {raw[:40]!r}")
    return dt.timedelta(seconds=seconds)


def utc_now() -> dt.datetime:
    """Now, timezone-aware in UTC (the wall clock plus `clock_offset()`).

    Code takes a `clock` defaulting to this, so tests can also move time per call."""
    return dt.datetime.now(dt.timezone.utc) + clock_offset()


def parse_date(value: object) -> dt.date | None:
    """A calendar day from a date, a datetime or ISO text; empty means None. ValueError names what it got."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def parse_zone(value: Any) -> ZoneInfo:
    """A `ZoneInfo` from a zone name (or a ZoneInfo). ValueError with ZONE_EXPECTED otherwise."""
    if isinstance(value, ZoneInfo):
        return value
    name = str(value).strip() if value is not None else ""
    if not name:
        raise ValueError(ZONE_EXPECTED)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # a KeyError; OSError: a name too long for a path
        raise ValueError(ZONE_EXPECTED) from None


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The calendar day `moment` falls on in `zone` (days are cut in the founder's zone)."""
    return moment.astimezone(zone).date()


_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_EXPECTED = "expected a duration such as 2h, 90m, 1h30m or 3d"
LONGEST_SILENCE = dt.timedelta(days=366)


def parse_duration(text: str) -> dt.timedelta:
    """'2h', '90m', '1h30m', '3d' -> timedelta (the CLI's --for and the bot's /silence).

    ValueError with DURATION_EXPECTED (and what was given) otherwise."""
    compact = str(text).strip().lower().replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise ValueError(f"{DURATION_EXPECTED}, got {str(text)[:40]!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(compact))
    if seconds <= 0:
        raise ValueError("the duration must be longer than zero")
    if seconds > LONGEST_SILENCE.total_seconds():
        raise ValueError("the duration must be at most a year (366d)")
    return dt.timedelta(seconds=seconds)


def next_local_time(now: dt.datetime, zone: ZoneInfo, hour: int, minute: int = 0) -> dt.datetime:
    """The next moment after `now` that reads hour:minute on the clock in `zone` (as UTC)."""
    local = now.astimezone(zone)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target = (local + dt.timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    # replace() on an aware datetime keeps the old offset across a DST change: rebuild in the zone
    target = dt.datetime(target.year, target.month, target.day, hour, minute, tzinfo=zone)
    return target.astimezone(dt.timezone.utc)


def human_duration(delta: dt.timedelta) -> str:
    """2d 3h, 4h 5m, 12m, 40s."""
    seconds = max(0, int(delta.total_seconds()))
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
