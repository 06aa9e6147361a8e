"""A report's figures for one window, gathered from the query modules only.

Two kinds of report, each compared with baselines of the same shape:

- daily: one local day D, against the average day of the 7 days before it
  (D-7 .. D-1) and against the same weekday last week (D-7);
- weekly: one Monday-Sunday week, against the week before it.

Every figure is a value a named query returns for that window (or a plain
average of them), so a report can always be checked against
`opsbench query ...`. How a figure is taken, per kind:

| figure            | daily (row of D)          | 7-day average                  | weekly (week W)                 |
|-------------------|---------------------------|--------------------------------|---------------------------------|
| gross, refunds, net, purchases | revenue.daily | mean of the 7 daily rows       | revenue.summary                 |
| paying users      | revenue.daily             | mean of daily payers           | revenue.summary (distinct)      |
| ARPPU             | revenue.daily             | sum gross / sum daily payers   | revenue.summary                 |
| DAU, WAU, MAU, stickiness, new users | activity.daily | means                   | mean daily DAU and stickiness (activity.daily); WAU = distinct active users of the week, MAU on Sunday, new users (activity.summary) |
| jobs, failed, error rate + 95 % interval | errors.daily | sums; rate = failed / jobs | errors.window over the week   |
| p95 duration      | errors.durations          | mean of daily p95              | worst daily p95 of the week     |

The daily series (revenue, activity, errors, durations; the charts and the
daily figures), the failure codes (errors.by_code) and the weekly active users
(activity.summary) are read through ops/data/rollups.py: closed days from the
daily rollups when the state store holds them for the report's zone, today and
every day they do not cover from the raw tables, so the numbers are the raw
queries' numbers.

State-store sections (firing alerts, failed runs in the 24 hours before the
report was made, the maintenance jobs' last recorded volumes) are read when a
state engine is given; if it cannot be read, the report says so and goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

import queries
from ops.core.clock import parse_zone, utc_now
from ops.core.commission import Commission
from ops.core.costs import Costs
from ops.core.fx import Converted, FxRates, convert
from ops.core.redact import redact
from ops.core.settings import Settings
from ops.data import backend, replica, rollups, seed

log = logging.getLogger("opsbench.report")

KINDS = ("daily", "weekly")
CHART_DAYS = {"daily": 30, "weekly": 56}
TOP_CODES = 3


# -- windows ---------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Local days [start, end] in the zone `tz`, both inclusive.

    `tz` is a ZoneInfo; a zone name given here (a `--date` from the CLI, a test)
    is parsed once, so a misspelt zone fails at the window, not in SQL.
    """

    start: dt.date
    end: dt.date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", parse_zone(self.tz))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The window as an aware UTC range [since, until): local midnights."""
        zone = self.tz
        since = dt.datetime.combine(self.start, dt.time(), zone)
        until = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), zone)
        return since.astimezone(dt.timezone.utc), until.astimezone(dt.timezone.utc)

    def shift(self, days: int) -> "Window":
        return Window(self.start + dt.timedelta(days=days), self.end + dt.timedelta(days=days), self.tz)

    def describe(self) -> str:
        if self.start == self.end:
            return f"{self.start:%a %d %b %Y}"
        if self.start.year != self.end.year:
            return f"{self.start:%a %d %b %Y} – {self.end:%a %d %b %Y}"
        if self.start.month != self.end.month:
            return f"{self.start:%a %d %b} – {self.end:%a %d %b %Y}"
        return f"{self.start:%a %d} – {self.end:%a %d %b %Y}"


@dataclass(frozen=True)
class Baseline:
    key: str          # avg7 | last_week | prev_week
    label: str        # column heading, short
    title: str        # what it is, in words
    window: Window


