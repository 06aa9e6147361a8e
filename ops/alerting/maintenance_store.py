"""Maintenance windows in the state store: adding, listing and ending them, the holds in force at a
moment (for the lifecycle's world), and the summary of what happened inside an occurrence that ended."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine

import queries
from ops.alerting import maintenance
from ops.alerting.lifecycle import Silence
from ops.core.clock import parse_zone


def _q():
    return queries.load("state/maintenance")


@dataclass(frozen=True)
class Window:
    id: int
    spec: str
    schedule: maintenance.Schedule
    zone: ZoneInfo
    patterns: tuple[str, ...]
    reason: str
    created_by: str | None
    summarised_until: dt.datetime

    @property
    def scope(self) -> str:
        return ", ".join(self.patterns) if self.patterns else "every alert below critical"

    def hold(self) -> Silence:
        return Silence(self.id, ",".join(self.patterns), self.reason, kind="maintenance", patterns=self.patterns)


def _window(r) -> Window:
    schedule = maintenance.Schedule(days=tuple(r.days or ()), start_minute=int(r.start_minute),
                                    end_minute=int(r.end_minute), starts_at=r.starts_at, ends_at=r.ends_at)
    return Window(int(r.id), r.spec, schedule, parse_zone(r.zone), tuple(r.patterns or ()), r.reason, r.created_by,
                  r.summarised_until)


def add(engine_or_conn, spec: str, reason: str, zone: ZoneInfo, now: dt.datetime,
        patterns: list[str] | tuple[str, ...] = (), created_by: str | None = None) -> tuple[int, Window]:
    """Parse and store a window. ValueError: one line saying what was expected."""
    if not reason.strip():
        raise ValueError("a maintenance window needs a reason (--reason deploy)")
    schedule = maintenance.parse(spec, now, zone)
    patterns = tuple(p.strip() for p in patterns if p.strip())
    params = dict(spec=spec.strip(), days=json.dumps(list(schedule.days)), start_minute=schedule.start_minute,
                  end_minute=schedule.end_minute, zone=zone.key, starts_at=schedule.starts_at,
                  ends_at=schedule.ends_at, patterns=json.dumps(list(patterns)), reason=reason.strip(),
                  created_by=created_by, at=now)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.begin() as conn:
            wid = int(_q().add.execute(conn, **params).scalar_one())
    else:
        wid = int(_q().add.execute(engine_or_conn, **params).scalar_one())
    return wid, Window(wid, spec.strip(), schedule, zone, patterns, reason.strip(), created_by, now)


def active(conn_or_engine) -> list[Window]:
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return [_window(r) for r in _q().active.execute(conn)]
    return [_window(r) for r in _q().active.execute(conn_or_engine)]


def cancel(engine: Engine, window_id: int, now: dt.datetime) -> bool:
    with engine.begin() as conn:
        return _q().cancel.execute(conn, id=window_id, at=now).first() is not None


def holds_at(windows: list[Window], at: dt.datetime) -> list[Silence]:
    """The windows (of `active`) in force at `at`, as holds the lifecycle applies like silences."""
    return [w.hold() for w in windows if w.schedule.occurrence_at(at, w.zone) is not None]


@dataclass(frozen=True)
class Summary:
    window: Window
    start: dt.datetime
    end: dt.datetime
    events: list


def due_summaries(conn: Connection, windows: list[Window], now: dt.datetime) -> list[Summary]:
    """Occurrences of the windows (of `active`) that ended since their last summary, with what happened
    inside each (marked summarised: the caller queues the message in the same transaction)."""
    out = []
    for w in windows:
        for start, end in w.schedule.ended_between(w.summarised_until, now, w.zone):
            rows = [e for e in _q().events_between.execute(conn, since=start, until=end)
                    if maintenance.covers(w.patterns, e.key, e.rule, e.severity)]
            out.append(Summary(w, start, end, rows))
            _q().summarised.execute(conn, id=w.id, until=end)
    return out


def summary_lines(s: Summary, zone: ZoneInfo) -> list[str]:
    """What fired and cleared inside one occurrence, in the founder's words (plain text; a channel renders it)."""
    when = f"{s.start.astimezone(zone):%a %H:%M}-{s.end.astimezone(zone):%H:%M}"
    head = f"Maintenance window closed: {s.window.reason} ({when}, {s.window.scope})"
    fired: dict[str, dict] = {}
    for e in s.events:
        item = fired.setdefault(e.key, {"severity": e.severity, "summary": e.summary, "fired": None, "cleared": None})
        if e.kind in ("firing", "silenced") and item["fired"] is None:
            item["fired"] = e.at
        if e.kind in ("resolved", "cleared", "closed"):
            item["cleared"] = e.at
    if not fired:
        return [head, "Nothing fired inside it."]
    lines = [head, f"{len(fired)} alert{'' if len(fired) == 1 else 's'} inside it:"]
    for key, item in sorted(fired.items(), key=lambda kv: kv[1]["fired"] or s.start):
        start = f"fired {item['fired'].astimezone(zone):%H:%M}" if item["fired"] else "pending"
        end = (f", cleared {item['cleared'].astimezone(zone):%H:%M}" if item["cleared"]
               else ", still firing: it will be announced now if it is still bad")
        lines.append(f"- {key} ({item['severity']}): {start}{end}")
    return lines
