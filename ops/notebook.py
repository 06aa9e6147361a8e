"""What a notebook needs from opsbench besides the query modules.

Every notebook starts with::

    from ops import notebook as nb
    engine = nb.connect()
    start, end, tz = nb.window(start, end, days=days, tz=tz)

* `connect()` is the analytics (read-only) engine from settings: with no
  DATABASE_URL the embedded demo database, seeded when empty; with it,
  production, in a read-only session, so a notebook cannot write by accident.
* `state()` is the state store (the daemon's job runs, probe samples,
  alerts) in a read-only session, for the operations notebook.
* `window()` turns the parameters cell's values (None = default) into a date
  range ending yesterday in REPORT_TZ.
* `revenue_series()`, `activity_series()`, `dau_series()`, `errors_series()`
  are the daily series (the columns of revenue.daily, activity.daily,
  errors.daily): closed days from the daemon's daily rollups when the state
  store holds them for the zone, every other day (today, a zone or a store the
  daemon never refreshed, a state store that cannot be reached) from the raw
  tables, through ops/data/rollups.py. Same numbers either way.
* Importing this module sets plotly's renderer so every `fig.show()` carries
  both the plotly JSON (JupyterLab draws it) and HTML (nbconvert keeps it), with
  plotly.js embedded once per notebook: exported HTML works offline.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from ops.core.clock import parse_date, parse_zone, utc_now
from ops.core.settings import PLOTLYJS_SRC_ENV, PROJECT_ROOT, Settings, load_settings
from ops.reports import formatting as fmt
from ops.reports import fit as fitting
from ops.reports import palette

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
RENDERER = "plotly_mimetype+opsbench_html"

_settings: Settings | None = None


def settings() -> Settings:
    """Settings as the CLI sees them.

    The kernel's working directory is `notebooks/` (JupyterLab starts there),
    so the project's `.env` is read from the project root as well; a `.env`
    next to the notebooks wins, and real environment variables win over both.
    """
    global _settings
    if _settings is None:
        _settings = load_settings(_env_file=(PROJECT_ROOT / ".env", Path.cwd() / ".env"))
    return _settings


def connect(s: Settings | None = None) -> sa.Engine:
    """The analytics (read-only) engine; the embedded demo database is seeded first when empty."""
    from ops.data import db

    s = s or settings()
    if s.uses_embedded:
        from ops.data.seed import seed_embedded

        seed_embedded(s)
    return db.analytics(s)


def state(s: Settings | None = None) -> sa.Engine:
    """The state store (schema `opsbench`: job runs, probes, alerts) in a read-only session.

    Same database as the daemon's state role (OPSBENCH_STATE_URL, else the
    embedded server), but `default_transaction_read_only=on`: a notebook only
    looks at the daemon's bookkeeping. Nothing is migrated here; a store the
    daemon never set up simply has no tables (see `queries/state/operations.sql`
    `missing_tables`).
    """
    from ops.data import runtime

    return runtime.for_settings(s or settings()).read_only().engine("state")


# -- daily series: rollups for closed days, raw tables for the rest -------------------

# settings -> "its state store is down, retry later" (ops.data.runtime.StateDown, the one such memo)
_unreachable: dict[Settings, "StateDown"] = {}


def rollup_state(tz: str | None = None, s: Settings | None = None) -> sa.Engine | None:
    """`state()` when its rollups of zone tz can be read, else None (the series readers then read raw).

    A store without the rollup tables, or a zone never refreshed, is readable:
    the readers fall back to raw by themselves. A store that cannot be
    reached is not tried again for a few minutes, so a notebook does not wait
    for a connect timeout at every series.
    """
    from ops.data import rollups

    s = s or settings()
    down = _state_down(s)
    if down.recent():
        return None
    engine = state(s)
    if rollups.other_backend(connect(s), engine) is not None:
        return None                  # rollups of another backend: never read (series_source says so)
    _, problem = rollups.readable(engine, _zone(tz, s))
    if problem is not None:
        down.failed()
        return None
    down.reached()
    return engine


def _state_down(s: Settings) -> "StateDown":
    from ops.data.runtime import StateDown

    return _unreachable.setdefault(s, StateDown())


def _zone(tz: str | ZoneInfo | None, s: Settings) -> ZoneInfo:
    """The zone a helper was given by name, else the settings' (REPORT_TZ): a ZoneInfo from here down."""
    return parse_zone(tz) if tz else s.tz


def series_source(tz: str | None = None, s: Settings | None = None) -> str:
    """One line saying where the daily series of zone tz come from."""
    from ops.data import rollups

    s = s or settings()
    tz = _zone(tz, s)
    engine = rollup_state(tz, s)
    if engine is None:
        other = None if _state_down(s).marked else rollups.other_backend(connect(s), state(s))
        if other is not None:
            return f"daily series: raw tables ({other.split(';')[0]})"
        return "daily series: raw tables (state store not reachable)"
    wm = rollups.watermark(engine, tz)
    if wm is None:
        from ops.data import backend

        if backend.switched_at(engine) is not None:
            return f"daily series: raw tables (rollups for {tz} rebuilding after the backend changed)"
        return f"daily series: raw tables (no rollups for {tz} yet)"
    return (f"daily series: rollups for {wm.complete_from} .. {wm.refreshed_through} ({tz}), "
            "raw tables for other days")