def last_complete_day(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Yesterday in REPORT_TZ, or the last whole day of the demo data (ops.data.seed.last_complete_day)."""
    return seed.last_complete_day(settings, settings.tz, now)


def week_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The Monday-Sunday week containing `day`."""
    monday = day - dt.timedelta(days=day.weekday())
    return monday, monday + dt.timedelta(days=6)


def default_window(kind: str, settings: Settings, now: dt.datetime | None = None) -> Window:
    """Yesterday (daily) or the last complete Monday-Sunday week (weekly)."""
    day = last_complete_day(settings, now)
    if kind == "daily":
        return Window(day, day, settings.tz)
    monday, sunday = week_of(day)
    if sunday > day:  # this week is not over yet: the one before
        monday, sunday = monday - dt.timedelta(days=7), sunday - dt.timedelta(days=7)
    return Window(monday, sunday, settings.tz)


def window_for(kind: str, day: dt.date, tz: ZoneInfo | str) -> Window:
    """The window a `--date` asks for: that day, or the week that contains it."""
    if kind == "daily":
        return Window(day, day, tz)
    monday, sunday = week_of(day)
    return Window(monday, sunday, tz)


def baselines(kind: str, window: Window) -> list[Baseline]:
    if kind == "daily":
        d = window.end
        return [
            Baseline("avg7", "7d avg", "average day of the 7 days before",
                     Window(d - dt.timedelta(days=7), d - dt.timedelta(days=1), window.tz)),
            Baseline("last_week", f"last {d:%a}", "the same weekday last week", window.shift(-7)),
        ]
    return [Baseline("prev_week", "prev wk", "the week before", window.shift(-7))]


# -- figures -------------------------------------------------------------------------

# How a change is shown: relative (%) for amounts and counts, percentage points for rates.
RELATIVE, POINTS = "relative", "points"


@dataclass
class Figure:
    key: str
    label: str
    unit: str                       # money | count | rate | seconds | ratio
    value: float | None
    base: dict[str, float | None] = field(default_factory=dict)

    @property
    def change_kind(self) -> str:
        return POINTS if self.unit in ("rate", "ratio") else RELATIVE

    def change(self, baseline: str) -> float | None:
        """Relative change (0.12 = +12 %) or the difference in points of a rate; None when unknown."""
        before = self.base.get(baseline)
        if self.value is None or before is None:
            return None
        if self.change_kind == POINTS:
            return self.value - before
        if before == 0:
            return None
        return (self.value - before) / abs(before)


@dataclass
class CodeCount:
    code: str | None
    count: int
    share: float | None


@dataclass
class CheckResult:
    check: str
    offending: int

    @property
    def passed(self) -> bool:
        return self.offending == 0


@dataclass
class AlertLine:
    key: str
    severity: str
    summary: str
    fired_at: dt.datetime | None


@dataclass
class RunLine:
    job: str
    status: str
    started_at: dt.datetime
    summary: str


@dataclass
class Volume:
    """Rows the cleanup job removed from one table in the 24 hours before the report."""

    table: str
    deleted: int
    runs: int
    last_outcome: str     # done | capped | refused | failed


@dataclass
class CurrencyRevenue:
    currency: str
    gross: Decimal          # numeric from the query, exact: sums of prices
    refunds: Decimal
    net: Decimal
    purchases: int
    proceeds: Decimal | None = None   # None: no commission file (OPSBENCH_COMMISSION)


@dataclass
class ModelMargin:
    model: str
    provider: str
    jobs: int
    margin: float            # gross margin over the window, in the report's currency


@dataclass
class Economics:
    """The weekly report's economics section (queries/economics.sql, raw tables)."""
    liability: float | None          # purchased credits unspent at the window's end, at their sold price
    outstanding_credits: int
    losers: list[ModelMargin] | None  # models with a negative margin over the window; None: no costs file


@dataclass
class Report:
    kind: str
    window: Window
    baselines: list[Baseline]
    generated_at: dt.datetime            # aware, UTC
    environment: str
    currency: str
    figures: dict[str, Figure]
    error_interval: tuple[float | None, float | None]
    failure_codes: list[CodeCount]       # video jobs that failed, by error_code
    api_error_codes: list[CodeCount]     # error_log rows, by error_code
    reconciliation: list[CheckResult] | None
    alerts: list[AlertLine] | None       # None: state store not read
    failed_runs: list[RunLine] | None
    failed_run_total: int | None
    cleanup: list[Volume] | None
    chart_window: Window
    series: dict[str, pd.DataFrame]      # revenue, activity, errors, durations over chart_window
    notes: list[str] = field(default_factory=list)
    # every currency with production revenue in the window (queries.revenue.by_currency), the report's first
    currencies: list[CurrencyRevenue] = field(default_factory=list)
    # the founder's conversion rates (OPSBENCH_FX_RATES), None: no currency is converted
    fx: FxRates | None = None
    # the store's commission (OPSBENCH_COMMISSION), None: proceeds "not configured"
    commission: Commission | None = None
    # the provider price list (OPSBENCH_PROVIDER_COSTS), None: gross margin "not configured"
    provider_costs: Costs | None = None
    # weekly only: liability and the loss-making models (None on the daily digest)
    economics: Economics | None = None

    @property
    def converted(self) -> Converted | None:
        """Every currency's revenue in the rates' base currency (ops.core.fx.convert), or None without rates.

        None too when the window has no currency but the base: there is nothing to convert.
        """
        if self.fx is None or all(c.currency.upper() == self.fx.base for c in self.currencies):
            return None
        return convert([{"currency": c.currency, "gross": c.gross, "refunds": c.refunds, "net": c.net}
                        for c in self.currencies], self.fx)

    @property
    def tz(self) -> str:
        """The zone's name, as the report shows it."""
        return self.window.tz.key

    @property
    def title(self) -> str:
        return "Daily digest" if self.kind == "daily" else "Weekly report"

    def local_generated_at(self) -> dt.datetime:
        return self.generated_at.astimezone(self.window.tz)

    def value(self, key: str) -> float | None:
        return self.figures[key].value


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _mean(series: pd.Series) -> float | None:
    s = pd.to_numeric(series, errors="coerce").dropna()
    return float(s.mean()) if len(s) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def _rows(df: pd.DataFrame, window: Window) -> pd.DataFrame:
    days = pd.to_datetime(df["day"]).dt.date
    return df[(days >= window.start) & (days <= window.end)]


def _one(df: pd.DataFrame) -> dict[str, Any]:
    return df.iloc[0].to_dict() if len(df) else {}


# What each figure is called and how it is shown, in report order.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("gross", "gross", "money"),
    ("refunds", "refunds", "money"),
    ("net", "net", "money"),
    ("proceeds", "proceeds", "money"),
    ("gross_margin", "margin", "money"),     # credits charged at the sold price less provider cost (issue 28)
    ("purchases", "purchases", "count"),
    ("paying_users", "payers", "count"),
    ("arppu", "ARPPU", "money"),
    ("dau", "DAU", "count"),
    ("wau", "WAU", "count"),
    ("mau", "MAU", "count"),
    ("stickiness", "DAU/MAU", "ratio"),
    ("new_users", "new users", "count"),
    ("jobs", "jobs", "count"),
    ("failed", "failed", "count"),
    ("error_rate", "error rate", "rate"),
    ("p95_seconds", "p95 time", "seconds"),
)


