"""Daily rollups: refresh them from the raw tables, read series from them.

Where the data lives
    The analytics database (the backend, read-only) holds the raw tables; the
    state database (opsbench's own, schema `opsbench`) holds the rollups
    (queries/state/migrations/040_rollups.sql). In production they may be two
    servers, so a refresh never joins across them: it reads aggregates of a day
    range from analytics (queries/rollups.sql, through a server-side cursor)
    and COPYs them in chunks into temp tables on the state side, then merges
    (queries/state/rollups.sql). DAU/WAU/MAU are derived on the state side from
    the per-user-per-day table, with the same spans method as activity.daily.

What is stored
    Closed local days only, keyed by the zone `tz` the days were cut in
    (040_rollups.sql; durations and failure codes 090_rollup_durations_codes.sql).
    A series read (`revenue_series`, `dau_series`, `activity_series`,
    `errors_series`, `durations_series`) takes the days in the zone's complete
    range [complete_from, refreshed_through] from the rollups and every other
    day (today, days the daemon has not caught up with, a zone never rolled
    up) from the raw named query, so the answer is always the raw answer.
    `activity_series` reads only the open days' own user-days raw: their
    WAU/MAU look-back comes from the stored user-days (`activity_tail`).
    Window readers sum the stored days: `failure_codes` (errors.by_code) and
    `activity_summary` (activity.summary, when the whole window is closed and
    rolled up). Changing REPORT_TZ starts a new zone:
    its first refresh backfills, until then reads fall back to raw. With no
    state engine (`state=None`: none configured, or ops/data/series.py found
    it unreadable for this backend) a series is read from the raw tables only.

Who reads them
    Everyone through ops/data/series.py, the one read path: the reports
    (ops/reports/figures.py), the notebooks (ops/notebook.py), `opsbench query`
    and `queries.<series>(engine)` on an engine opsbench handed out. It decides
    once per call (a report: once per build) whether the rollups may be read
    and hands the readers here a `Checked` store, so they check nothing again.
    A reader handed a bare state engine checks it itself (the backend it
    describes, the zone's watermark); handed None it reads raw. The raw side is
    always read with `NamedQuery.raw` (never routed back here).

Late data
    Each refresh recomputes the last `days` closed days (and everything since
    the previous refresh if the daemon was down), merging: changed rows are
    updated, vanished rows deleted, unchanged rows left alone. A second run on
    the same data changes 0 rows. Rows arriving later than `days` days after
    their day are not picked up until a wider refresh (`refresh(days=...)`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

import queries
from ops.core.clock import local_date, parse_zone, utc_now
from ops.core.redact import redact
from ops.data import backend
from ops.data import migrations as state_store
from queries.loader import connection

DEFAULT_DAYS = 3          # closed days recomputed by every refresh (the late-data horizon)
WINDOW_DAYS = 29          # MAU needs the 29 days before a day
_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Watermark:
    tz: str
    complete_from: dt.date
    refreshed_through: dt.date
    last_from: dt.date
    last_rows_changed: int
    refreshed_at: dt.datetime


@dataclass(frozen=True)
class RefreshResult:
    tz: str
    start: dt.date | None          # first day recomputed (None: nothing to do)
    end: dt.date | None            # last day recomputed (yesterday)
    rows_read: int                 # rows aggregated from the raw tables
    rows_changed: int              # rows inserted, updated or deleted in the rollups
    backfill: bool                 # the zone had no rollups before this run

    @property
    def summary(self) -> str:
        if self.start is None:
            return f"{self.tz}: no data to roll up"
        kind = "backfilled" if self.backfill else "refreshed"
        return f"{self.tz}: {kind} {self.start}..{self.end}, {self.rows_read} rows read, {self.rows_changed} changed"


def _raw() -> queries.Subject:
    return queries.load("rollups")


def _sql() -> queries.Subject:
    return queries.load("state/rollups")


def local_today(tz: ZoneInfo | str, now: dt.datetime | None = None) -> dt.date:
    return local_date(now or utc_now(), parse_zone(tz))


def watermark(state: sa.Engine | sa.Connection, tz: ZoneInfo | str) -> Watermark | None:
    """The zone's complete range, or None when it was never refreshed (or the tables do not exist yet)."""
    tz = parse_zone(tz).key  # SQL and the watermark rows name the zone
    with connection(state) as c:
        if not _sql().has_tables.execute(c).scalar_one():
            return None
        row = _sql().get_watermark.execute(c, tz=tz).mappings().one_or_none()
    return Watermark(**row) if row else None


