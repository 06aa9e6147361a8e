"""Maintenance windows: when a planned change (a deploy, a migration) may make alerts fire, hold them.

A window is one-off ("30m" from now, "2026-12-10 02:00-03:00") or recurring on days of the week in
the founder's zone ("Sun 02:00-03:00", "Mon-Fri 12:00-12:15", "daily 03:00-03:30"; a range that ends
before it starts crosses midnight). While a window is in force, the alerts it names (fnmatch
patterns over keys and rules) or, when it names none, every alert below critical, are held as a
silence holds them: tracked, not announced. When a window closes, one summary lists what fired and
cleared inside it.

Nothing here reads a database or a clock: the schedule is parsed and its occurrences computed for a
given moment and zone, so the alert manager, the CLI, the bot and the backtest agree.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ops.core.clock import parse_duration

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXPECTED = ("expected a length from now (30m, 2h), a day range and times in REPORT_TZ "
            "('Sun 02:00-03:00', 'Mon-Fri 12:00-12:15', 'daily 03:00-03:30') or a date and times "
            "('2026-12-10 02:00-03:00')")
_TIMES = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Schedule:
    """Recurring (`days`: ISO weekdays 0=Mon..6=Sun, minutes from local midnight) or one-off (UTC instants)."""

    days: tuple[int, ...] = ()
    start_minute: int = 0
    end_minute: int = 0
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None

    @property
    def recurring(self) -> bool:
        return self.starts_at is None

    def occurrence_at(self, at: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence in force at `at` (start inclusive, end exclusive), or None."""
        for start, end in self._around(at, zone):
            if start <= at < end:
                return start, end
        return None

    def ended_between(self, since: dt.datetime, until: dt.datetime,
                      zone: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
        """Occurrences whose end falls in (since, until], oldest first."""
        if not self.recurring:
            return [(self.starts_at, self.ends_at)] if since < self.ends_at <= until else []
        out, day = [], (since.astimezone(zone) - dt.timedelta(days=1)).date()
        while day <= until.astimezone(zone).date():
            occ = self._on(day, zone)
            if occ and since < occ[1] <= until:
                out.append(occ)
            day += dt.timedelta(days=1)
        return out

    def next_after(self, at: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence in force at `at` or the next one to start (None: a one-off that has ended)."""
        if not self.recurring:
            return (self.starts_at, self.ends_at) if self.ends_at > at else None
        day = (at.astimezone(zone) - dt.timedelta(days=1)).date()
        for _ in range(9):
            occ = self._on(day, zone)
            if occ and occ[1] > at:
                return occ
            day += dt.timedelta(days=1)
        return None

    def _around(self, at: dt.datetime, zone: ZoneInfo):
        if not self.recurring:
            return [(self.starts_at, self.ends_at)]
        local = at.astimezone(zone).date()
        return [o for o in (self._on(local - dt.timedelta(days=1), zone), self._on(local, zone)) if o]

    def _on(self, day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence that starts on local `day`, in UTC (a DST gap or fold resolves as the zone does)."""
        if day.weekday() not in self.days:
            return None
        start = _local(day, self.start_minute, zone)
        # a range that ends before it starts crosses midnight
        end = _local(day if self.end_minute > self.start_minute else day + dt.timedelta(days=1), self.end_minute, zone)
        return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)

    def describe(self, zone: ZoneInfo) -> str:
        if not self.recurring:
            return (f"{self.starts_at.astimezone(zone):%Y-%m-%d %H:%M}-"
                    f"{self.ends_at.astimezone(zone):%H:%M} ({zone.key})")
        days = "daily" if len(self.days) == 7 else ",".join(DAYS[d].title() for d in self.days)
        return f"{days} {_hhmm(self.start_minute)}-{_hhmm(self.end_minute)} ({zone.key})"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _local(day: dt.date, minute: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60), zone)


def _minutes(h: str, m: str) -> int:
    hh, mm = int(h), int(m)
    if hh > 23 or mm > 59:
        raise ValueError(f"{hh:02d}:{mm:02d} is not a time of day; {EXPECTED}")
    return hh * 60 + mm


def _days(text: str) -> tuple[int, ...]:
    t = text.lower()
    if t in ("daily", "every day", "everyday"):
        return tuple(range(7))
    if t in ("weekdays",):
        return tuple(range(5))
    out: set[int] = set()
    for part in t.split(","):
        lo, _, hi = part.partition("-")
        if lo[:3] not in DAYS or (hi and hi[:3] not in DAYS):
            raise ValueError(f"{part!r} is not a day of the week; {EXPECTED}")
        a, b = DAYS.index(lo[:3]), DAYS.index((hi or lo)[:3])
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return tuple(sorted(out))


def parse(text: str, now: dt.datetime, zone: ZoneInfo) -> Schedule:
    """A schedule from the founder's words. ValueError: one line saying what was expected."""
    words = str(text).strip().split()
    if len(words) == 1 and not _TIMES.match(words[0]):
        try:
            length = parse_duration(words[0])
        except ValueError:
            raise ValueError(f"{text.strip()[:40]!r}: {EXPECTED}") from None
        return Schedule(starts_at=now, ends_at=now + length)
    if len(words) != 2 or not _TIMES.match(words[1]):
        raise ValueError(f"{str(text).strip()[:40]!r}: {EXPECTED}")
    h1, m1, h2, m2 = _TIMES.match(words[1]).groups()
    start, end = _minutes(h1, m1), _minutes(h2, m2)
    if start == end:
        raise ValueError(f"{words[1]}: the window must not start and end at the same time; {EXPECTED}")
    if re.match(r"^\d{4}-\d{2}-\d{2}$", words[0]):
        day = dt.date.fromisoformat(words[0])
        starts = _local(day, start, zone)
        ends = _local(day + dt.timedelta(days=1) if end < start else day, end, zone)
        starts, ends = starts.astimezone(dt.timezone.utc), ends.astimezone(dt.timezone.utc)
        if ends <= now:
            raise ValueError(f"{text.strip()}: that window has already ended")
        return Schedule(starts_at=starts, ends_at=ends)
    return Schedule(days=_days(words[0]), start_minute=start, end_minute=end)


def covers(patterns: list[str] | tuple[str, ...], key: str, rule: str, severity: str) -> bool:
    """Whether a window holds this alert: one of its patterns matches, or (no pattern) it is below critical."""
    import fnmatch

    if not patterns:
        return severity != "critical"
    return any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(rule, p) for p in patterns)