def _daily_values(series: dict[str, pd.DataFrame], window: Window) -> dict[str, float | None]:
    """Figures for a one-day window (the row of that day) or the average day of a longer one."""
    rev = _rows(series["revenue"], window)
    act = _rows(series["activity"], window)
    err = _rows(series["errors"], window)
    dur = _rows(series["durations"], window)
    jobs_sum = _num(err["jobs"].sum()) if len(err) else None
    failed_sum = _num(err["failed"].sum()) if len(err) else None
    gross_sum = _num(rev["gross"].sum()) if len(rev) else None
    payers_sum = _num(rev["paying_users"].sum()) if len(rev) else None
    out: dict[str, float | None] = {}
    for col in ("gross", "refunds", "net", "proceeds", "purchases", "paying_users"):
        out[col] = _mean(rev[col]) if len(rev) else None
    out["arppu"] = _ratio(gross_sum, payers_sum)
    for col in ("dau", "wau", "mau", "stickiness", "new_users"):
        out[col] = _mean(act[col]) if len(act) else None
    out["jobs"] = _mean(err["jobs"]) if len(err) else None
    out["failed"] = _mean(err["failed"]) if len(err) else None
    out["error_rate"] = _ratio(failed_sum, jobs_sum)
    out["p95_seconds"] = _mean(dur["p95_seconds"]) if len(dur) else None
    out["gross_margin"] = _margin(series, window, "mean")
    return out


def _margin(series: dict[str, pd.DataFrame], window: Window, how: str) -> float | None:
    """The gross margin of the window's days (mean or sum of days); None without a costs file or when a day
    has a model the file does not price (never a pretended cost of zero)."""
    df = series.get("margin")
    if df is None:
        return None
    rows = _rows(df, window)
    if not len(rows) or rows["gross_margin"].isna().any():
        return None
    return float(rows["gross_margin"].mean() if how == "mean" else rows["gross_margin"].sum())