@dataclass(frozen=True)
class Checked:
    """A state store found readable for this backend, with zone `tz`'s watermark (None: never refreshed).

    Made by ops/data/series.py once per call or report; readers handed one read
    neither the backend identity nor the watermark again."""
    state: sa.Engine | sa.Connection
    tz: str
    watermark: Watermark | None


# what a series reader reads the rollups from: a checked store, a bare state engine (checked by the reader), none
Store = sa.Engine | sa.Connection | Checked | None


def readable(state: sa.Engine | sa.Connection | None, tz: ZoneInfo | str) -> tuple[Watermark | None, str | None]:
    """(watermark of zone `tz`, problem) of the store alone: never raises.

    problem is None when the state store could be read (the watermark is None
    when the zone was never refreshed or the tables do not exist yet), else a
    one-line reason. Whether a series may read the rollups (this backend's or
    another's, a store down a moment ago) is decided in one place, with a typed
    reason: ops/data/series.py `check`.
    """
    if state is None:
        return None, "no state store"
    try:
        return watermark(state, tz), None
    except sa.exc.SQLAlchemyError as e:
        text = str(getattr(e, "orig", None) or e).strip()
        return None, redact(text.splitlines()[0] if text else type(e).__name__)[:160]


# -- refresh --------------------------------------------------------------------------------

def refresh(analytics: sa.Engine, state: sa.Engine, tz: ZoneInfo | str, *, days: int = DEFAULT_DAYS,
            now: dt.datetime | None = None, backfill_days: int | None = None) -> RefreshResult:
    """Recompute the last `days` closed local days of zone `tz` (more if the last refresh is older).

    The first refresh of a zone backfills from the first day with data (or the
    last `backfill_days` days). Runs in one state transaction: readers see the
    old rollups or the new ones, never half. Idempotent.
    """
    tz = parse_zone(tz).key  # SQL and the watermark rows name the zone
    if days < 1:
        raise ValueError("days must be at least 1")
    state_store.migrate(state)
    yesterday = local_today(tz, now) - dt.timedelta(days=1)
    sql = _sql()
    with state.begin() as sc:
        sql.lock_zone.execute(sc, tz=tz)
        wm = watermark(sc, tz)
        if wm is None:
            with analytics.connect() as ac:
                first = _raw().data_start.execute(ac, tz=tz).scalar_one()
            if first is None or first > yesterday:
                return RefreshResult(tz, None, None, 0, 0, True)
            if backfill_days is not None:
                first = max(first, yesterday - dt.timedelta(days=backfill_days - 1))
            start, complete_from = first, first
            # MAU of the first days needs the user-days of the 29 days before them
            user_days_from = first - dt.timedelta(days=WINDOW_DAYS)
        else:
            start = min(wm.refreshed_through + dt.timedelta(days=1), yesterday - dt.timedelta(days=days - 1))
            start = max(start, wm.complete_from)
            complete_from = wm.complete_from
            user_days_from = start
        if start > yesterday:
            return RefreshResult(tz, None, None, 0, 0, wm is None)

        read = changed = 0
        for name, lo in (("revenue", start), ("jobs", start), ("user_days", user_days_from), ("signups", start),
                         ("durations", start), ("failure_codes", start)):
            n_read, n_changed = _load(analytics, sc, name, tz, lo, yesterday)
            read += n_read
            changed += n_changed
        sql.incoming_activity.execute(sc)
        sql.derive_activity.execute(sc, tz=tz, start=start, end=yesterday)
        changed += sql.merge_activity.execute(sc, tz=tz, start=start, end=yesterday).scalar_one()
        sql.set_watermark.execute(sc, tz=tz, complete_from=complete_from, refreshed_through=yesterday,
                                  last_from=start, changed=changed, at=now or utc_now())
        if wm is None:
            sql.analyze_rollups.execute(sc)   # the tables just grew from nothing: plan the next merges for it
    return RefreshResult(tz, start, yesterday, read, changed, wm is None)