def _series(name: str, start, end, tz: str | None, **kw) -> pd.DataFrame:
    from ops.data import rollups

    s = settings()
    tz = _zone(tz, s)
    reader = getattr(rollups, f"{name}_series")
    return reader(connect(s), rollup_state(tz, s), as_date(start), as_date(end), tz=tz, **kw)


def revenue_series(start, end, tz: str | None = None, currency: str = "USD") -> pd.DataFrame:
    """revenue.daily for local days [start, end]: closed days from the rollups when available."""
    return _series("revenue", start, end, tz, currency=currency)


def activity_series(start, end, tz: str | None = None) -> pd.DataFrame:
    """activity.daily (DAU, WAU, MAU, stickiness, new/returning) for [start, end], rollups when available."""
    return _series("activity", start, end, tz)


def dau_series(start, end, tz: str | None = None) -> pd.DataFrame:
    """The DAU columns of activity.daily for [start, end] (no WAU/MAU, so no 29-day look-back for today)."""
    return _series("dau", start, end, tz)


def errors_series(start, end, tz: str | None = None) -> pd.DataFrame:
    """errors.daily (jobs, failed, error rate and its 95 % band) for [start, end], rollups when available."""
    return _series("errors", start, end, tz)


def describe_state(s: Settings | None = None) -> str:
    """One line saying which state store the notebook reads, password masked."""
    from ops.data import db

    s = s or settings()
    resolved = db.resolve("state", s)
    if resolved.embedded:
        return "reading the embedded state database (read-only session)"
    return f"reading OPSBENCH_STATE_URL ({_session_words(state(s))}): {_shared_words(resolved.dsn)}"


def _shared_words(dsn: str) -> str:
    """Which database, in words fit for a page that is shared: its name and host, never a password, a user
    or a filesystem path (a socket directory on the founder's machine says nothing to anyone else)."""
    try:
        url = sa.make_url(dsn)
    except Exception:  # noqa: BLE001 - a DSN in key=value form: say less rather than all of it
        return "the configured database"
    host = url.host or str(url.query.get("host") or "")
    if not host or host.startswith("/") or "\\" in host:
        host = "a local socket"
    port = f":{url.port}" if url.port else ""
    return f"database {url.database or '?'} on {host}{port}"