def _margin_series(conn, window: Window, currency: str, costs: Costs) -> pd.DataFrame:
    """Per day of the window: gross margin over every model (economics.margin; raw tables, no rollups yet)."""
    df = queries.economics.margin(conn, start=window.start, end=window.end, tz=window.tz, currency=currency,
                                  costs=costs.to_json())
    if not len(df):
        return pd.DataFrame({"day": [], "gross_margin": []})
    priced = df.assign(unpriced=df["cost_note"].notna())
    out = priced.groupby("day").agg(gross_margin=("gross_margin", "sum"), unpriced=("unpriced", "any")).reset_index()
    out.loc[out["unpriced"], "gross_margin"] = float("nan")
    return out[["day", "gross_margin"]]


def _weekly_values(conn, series: dict[str, pd.DataFrame], window: Window, currency: str, *,
                   state: Engine | None = None, commission: str = "none",
                   today: dt.date | None = None) -> tuple[dict[str, float | None], tuple[float | None, float | None]]:
    w = {"start": window.start, "end": window.end, "tz": window.tz}
    rev = _one(queries.revenue.summary(conn, currency=currency, commission=commission, **w))
    act = _one(rollups.activity_summary(conn, state, window.start, window.end, tz=window.tz, today=today))
    since, until = window.bounds()
    err = _one(queries.errors.window(conn, since=since, until=until))
    days = _rows(series["activity"], window)
    dur = _rows(series["durations"], window)
    out: dict[str, float | None] = {k: _num(rev.get(k)) for k in
                                    ("gross", "refunds", "net", "proceeds", "purchases", "paying_users", "arppu")}
    out["dau"] = _mean(days["dau"]) if len(days) else None
    out["wau"] = _num(act.get("active_users"))
    out["mau"] = _num(act.get("mau"))
    out["stickiness"] = _mean(days["stickiness"]) if len(days) else None
    out["new_users"] = _num(act.get("new_users"))
    out["jobs"] = _num(err.get("jobs"))
    out["failed"] = _num(err.get("failed"))
    out["error_rate"] = _num(err.get("error_rate"))
    p95 = pd.to_numeric(dur["p95_seconds"], errors="coerce").dropna() if len(dur) else pd.Series(dtype=float)
    out["p95_seconds"] = float(p95.max()) if len(p95) else None
    out["gross_margin"] = _margin(series, window, "sum")
    return out, (_num(err.get("wilson_low")), _num(err.get("wilson_high")))


def _codes(df: pd.DataFrame, count_col: str, limit: int) -> list[CodeCount]:
    out = []
    for row in df.head(limit).itertuples(index=False):
        code = getattr(row, "error_code")
        out.append(CodeCount(None if code is None or (isinstance(code, float) and math.isnan(code)) else str(code),
                             int(getattr(row, count_col)), _num(getattr(row, "share"))))
    return out


def load_series(conn, window: Window, currency: str = "USD", *, state: Engine | None = None,
                today: dt.date | None = None, commission: str = "none") -> dict[str, pd.DataFrame]:
    """The daily series a report and its charts are made from.

    revenue, activity and errors have the columns of revenue.daily,
    activity.daily and errors.daily. With a readable `state` store, the closed
    days its rollups hold (ops/data/rollups.py, zone window.tz, before `today`) are
    read from them and every other day from the raw tables; without one, all
    from the raw tables. Same numbers either way. durations has the columns of
    errors.durations (each closed day's percentiles as stored by the rollups).
    """
    args = {"tz": window.tz, "today": today}
    return {
        "revenue": rollups.revenue_series(conn, state, window.start, window.end, currency=currency,
                                          commission=commission, **args),
        "activity": rollups.activity_series(conn, state, window.start, window.end, **args),
        "errors": rollups.errors_series(conn, state, window.start, window.end, **args),
        "durations": rollups.durations_series(conn, state, window.start, window.end, **args),
    }