# target -> (raw query in queries/rollups.sql, staging table, COPY, merge statement in queries/state/rollups.sql)
_TARGETS: dict[str, tuple[str, str, str, str]] = {
    "revenue": ("revenue_days", "incoming_revenue", "copy_revenue", "merge_revenue"),
    "jobs": ("jobs_days", "incoming_jobs", "copy_jobs", "merge_jobs"),
    "user_days": ("user_days", "incoming_user_days", "copy_user_days", "merge_user_days"),
    "signups": ("signups_days", "incoming_signups", "copy_signups", "merge_signups"),
    "durations": ("durations_days", "incoming_durations", "copy_durations", "merge_durations"),
    "failure_codes": ("failure_codes_days", "incoming_failure_codes", "copy_failure_codes", "merge_failure_codes"),
}


def _load(analytics: sa.Engine, sc: sa.Connection, target: str, tz: str, start: dt.date,
          end: dt.date) -> tuple[int, int]:
    """Stream one raw aggregate of [start, end] into its staging table, merge it. Returns (read, changed)."""
    raw_name, staging, copy_name, merge_name = _TARGETS[target]
    sql = _sql()
    getattr(sql, staging).execute(sc)
    read = 0
    cursor = sc.connection.driver_connection.cursor()
    with cursor.copy(getattr(sql, copy_name).sql) as copy:
        # psycopg's COPY keeps one row at a time; the analytics side streams in chunks
        for _cols, rows in getattr(_raw(), raw_name).stream(analytics, chunk_rows=_CHUNK_ROWS,
                                                            start=start, end=end, tz=tz):
            for row in rows:
                copy.write_row((tz, *row))
            read += len(rows)
    cursor.close()
    getattr(sql, f"analyze_{staging}").execute(sc)
    changed = getattr(sql, merge_name).execute(sc, tz=tz, start=start, end=end).scalar_one()
    return read, int(changed)


def forget(state: sa.Engine, tz: ZoneInfo | str) -> int:
    """Delete a zone's rollups and watermark (its next refresh backfills). Returns rows deleted."""
    tz = parse_zone(tz).key  # SQL and the watermark rows name the zone
    state_store.migrate(state)
    with state.begin() as sc:
        _sql().lock_zone.execute(sc, tz=tz)
        return int(_sql().forget_zone.execute(sc, tz=tz).scalar_one())


# -- read series ----------------------------------------------------------------------------

def revenue_series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *, tz: ZoneInfo | str,
                   currency: str = "USD", today: dt.date | None = None, commission=None) -> pd.DataFrame:
    """revenue.daily for [start, end]: closed days from the rollups, the rest from the raw tables.

    `commission` (a Commission, a file or its JSON; None: OPSBENCH_COMMISSION) prices `proceeds`.
    Proceeds are not rolled up (they depend on the founder's file, which may change under stored
    rows): with a commission configured the whole window is read raw, the same numbers at raw cost.
    """
    extra = {"commission": commission} if commission is not None else {}
    cfg = queries.revenue.daily.bind(start=start, end=end, tz=tz, currency=currency, **extra)["commission"]
    if cfg is not None:
        state = None
    return _series(analytics, state, start, end, tz, today,
                   raw=lambda c, lo, hi: queries.revenue.daily.raw(c, start=lo, end=hi, tz=tz, currency=currency,
                                                                   commission=cfg or "none"),
                   rolled=lambda c, lo, hi: _sql().revenue_series(c, start=lo, end=hi, tz=tz, currency=currency))


def activity_series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *, tz: ZoneInfo | str,
                    today: dt.date | None = None) -> pd.DataFrame:
    """activity.daily for [start, end]: closed days from the rollups, the rest from the raw tables.

    The days after the rolled-up ones (today; days the daemon has not caught
    up with) read only their own user-days from the raw tables: their WAU/MAU
    look-back of 29 days comes from the stored user-days (`activity_tail`),
    not from 29 days of raw jobs and purchases.
    """
    zone = parse_zone(tz).key
    return _series(analytics, state, start, end, tz, today,
                   raw=lambda c, lo, hi: queries.activity.daily.raw(c, start=lo, end=hi, tz=tz),
                   rolled=lambda c, lo, hi: _sql().activity_series(c, start=lo, end=hi, tz=tz),
                   tail=lambda st, lo, hi: activity_tail(analytics, st, lo, hi, tz=zone))


