"""Schedules as the jobs file writes them: durations ("5m") and crontab expressions, checked,
and crontab's weekday field translated to APScheduler's.

Weekday numbers follow crontab (0 and 7 are Sunday), not APScheduler 3's historical
Monday-is-0, so the schedule Sentry shows (the crontab text, unchanged) matches what runs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from apscheduler.triggers.cron import CronTrigger

CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_S = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


MAX_SECONDS = 366 * 86400.0


def sane_seconds(value: float | None) -> bool:
    """Finite, positive and at most a year: nan, inf and 1e300 never reach APScheduler's timedelta."""
    return value is not None and math.isfinite(value) and 0 < value <= MAX_SECONDS


def parse_duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m[1]) * _UNIT_S[m[2]]
    return None


def parse_cron(value: Any, bad) -> str:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(CRON_FIELDS))
        if unknown:
            raise bad("cron", f"unknown field {unknown[0]!r} (expected {', '.join(CRON_FIELDS)})")
        value = " ".join(str(value.get(f, "*")) for f in CRON_FIELDS)
    if not isinstance(value, str) or len(value.split()) != 5:
        raise bad("cron", 'expected a crontab expression with five fields, e.g. "0 9 * * mon-fri"')
    expr = " ".join(value.split())
    try:
        minute, hour, day, month, dow = expr.split()
        CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_dow_to_aps(dow))
    except ValueError as e:
        raise bad("cron", f"{expr!r} is not a valid crontab expression ({e})") from None
    return expr


def crontab_dow_to_aps(field_text: str) -> str:
    """Crontab weekday field (0/7 = Sunday) to APScheduler weekday names.

    APScheduler 3 numbers Monday as 0, so numbers are expanded to a set of days
    and written back as names, which both agree on.
    """
    if field_text == "*":
        return "*"
    days: set[int] = set()
    for part in field_text.lower().split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = _dow_number(a), _dow_number(b)
            if hi == 0 and lo > 0:  # "5-7" / "fri-sun" ends on Sunday
                hi = 7
        else:
            lo = hi = _dow_number(rng)
            if step_s:
                hi = 6
        if lo > hi:
            raise ValueError(f"weekday range {rng!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if len(days) == 7:
        return "*"
    # Monday-first order so the text reads naturally
    return ",".join(DOW_NAMES[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def _dow_number(token: str) -> int:
    token = token.strip()
    if token in DOW_NAMES:
        return DOW_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7 if int(token) != 7 else 0
    raise ValueError(f"unknown weekday {token!r}")