def build(analytics: Engine, settings: Settings, kind: str = "daily", *, window: Window | None = None,
          state: Engine | None = None, now: dt.datetime | None = None, currency: str = "USD") -> Report:
    """Gather a report. `window` defaults to yesterday / last week (see `default_window`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}: expected daily or weekly")
    now = (now or utc_now()).astimezone(dt.timezone.utc)
    window = window or default_window(kind, settings, now)
    bases = baselines(kind, window)
    earliest = min([window.start] + [b.window.start for b in bases])
    chart_start = min(earliest, window.end - dt.timedelta(days=CHART_DAYS[kind] - 1))
    chart_window = Window(chart_start, window.end, window.tz)
    notes: list[str] = []
    # the rollups are read only when the state store answers (else the state sections below say so)
    mark, problem = rollups.readable(state, window.tz, analytics)
    other_backend = bool(problem) and problem.startswith("the state store describes another backend")
    if problem and state is not None:
        log.warning("rollups not readable, the report reads the raw tables: %s", problem)
        if other_backend:
            notes.append(problem)
    elif state is not None and mark is None and backend.switched_at(state) is not None:
        notes.append("rollups are rebuilding after the backend changed: figures read from the raw tables")
    rollup_state = state if problem is None else None

    today = rollups.local_today(window.tz, now)
    try:
        commission = settings.commission
    except ValueError as e:  # the file changed since the settings were read: say so, show no proceeds
        commission = None
        notes.append(f"OPSBENCH_COMMISSION not read, proceeds left out: {e}")
    # the report's own settings decide, explicitly ("none": proceeds NULL, never net at 0 %)
    cfg = commission.to_json() if commission is not None else "none"
    try:
        costs = settings.provider_costs
    except ValueError as e:  # the file changed since the settings were read: say so, show no margin
        costs = None
        notes.append(f"OPSBENCH_PROVIDER_COSTS not read, gross margin left out: {e}")
    with analytics.connect() as conn:
        series = load_series(conn, chart_window, currency, state=rollup_state, today=today, commission=cfg)
        if costs is not None:
            series["margin"] = _margin_series(conn, chart_window, currency, costs)
        values: dict[str, dict[str, float | None]] = {}
        if kind == "daily":
            values["value"] = _daily_values(series, window)
            for b in bases:
                values[b.key] = _daily_values(series, b.window)
            err_day = _one(_rows(series["errors"], window))
            interval = (_num(err_day.get("wilson_low")), _num(err_day.get("wilson_high")))
        else:
            values["value"], interval = _weekly_values(conn, series, window, currency, state=rollup_state,
                                                       today=today, commission=cfg)
            for b in bases:
                values[b.key], _ = _weekly_values(conn, series, b.window, currency, state=rollup_state, today=today,
                                                  commission=cfg)
        w = {"start": window.start, "end": window.end, "tz": window.tz}
        failure_codes = _codes(rollups.failure_codes(conn, rollup_state, window.start, window.end, tz=window.tz,
                                                     today=today), "failed", TOP_CODES)
        api_codes = _codes(queries.errors.log_top_codes(conn, limit=TOP_CODES, **w), "errors", TOP_CODES)
        # nothing derived from another backend: its reconcile result, alerts and runs are not this one's
        reconciliation, rec_note = _reconciliation(conn, None if other_backend else state, now)
        currencies = [CurrencyRevenue(str(r.currency), Decimal(str(r.gross)), Decimal(str(r.refunds)),
                                      Decimal(str(r.net)), int(r.purchases),
                                      None if _num(r.proceeds) is None else Decimal(str(r.proceeds)))
                      for r in queries.revenue.by_currency(conn, commission=cfg, **w).itertuples(index=False)]
        economics = _economics(conn, window, currency, costs, series.get("margin")) if kind == "weekly" else None
        if rec_note:
            notes.append(rec_note)
        lag = replica.lag_note(conn)
        if lag:
            notes.append(lag)

    figures = {
        key: Figure(key, label, unit, values["value"].get(key), {b.key: values[b.key].get(key) for b in bases})
        for key, label, unit in FIGURES
    }
    try:
        fx_rates = settings.fx
    except ValueError as e:  # the file changed since the settings were read: say so, convert nothing
        fx_rates = None
        notes.append(f"OPSBENCH_FX_RATES not read, nothing converted: {e}")
    alerts = failed = volumes = total = None
    if state is not None and other_backend:
        notes.append("alerts, job runs and cleanup volumes left out: they are another backend's")
    elif state is not None:
        alerts, failed, total, volumes, note = _state_sections(state, now)
        if note:
            notes.append(note)
    else:
        notes.append("state store not read: alerts, job runs and cleanup volumes left out")
    return Report(kind=kind, window=window, baselines=bases, generated_at=now, environment=settings.environment,
                  currency=currency, figures=figures, error_interval=interval, failure_codes=failure_codes,
                  api_error_codes=api_codes, reconciliation=reconciliation, alerts=alerts, failed_runs=failed,
                  failed_run_total=total, cleanup=volumes, chart_window=chart_window, series=series, notes=notes,
                  currencies=currencies, fx=fx_rates, commission=commission, provider_costs=costs,
                  economics=economics)


def _economics(conn, window: Window, currency: str, costs: Costs | None, margin: pd.DataFrame | None) -> Economics:
    """Liability at the window's last day, and (with a costs file) the models that lost money over the window."""
    day = window.end
    lia = queries.economics.liability(conn, start=day, end=day, tz=window.tz, currency=currency)
    row = _one(lia)
    losers = None
    if costs is not None:
        df = queries.economics.margin(conn, start=window.start, end=window.end, tz=window.tz, currency=currency,
                                      costs=costs.to_json())
        df = df[df["cost_note"].isna()]
        per = df.groupby(["model", "provider"], as_index=False).agg(jobs=("jobs", "sum"),
                                                                    margin=("gross_margin", "sum"))
        losers = [ModelMargin(r.model, r.provider, int(r.jobs), float(r.margin))
                  for r in per[per["margin"] < 0].sort_values("margin").itertuples(index=False)]
    return Economics(_num(row.get("liability")), int(row.get("outstanding_credits") or 0), losers)


