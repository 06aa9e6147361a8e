"""Rollup-aware daily series by default: `queries.<subject>.<name>(engine, ...)` and `opsbench query`.

The series queries below, called with an analytics engine that opsbench made
from its settings (`ops.data.db.analytics()`, the notebooks' `nb.connect()`,
the CLI's), read the closed days the state store's rollups hold from the
rollups and every other day (today, days not rolled up yet) from the raw
tables, through ops/data/rollups.py, with the same numbers as the raw query:

| query            | rollup reader                      |
|------------------|------------------------------------|
| revenue.daily    | rollups.revenue_series             |
| activity.daily   | rollups.activity_series (today's WAU/MAU from the stored user-days) |
| errors.daily     | rollups.errors_series              |
| errors.durations | rollups.durations_series           |
| errors.by_code   | rollups.failure_codes              |
| activity.summary | rollups.activity_summary (closed windows only) |

The state store is the one of the same settings (read-only session), and is
used only when it describes this backend (ops/data/backend.py: a store bound
to another backend is never read) and holds rollups covering part of the
window; otherwise, and for any other connection (a `Connection`, an engine
made elsewhere), the query reads the raw tables as before. A state store that
cannot be reached is not tried again for a few minutes. `NamedQuery.raw()`
always reads the raw tables.

`install()` registers the readers with the query loader (queries/loader.py
cannot import this layer); ops/data/runtime.py calls it when the first runtime
is made, so every engine that can be routed has them.
"""

from __future__ import annotations

import threading
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

# query -> the rollups function answering it, by name (ops/data/rollups.py is imported on first use)
SERIES: dict[str, str] = {
    "revenue.daily": "revenue_series",
    "activity.daily": "activity_series",
    "errors.daily": "errors_series",
    "errors.durations": "durations_series",
    "errors.by_code": "failure_codes",
    "activity.summary": "activity_summary",
}

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Register the rollup-aware readers with the query loader (idempotent)."""
    global _installed
    from queries.loader import register_reader

    with _lock:
        if _installed:
            return
        for name in SERIES:
            register_reader(name, _reader(name))
        _installed = True


def _owner(analytics: Any):
    """The runtime that made analytics engine `analytics`, None for any other connection."""
    if not isinstance(analytics, Engine):
        return None
    from ops.data import runtime

    return runtime.owner_of(analytics)


def state_for(analytics: Any) -> Engine | None:
    """The read-only state engine paired with an analytics engine opsbench made, None for any other connection."""
    rt = _owner(analytics)
    if rt is None:
        return None
    return rt.read_only().engine("state")


def rollup_state(analytics: Any, tz: ZoneInfo | str) -> Engine | None:
    """The paired state store when its rollups of zone `tz` may be read for this backend, else None."""
    from ops.data import rollups

    rt = _owner(analytics)
    if rt is None:
        return None
    state = rt.read_only().engine("state")
    if rt.state_down.recent():
        return None
    wm, problem = rollups.readable(state, tz, analytics)
    if problem is not None:
        if not problem.startswith("the state store describes another backend"):
            rt.state_down.failed()
        return None
    rt.state_down.reached()
    return state if wm is not None else None


def covered(analytics: Any, name: str, bound: dict[str, Any]) -> Engine | None:
    """The state engine when rollups answer part of query `name`'s window, else None (read raw)."""
    from ops.data import rollups

    if name not in SERIES:
        return None
    tz = str(bound["tz"])
    state = rollup_state(analytics, tz)
    if state is None:
        return None
    span = rollups.rolled_range(rollups.watermark(state, tz), bound["start"], bound["end"], rollups.local_today(tz))
    if span is None or (name == "activity.summary" and span != (bound["start"], bound["end"])):
        return None
    return state


def read(analytics: Any, name: str, bound: dict[str, Any], state: Engine | None = None):
    """Query `name` with bound parameters through its rollup reader; None when the rollups do not cover it."""
    from ops.data import rollups

    state = state or covered(analytics, name, bound)
    if state is None:
        return None
    fn = getattr(rollups, SERIES[name])
    kw: dict[str, Any] = {"tz": bound["tz"]}
    if "currency" in bound:
        kw["currency"] = bound["currency"]
    if bound.get("commission") is not None:
        kw["commission"] = bound["commission"]
    return fn(analytics, state, bound["start"], bound["end"], **kw)


def _reader(name: str) -> Callable[[Any, dict[str, Any]], Any]:
    def reader(conn: Any, bound: dict[str, Any]):
        return read(conn, name, bound)
    return reader

