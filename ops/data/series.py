"""The one read path for the daily series: rollups for the closed days they hold, raw tables for the rest.

    series.read(runtime, "revenue.daily", start=..., end=..., tz=...)   # a DataFrame, the raw query's numbers

Every reader of a series goes through here: the notebooks (ops/notebook.py),
`opsbench query` (ops/cli/query_cmd.py), the reports (ops/reports/figures.py)
and `queries.<series>(engine)` on an analytics engine opsbench made (each
runtime attaches a `Reader` to its own, ops/data/runtime.py). The choice is made in two steps,
each once, each with a typed `Reason` (never a message string):

1. `check` (`source` for a runtime): may the state store's rollups of zone
   `tz` be read for this backend? One look at the store: the backend it
   describes (ops/data/backend.py; the live identity is read once per runtime),
   the zone's watermark, and, with none, whether the backend just changed.
   The answer is a `Source`. A store that cannot be reached is remembered
   (the runtime's `StateDown`) and not tried again for a few minutes.
2. `plan`: does the source answer part of this query's window? A `Plan`
   with the days the rollups answer (`span`), read by `fetch` through
   ops/data/rollups.py, which is handed the already `Checked` store and
   checks nothing again. A report makes one `Source` for its whole build.

| series           | rollup reader (ops/data/rollups.py)                                  |
|------------------|----------------------------------------------------------------------|
| revenue.daily    | revenue_series (raw when a commission file prices proceeds)          |
| activity.daily   | activity_series (today's WAU/MAU from the stored user-days)          |
| dau              | dau_series (activity.daily's DAU columns; the notebooks' dau_series) |
| errors.daily     | errors_series                                                        |
| errors.durations | durations_series                                                     |
| errors.by_code   | failure_codes                                                        |
| activity.summary | activity_summary (only when the whole window is rolled up)          |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa

from ops.core.clock import parse_zone
from ops.core.redact import redact

if TYPE_CHECKING:  # annotations only: ops/data/runtime.py imports this module at start, pandas comes with a read
    import pandas as pd


class Reason(str, Enum):
    """Why a series is read the way it is. The first group is a `Source`'s (the store), the rest a `Plan`'s."""

    READY = "ready"                        # the store holds rollups of this backend for the zone
    NO_STATE_STORE = "no state store"      # none was handed in (a report without one)
    UNREACHABLE = "unreachable"            # the store could not be read (now, or within the last few minutes)
    OTHER_BACKEND = "other backend"        # the store describes another backend: its rollups are never read
    REBUILDING = "rebuilding"              # no rollups for the zone since the backend changed
    NO_ROLLUPS = "no rollups"              # the zone was never rolled up (or the tables do not exist yet)

    ROLLUPS = "rollups"                    # the rollups answer `span`, the raw tables the other days
    NOT_A_SERIES = "not a series"          # the query has no rollup reader: raw
    NOT_COVERED = "not covered"            # no day of the window is rolled up (today, days not caught up): raw
    PARTIAL_WINDOW = "partial window"      # a window total (activity.summary) needs every day rolled up: raw
    PROCEEDS = "proceeds"                  # a commission file prices revenue.daily's proceeds: not rolled up, raw

    @property
    def store_readable(self) -> bool:
        """The store answered for this backend (with or without rollups for the zone)."""
        return self in (Reason.READY, Reason.REBUILDING, Reason.NO_ROLLUPS)


@dataclass(frozen=True)
class Series:
    name: str                # what callers ask for
    query: str               # the named query whose parameters it takes (and whose answer it equals)
    reader: str              # its function in ops/data/rollups.py
    whole_window: bool = False


SERIES: dict[str, Series] = {s.name: s for s in (
    Series("revenue.daily", "revenue.daily", "revenue_series"),
    Series("activity.daily", "activity.daily", "activity_series"),
    Series("dau", "activity.daily", "dau_series"),
    Series("errors.daily", "errors.daily", "errors_series"),
    Series("errors.durations", "errors.durations", "durations_series"),
    Series("errors.by_code", "errors.by_code", "failure_codes"),
    Series("activity.summary", "activity.summary", "activity_summary", whole_window=True),
)}
# the named queries that are series: `queries.<name>(engine)` and `opsbench query <name>` read them here
QUERIES: tuple[str, ...] = tuple(n for n, s in SERIES.items() if n == s.query)


@dataclass(frozen=True)
class Source:
    """Where the series of zone `tz` may come from, decided once (`check`)."""

    analytics: Any                       # the engine or connection the raw side is read from
    state: Any                           # the state store looked at (None: none handed in)
    tz: str
    reason: Reason
    watermark: Any = None                # rollups.Watermark when READY
    detail: str = ""                     # UNREACHABLE: the store's error line; OTHER_BACKEND: the identity it describes

    @property
    def ready(self) -> bool:
        return self.reason is Reason.READY

    def via(self, analytics: Any) -> "Source":
        """The same decision, its raw side read through `analytics` (a report's one connection)."""
        return replace(self, analytics=analytics)

    def checked(self):
        """The store as the rollup readers take it (checked, nothing to look at again); None unless READY."""
        from ops.data import rollups

        return rollups.Checked(self.state, self.tz, self.watermark) if self.ready else None

    @property
    def note(self) -> str:
        """Why the raw tables are read, in a few words (what a report or a notebook shows)."""
        return {
            Reason.NO_STATE_STORE: "no state store",
            Reason.UNREACHABLE: "state store not reachable",
            Reason.OTHER_BACKEND: f"the state store describes another backend ({self.detail}); "
                                  "daily series read from the raw tables",
            Reason.REBUILDING: "rollups are rebuilding after the backend changed: figures read from the raw tables",
            Reason.NO_ROLLUPS: f"no rollups for {self.tz} yet",
        }.get(self.reason, "")

    def describe(self) -> str:
        """One line saying where the daily series of the zone come from (the notebooks' `series_source`)."""
        if self.ready:
            return (f"daily series: rollups for {self.watermark.complete_from} .. {self.watermark.refreshed_through} "
                    f"({self.tz}), raw tables for other days")
        why = {Reason.OTHER_BACKEND: f"the state store describes another backend ({self.detail})",
               Reason.REBUILDING: f"rollups for {self.tz} rebuilding after the backend changed",
               Reason.NO_ROLLUPS: f"no rollups for {self.tz} yet"}.get(self.reason, "state store not reachable")
        return f"daily series: raw tables ({why})"


def check(analytics: Any, state: Any, tz: Any, *, memo=None,
          live: Callable[[], Any] | None = None) -> Source:
    """Decide once whether the rollups of zone `tz` in `state` may be read for the backend behind `analytics`.

    Never raises for the store: a failure is `UNREACHABLE` (recorded in `memo`, a
    runtime.StateDown, when given; while it is recent the store is not tried).
    `live()` gives the backend's identity (a runtime's cached one); by default
    it is read from `analytics`. An analytics side that cannot say who it is
    does not make the store unreadable: the raw side would fail on its own.
    """
    from ops.data import backend, rollups

    tz = parse_zone(tz).key
    if state is None:
        return Source(analytics, None, tz, Reason.NO_STATE_STORE)
    if memo is not None and memo.recent():
        return Source(analytics, state, tz, Reason.UNREACHABLE, detail="not tried again for a few minutes")
    try:
        identity = (live or (lambda: backend.current(analytics)))()
    except sa.exc.SQLAlchemyError:
        identity = None
    try:
        stored = backend.stored(state)
        if identity is not None and stored is not None and stored != identity:
            reason, wm, detail = Reason.OTHER_BACKEND, None, str(stored)
        else:
            wm, detail = rollups.watermark(state, tz), ""
            reason = Reason.READY if wm is not None else \
                Reason.REBUILDING if backend.switched_at(state) is not None else Reason.NO_ROLLUPS
    except sa.exc.SQLAlchemyError as e:
        if memo is not None:
            memo.failed()
        text = str(getattr(e, "orig", None) or e).strip()
        return Source(analytics, state, tz, Reason.UNREACHABLE,
                      detail=redact(text.splitlines()[0] if text else type(e).__name__)[:160])
    if memo is not None:
        memo.reached()
    return Source(analytics, state, tz, reason, wm, detail)


def source(runtime, tz: Any, *, memo=None) -> Source:
    """`check` for a runtime's analytics engine and its state store (read-only), with the runtime's memo.

    The live backend identity is read once per runtime: it names the cluster and
    the database behind the runtime's DATABASE_URL, which do not change under it."""
    from ops.data import backend

    analytics = runtime.engine("analytics")
    return check(analytics, runtime.read_only().engine("state"), tz, memo=runtime.state_down if memo is None else memo,
                 live=lambda: runtime.shared(("series", "backend identity"), lambda: backend.current(analytics)))


@dataclass(frozen=True)
class Plan:
    """How one series call is read: `reason` ROLLUPS reads `span` from the rollups, anything else all raw."""

    name: str
    params: dict[str, Any]          # the query's bound parameters
    source: Source
    reason: Reason
    span: tuple[dt.date, dt.date] | None = None
    today: dt.date | None = field(default=None, compare=False)

    @property
    def rolled(self) -> bool:
        return self.reason is Reason.ROLLUPS


def bind(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of series (or query) `name`, validated and with their defaults, as the raw query binds them."""
    import queries

    spec = SERIES.get(name)
    return queries.get(spec.query if spec else name).bind(**params)


def plan_from(src: Source, name: str, *, today: dt.date | None = None, **params: Any) -> Plan:
    """Whether `src` answers part of series `name`'s window (params as the named query takes them)."""
    from ops.data import rollups

    bound = bind(name, params)
    spec = SERIES.get(name)
    if spec is None:
        return Plan(name, bound, src, Reason.NOT_A_SERIES, today=today)
    if parse_zone(bound["tz"]).key != src.tz:
        raise ValueError(f"series {name}: zone {bound['tz']} read through a source of {src.tz}")
    today = today or rollups.local_today(src.tz)     # one "today" for the plan and the read
    if not src.ready:
        return Plan(name, bound, src, src.reason, today=today)
    if bound.get("commission") is not None:
        return Plan(name, bound, src, Reason.PROCEEDS, today=today)
    start, end = bound["start"], bound["end"]
    span = rollups.rolled_range(src.watermark, start, end, today)
    if span is None:
        return Plan(name, bound, src, Reason.NOT_COVERED, today=today)
    if spec.whole_window and span != (start, end):
        return Plan(name, bound, src, Reason.PARTIAL_WINDOW, today=today)
    return Plan(name, bound, src, Reason.ROLLUPS, span, today=today)


def fetch(p: Plan) -> "pd.DataFrame":
    """The rows `p` says: the rollup reader with the checked store when ROLLUPS, else the raw tables only."""
    from ops.data import rollups

    spec = SERIES.get(p.name)
    if spec is None:
        import queries

        return queries.get(p.name).raw(p.source.analytics, **p.params)
    kw: dict[str, Any] = {"tz": p.params["tz"], "today": p.today}
    if "currency" in p.params:
        kw["currency"] = p.params["currency"]
    if "commission" in p.params:
        kw["commission"] = p.params["commission"] or "none"    # bound already: None is "none", not the settings'
    state = p.source.checked() if p.rolled else None
    return getattr(rollups, spec.reader)(p.source.analytics, state, p.params["start"], p.params["end"], **kw)


def read_from(src: Source, name: str, *, today: dt.date | None = None, **params: Any) -> "pd.DataFrame":
    """Series `name` through an already decided source (a report's, one per build)."""
    return fetch(plan_from(src, name, today=today, **params))


def plan(runtime, name: str, *, memo=None, today: dt.date | None = None, **params: Any) -> Plan:
    """Decide how series `name` is read for a runtime: one look at the store, one plan."""
    bound = bind(name, params)
    if name not in SERIES:     # nothing to decide: the store is not even looked at
        return Plan(name, bound, Source(runtime.engine("analytics"), None, "", Reason.NOT_A_SERIES),
                    Reason.NOT_A_SERIES, today=today)
    return plan_from(source(runtime, bound["tz"], memo=memo), name, today=today, **bound)


def read(runtime, name: str, *, memo=None, today: dt.date | None = None, **params: Any) -> "pd.DataFrame":
    """Series `name` for a runtime: closed days from the rollups where they answer, the rest raw, the raw numbers."""
    return fetch(plan(runtime, name, memo=memo, today=today, **params))


class Reader:
    """What an analytics engine a runtime made carries (queries/loader.py `SERIES_READER`):
    `queries.<series>(engine)` is `read(runtime, name, ...)`; any other query gets None and runs as it is."""

    def __init__(self, runtime):
        self.runtime = runtime

    def __call__(self, query, values: dict[str, Any]) -> "pd.DataFrame | None":
        if query.qualified_name not in QUERIES:
            return None
        return read(self.runtime, query.qualified_name, **values)


def attach(runtime, engine: sa.Engine) -> None:
    """Give `engine` (the runtime's analytics engine) the runtime's read path (idempotent)."""
    from queries.loader import SERIES_READER

    if getattr(engine, SERIES_READER, None) is None:
        setattr(engine, SERIES_READER, Reader(runtime))


def covered(analytics: sa.Engine, name: str, bound: dict[str, Any]):
    """The state store when its rollups answer part of series `name`'s window for an analytics engine
    a runtime made, else None (read raw)."""
    from queries.loader import SERIES_READER

    reader = getattr(analytics, SERIES_READER, None)
    if reader is None or name not in QUERIES:
        return None
    p = plan(reader.runtime, name, **bound)
    return p.source.state if p.rolled else None