# a reconcile result older than this is not "last night's": recompute instead
RECONCILE_FRESH = dt.timedelta(hours=36)


def _reconciliation(conn, state: Engine | None, now: dt.datetime) -> tuple[list[CheckResult], str | None]:
    """The reconcile job's last result when it is fresh (it already read the whole ledger that night),
    else the checks run now. Returns the results and a note saying which it is."""
    if state is not None:
        try:
            with state.connect() as sc:
                row = queries.load("state/reports").last_reconcile.execute(sc, since=now - RECONCILE_FRESH).first()
        except Exception as e:  # the state store is optional here: fall back to running the checks
            log.warning("reconcile result not read from the state store: %s", redact(e).splitlines()[0])
            row = None
        if row is not None:
            counts = {k.removeprefix("reconcile_"): v for k, v in (row.metrics or {}).items()
                      if k.startswith("reconcile_")}
            at = row.finished_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            order = list(queries.load("reconciliation").queries)  # the checks' file order, as when run now
            names = sorted(counts, key=lambda n: (order.index(n) if n in order else len(order), n))
            return ([CheckResult(name, int(counts[name])) for name in names],
                    f"reconciliation from the reconcile job at {at}")
    rec = queries.reconciliation.summary(conn)
    return [CheckResult(str(r.check), int(r.offending)) for r in rec.itertuples(index=False)], None


# -- the state store ------------------------------------------------------------------

def _cleanup_volumes(conn, since: dt.datetime, until: dt.datetime) -> list[Volume]:
    """What the cleanup job recorded per table in the window (`opsbench.cleanup_runs`); dry runs left out."""
    by_table: dict[str, Volume] = {}
    for r in queries.load("state/probes").cleanup_runs.execute(conn, since=since, until=until):
        if r.dry_run:
            continue
        v = by_table.setdefault(r.table_name, Volume(r.table_name, 0, 0, ""))
        v.deleted += int(r.deleted)
        v.runs += 1
        v.last_outcome = r.outcome   # rows come oldest first
    return list(by_table.values())


def _state_sections(state: Engine, now: dt.datetime):
    """(alerts, failed runs, failed run total, cleanup volumes, note). Never raises."""
    from ops.alerting import manager as alert_manager

    since = now - dt.timedelta(days=1)
    sql = queries.load("state/reports")
    try:
        firing = [AlertLine(r.key, r.severity, r.summary, r.fired_at) for r in alert_manager.firing(state)]
        with state.connect() as conn:
            runs = [RunLine(r.job, r.status, r.started_at, r.summary or (r.error or ""))
                    for r in sql.failed_runs.execute(conn, since=since, until=now, limit=10)]
            total = int(sql.failed_run_count.execute(conn, since=since, until=now).scalar_one())
            volumes = _cleanup_volumes(conn, since, now)
    except Exception as e:  # the figures still go out; the reader is told what is missing
        msg = redact(str(e)).splitlines()[0] if str(e) else type(e).__name__
        log.warning("state store not readable for the report: %s", msg)
        return None, None, None, None, f"state store not readable ({msg[:120]}): alerts and job runs left out"
    return firing, runs, total, volumes, None