def activity_tail(analytics: sa.Engine | sa.Connection, state: sa.Engine | sa.Connection, start: dt.date,
                  end: dt.date, *, tz: str) -> pd.DataFrame:
    """activity.daily of [start, end] when the rollups hold the user-days of the 29 days before `start`.

    Only [start, end]'s own user-days and signups are read from the raw tables
    (by the created_at / purchased_at indexes) and handed to the state store,
    which adds the stored user-days of the look-back.
    """
    ud = _raw().user_days.raw(analytics, start=start, end=end, tz=tz)
    su = _raw().signups_days.raw(analytics, start=start, end=end, tz=tz)
    return _sql().activity_tail(
        state, start=start, end=end, tz=tz,
        user_ids=[str(u) for u in ud["user_id"]], days=[pd.Timestamp(d).date() for d in ud["day"]],
        signup=[bool(b) for b in ud["signup_day"]],
        signup_days=[pd.Timestamp(d).date() for d in su["day"]], signup_counts=[int(n) for n in su["new_users"]])


def dau_series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *, tz: ZoneInfo | str,
               today: dt.date | None = None) -> pd.DataFrame:
    """DAU, signups, new and returning active users for [start, end] (activity.daily without WAU/MAU).

    Unlike `activity_series`, today's row needs no 29-day look-back in the raw
    tables (rollups.dau_days reads today only), so a long series stays cheap.
    """
    return _series(analytics, state, start, end, tz, today,
                   raw=lambda c, lo, hi: _raw().dau_days.raw(c, start=lo, end=hi, tz=tz),
                   rolled=lambda c, lo, hi: _sql().dau_series(c, start=lo, end=hi, tz=tz))


def errors_series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *, tz: ZoneInfo | str,
                  today: dt.date | None = None) -> pd.DataFrame:
    """errors.daily for [start, end]: closed days from the rollups, the rest from the raw tables."""
    return _series(analytics, state, start, end, tz, today,
                   raw=lambda c, lo, hi: queries.errors.daily.raw(c, start=lo, end=hi, tz=tz),
                   rolled=lambda c, lo, hi: _sql().errors_series(c, start=lo, end=hi, tz=tz))


def durations_series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *,
                     tz: ZoneInfo | str, today: dt.date | None = None) -> pd.DataFrame:
    """errors.durations (p50/p95/max of completed jobs) for [start, end]: closed days from the rollups."""
    return _series(analytics, state, start, end, tz, today,
                   raw=lambda c, lo, hi: queries.errors.durations.raw(c, start=lo, end=hi, tz=tz),
                   rolled=lambda c, lo, hi: _sql().durations_series(c, start=lo, end=hi, tz=tz))


CODE_COLUMNS = ["error_code", "failed", "share", "providers", "last_seen"]


def failure_codes(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *,
                  tz: ZoneInfo | str, today: dt.date | None = None) -> pd.DataFrame:
    """errors.by_code over [start, end]: the per day, provider and code counts of the closed days from the
    rollups, the other days' from the raw tables, summed over the window as errors.by_code sums them."""
    tz = parse_zone(tz).key
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if end < start:
        raise queries.QueryError(f"'end' ({end}) is before 'start' ({start})")
    checked = _checked(analytics, state, tz)
    span = _span(checked, start, end, tz, today)
    if span is None:
        return queries.errors.by_code.raw(analytics, start=start, end=end, tz=tz)
    parts = [_sql().failure_codes_rows(checked.state, start=span[0], end=span[1], tz=tz)]
    for lo, hi in _outside(start, end, span):
        parts.append(_raw().failure_codes_days.raw(analytics, start=lo, end=hi, tz=tz))
    rows = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    if not len(rows):
        return queries.errors.by_code.raw(analytics, start=start, end=end, tz=tz)   # no failures: nothing to sum
    # NULL codes are one group (as GROUP BY makes them); shares add up to 1; ties ordered as the SQL orders
    # them (failed DESC, error_code NULLS LAST); built like the loader builds a result, so the dtypes match
    groups: dict[str | None, list] = {}
    for code, provider, failed, seen in zip(rows["error_code"], rows["provider"], rows["failed"], rows["last_seen"]):
        code = None if code is None or code != code else str(code)
        g = groups.setdefault(code, [0, set(), None])
        g[0] += int(failed)
        g[1].add(provider)
        g[2] = seen if g[2] is None or seen > g[2] else g[2]
    total = sum(g[0] for g in groups.values())
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0] is None, kv[0] or ""))
    out = pd.DataFrame.from_records([(code, g[0], g[0] / total, len(g[1]), g[2]) for code, g in ordered],
                                    columns=CODE_COLUMNS)
    out["share"] = out["share"].astype("float64")
    out["last_seen"] = pd.to_datetime(out["last_seen"], utc=True)
    return out