def _session_words(engine: sa.Engine) -> str:
    """What a transaction of `engine` really runs with, read from the server (a pooler may have dropped
    the startup options; opsbench sets them again in each transaction, ops.data.session)."""
    from ops.data import session

    try:
        with engine.begin() as conn:
            eff = session.effective(conn)
    except Exception as e:  # noqa: BLE001 - a line about the connection, not a traceback
        from ops.core.redact import redact

        first = (redact(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        return f"session settings unknown, cannot connect: {first}"
    timeout = eff["statement_timeout"]
    bound = f"statement_timeout {timeout}" if timeout not in ("0", "0ms") else "no statement_timeout"
    if eff["read_only"] != "on":
        return f"NOT a read-only session: transactions may write; {bound}"
    return f"read-only session) ({bound}"


def today(tz: str | None = None) -> dt.date:
    """Today in the report time zone: operations are live, so their window may end today."""
    return utc_now().astimezone(_zone(tz, settings())).date()


def describe(s: Settings | None = None) -> str:
    """One line saying which database the notebook reads: no password, user or local path (pages are shared)."""
    s = s or settings()
    if s.uses_embedded:
        return f"reading the embedded demo database (read-only session); days cut in {s.report_tz}"
    return (f"reading DATABASE_URL ({_session_words(connect(s))}): {_shared_words(s.database_url)}; "
            f"days cut in {s.report_tz}")


def yesterday(tz: str | None = None) -> dt.date:
    """Yesterday in the report time zone (the last complete day).

    On the embedded demo database seeded some days ago, the last complete day
    of its data instead: a notebook opened a month after `make demo` should
    not show a month of empty charts.
    """
    from ops.data.seed import last_complete_day

    s = settings()
    return last_complete_day(s, _zone(tz, s))


def local_times(df: pd.DataFrame, tz: str | None = None) -> pd.DataFrame:
    """A copy with every time-zone-aware column shown in `tz` (default REPORT_TZ), for tables."""
    tz = _zone(tz, settings())
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert(tz)
    return out


def as_date(value: str | dt.date | None) -> dt.date | None:
    return parse_date(value)


def window(
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    *,
    days: int = 30,
    tz: str | None = None,
) -> tuple[dt.date, dt.date, str]:
    """(start, end, tz) from a parameters cell; None means the default.

    end defaults to yesterday in tz (today is incomplete); start defaults to
    `days` days ending at end, both inclusive.
    """
    tz = tz or settings().report_tz
    last = as_date(end) or yesterday(tz)
    first = as_date(start) or last - dt.timedelta(days=int(days) - 1)
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    return first, last, tz


def previous(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before [start, end]."""
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


def change(current: float | None, before: float | None) -> float | None:
    """Relative change current vs before (0.25 = +25 %); None when before is 0 or missing."""
    if current is None or before is None or pd.isna(current) or pd.isna(before) or before == 0:
        return None
    return (float(current) - float(before)) / abs(float(before))


# -- plotly ------------------------------------------------------------------

def _register_renderer() -> None:
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        """plotly's notebook renderer (plotly.js inlined once, on activation),
        but without the per-figure MathJax <script> from a CDN: an exported
        notebook must draw its charts with no network.

        When `opsbench notebooks render` runs the notebook it sets
        OPSBENCH_PLOTLYJS_SRC: the page then loads plotly.js from that file
        beside it (one copy for every page in the folder) instead of
        carrying its own 4.8 MB copy.
        """

        def activate(self):
            src = os.environ.get(PLOTLYJS_SRC_ENV)
            if not src:
                return super().activate()
            from IPython.display import display_html
            from plotly.io._base_renderers import _window_plotly_config

            display_html(f"<script>{_window_plotly_config}</script>"
                         f'<script src="{html.escape(src, quote=True)}"></script>', raw=True)

        def to_mimebundle(self, fig_dict):
            html = pio.to_html(
                fitting.wrap_titles(fig_dict),   # a shared page is read on phones too
                config=self.config,
                include_plotlyjs=False,
                include_mathjax=False,
                full_html=False,
                default_width="100%",
                default_height=525,
                validate=False,
            )
            return {"text/html": html}

    if "opsbench_html" not in pio.renderers:
        pio.renderers["opsbench_html"] = OfflineNotebookRenderer()
    if pio.renderers.default != RENDERER:
        pio.renderers.default = RENDERER
    pio.templates.default = "plotly_white"


def setup_plotly() -> None:
    """Make `fig.show()` emit plotly JSON + offline HTML. Safe to call twice.

    Only inside an IPython kernel: elsewhere (a script, the CLI, tests
    importing this module) activation would print plotly.js to stdout.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is not None:
        _register_renderer()


# -- how numbers look: one module for the notebooks and the reports (ops/reports/formatting.py) --------

pct = fmt.percent                 # 0.0123 -> '1.2%'
signed_pct = fmt.signed_percent   # a relative change: '+25.0%'
points = fmt.points               # the difference of two rates: '+1.06 pp'
money = fmt.money                 # '1,234.50 USD'
whole = fmt.whole                 # '1,234'; missing: '–'
when = fmt.when                   # a time without microseconds


def table(df: pd.DataFrame, currency: str | None = None, **kw):
    """A DataFrame as the notebooks show it: percent, money, whole numbers and times written alike
    (a pandas Styler, see ops/reports/formatting.py `table`)."""
    return fmt.table(df, currency, **kw)


# -- colours: one per provider, model and figure in every chart (ops/reports/palette.py) -------------
colors = palette

# -- charts that fit a phone: legend below, one-point time axes padded, percent ticks that differ ------
fit = fitting.fit
time_axis = fitting.time_axis
rate_ticks = fitting.rate_ticks


def alert_name(key: str) -> str:
    """An alert's key without the labels its name already says (`reconcile_x{check=x}` -> `reconcile_x`)."""
    from ops.alerting.wording import short_key

    return short_key(key)


# -- money in several currencies ---------------------------------------------------------------------

def fx():
    """The founder's conversion rates (OPSBENCH_FX_RATES, ops/core/fx.py), or None: nothing is converted."""
    return settings().fx


def by_currency(start, end, tz: str | None = None, engine: sa.Engine | None = None) -> tuple[pd.DataFrame, str]:
    """Revenue per currency over [start, end] (queries.revenue.by_currency), and one line about conversion.

    With rates, a column `net in <base>` per currency and the line gives the total of every currency in
    the base, which currencies were converted at what rate, and which have no rate; without rates the
    line says nothing was converted.
    """
    import queries
    from ops.core.fx import convert

    tz = _zone(tz, settings())
    df = queries.revenue.by_currency(engine or connect(), start=as_date(start), end=as_date(end), tz=tz)
    if "proceeds" in df and df["proceeds"].isna().all():
        df = df.drop(columns="proceeds")   # no commission file (OPSBENCH_COMMISSION): no column of blanks
    rates = fx()
    if rates is None or df.empty:
        return df, ("" if len(df) <= 1 else "Each currency on its own: nothing converted "
                    "(set OPSBENCH_FX_RATES to a file of rates for a total).")
    rows = df.to_dict("records")
    df[f"net in {rates.base}"] = [
        (c.amounts["net"] if (c := convert([r], rates, ("net",))) and not c.missing else None) for r in rows]
    total = convert(rows, rates)
    line = (f"All currencies in {total.base}: gross {fmt.money(total.amounts['gross'], total.base)}, "
            f"net {fmt.money(total.amounts['net'], total.base)}; "
            + (f"converted {total.rates_text()}" if total.used else "nothing converted")
            + f" ({total.describe})" + (f"; left out, no rate: {', '.join(total.missing)}" if total.missing else ""))
    return df, line


setup_plotly()