def activity_summary(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, *,
                     tz: ZoneInfo | str, today: dt.date | None = None) -> pd.DataFrame:
    """activity.summary of [start, end]: from the stored user-days and signups when the rollups hold the
    whole window (closed days), else from the raw tables."""
    tz = parse_zone(tz).key
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    checked = _checked(analytics, state, tz) if end >= start else None
    span = _span(checked, start, end, tz, today)
    if span != (start, end):
        return queries.activity.summary.raw(analytics, start=start, end=end, tz=tz)
    # the user-days of the 29 days before `end` are stored from complete_from - 29 on (see `refresh`)
    return _sql().activity_summary(checked.state, start=start, end=end, tz=tz)


def _checked(analytics, state: Store, tz: str) -> Checked | None:
    """`state` as a checked store of zone tz: as handed in (already checked), or checked here (a bare engine:
    another backend's rollups are never read, ops/data/backend.py), None when there is none to read."""
    if state is None or isinstance(state, Checked) and state.tz == tz:
        return state
    engine = state.state if isinstance(state, Checked) else state
    if backend.describes_other(analytics, engine) is not None:
        return None
    return Checked(engine, tz, watermark(engine, tz))


def _span(checked: Checked | None, start: dt.date, end: dt.date, tz: str,
          today: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The part of [start, end] a checked store's rollups answer, None when none."""
    if checked is None:
        return None
    return rolled_range(checked.watermark, start, end, today or local_today(tz))


def _outside(start: dt.date, end: dt.date, span: tuple[dt.date, dt.date]) -> list[tuple[dt.date, dt.date]]:
    one_day = dt.timedelta(days=1)
    out = []
    if start < span[0]:
        out.append((start, span[0] - one_day))
    if span[1] < end:
        out.append((span[1] + one_day, end))
    return out


Reader = Callable[[sa.Engine, dt.date, dt.date], pd.DataFrame]


def rolled_range(wm: Watermark | None, start: dt.date, end: dt.date, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The part of [start, end] the rollups can answer: inside the watermark and before today."""
    if wm is None:
        return None
    lo = max(start, wm.complete_from)
    hi = min(end, wm.refreshed_through, today - dt.timedelta(days=1))
    return (lo, hi) if lo <= hi else None


def _series(analytics: sa.Engine, state: Store, start: dt.date, end: dt.date, tz: ZoneInfo | str,
            today: dt.date | None, *, raw: Reader, rolled: Reader,
            tail: Callable[[sa.Engine | sa.Connection, dt.date, dt.date], pd.DataFrame] | None = None) -> pd.DataFrame:
    """[start, end]: the watermark's closed days from the rollups, every other day from the raw query.

    state None, or a state store describing another backend: all raw (`state` may be a `Checked` store). A zone never refreshed, or a state store without the
    rollup tables (never migrated): all raw too, so a fresh database answers
    correctly before the daemon ever ran.
    """
    tz = parse_zone(tz).key  # SQL and the watermark rows name the zone
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if end < start:
        raise queries.QueryError(f"'end' ({end}) is before 'start' ({start})")
    today = today or local_today(tz)
    checked = _checked(analytics, state, tz)
    span = rolled_range(checked.watermark, start, end, today) if checked is not None else None
    if span is None:
        return raw(analytics, start, end)
    state = checked.state
    parts: list[pd.DataFrame] = []
    one_day = dt.timedelta(days=1)
    if start < span[0]:
        parts.append(raw(analytics, start, span[0] - one_day))
    parts.append(rolled(state, *span))
    if span[1] < end:
        # the days after the rollups: `tail` when given (it may lean on the stored days before them)
        parts.append(tail(state, span[1] + one_day, end) if tail else raw(analytics, span[1] + one_day, end))
    return _concat(parts)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    filled = [p for p in parts if len(p)] or parts[:1]
    if len(filled) == 1:
        return filled[0].reset_index(drop=True)
    return pd.concat(filled, ignore_index=True)
