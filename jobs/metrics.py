"""Metric rules over the backend, through `queries/metrics.sql`.

A metric rule is one function and its registration, in this file only::

    @metric_rule(stuck_after=span("15min"))
    def stuck_jobs(ctx, conn, a) -> CheckOutput: ...

The decorator declares the `args` keys the rule reads with their defaults
(checked up front by `validate_args` for the jobs file, parsed and filled in
`a` before the rule runs) and makes `stuck_jobs` a job of its own
(`callable = "jobs.metrics:stuck_jobs"`) and an entry of `metric_probes`'
`checks`. `metric_probes` runs every rule on one connection so a single
schedule entry covers them; one rule that breaks does not hide the others'
findings.

Every finding here depends on the backend database answering, so each carries
`requires=("database_unreachable",)`: while the PostgreSQL probe's root-cause
alert fires, these are held back instead of paging a second time. A database
that cannot be reached makes these jobs `skipped`, not failed, for the same reason.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from statistics import NormalDist, median
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

import queries
from queries.loader import constant
from jobs import args as read
from jobs.args import JobArgError
from jobs.evidence import evidence_rows
from jobs.probes import DATABASE_UNREACHABLE
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.redact import redact

ERROR_RATE = "job_error_rate"
STUCK_JOBS = "stuck_jobs"
NEGATIVE_BALANCE = "negative_balance"
PURCHASES_STOPPED = "purchases_stopped"
HIGH_USAGE = "high_usage"
RATE_LIMIT_NEAR = "rate_limit_near"

NEEDS_DB = (DATABASE_UNREACHABLE,)
EVIDENCE_ROWS = 10


@dataclass
class CheckOutput:
    findings: list[Finding] = field(default_factory=list)
    rules: set[str] = field(default_factory=set)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- small helpers ------------------------------------------------------------------

def _num(args: dict[str, Any], key: str, default: float) -> float:
    return read.number(args.get(key, default), f"args.{key}")


def _span(args: dict[str, Any], key: str, default: str) -> dt.timedelta:
    return read.duration(args.get(key, default), f"args.{key}", positive=True)


def _words(td: dt.timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}min" if minutes else f"{int(td.total_seconds())}s"


def _records(df: pd.DataFrame, limit: int = EVIDENCE_ROWS) -> list[dict[str, Any]]:
    return evidence_rows(df, limit)


def _short(user_id: Any) -> str:
    """A user id as alerts show it: its first 8 characters (enough to find, not to expose)."""
    return str(user_id)[:8]


# z of the two-sided 95 % interval: the one constant queries/shared/wilson.sql declares for the SQL interval
WILSON_Z = constant("wilson_z")


def wilson_lower(failures: int, n: int, z: float = WILSON_Z) -> float:
    """Lower end of the Wilson score interval with continuity correction (Newcombe 1998).

    The plain Wilson bound is too eager near zero: 1 failure in 10 jobs would
    "prove" a rate above 1 % although a healthy 1 % service shows it one time in
    ten. The continuity-corrected form keeps the 95 % promise at small counts.
    """
    if n <= 0 or failures <= 0:
        return 0.0
    p = failures / n
    z2 = z * z
    root = z2 - 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) + 1.0)
    low = (2.0 * n * p + z2 - 1.0 - z * math.sqrt(max(root, 0.0))) / (2.0 * (n + z2))
    return min(max(low, 0.0), p)


# -- the rule registry -----------------------------------------------------------------

@dataclass(frozen=True)
class Arg:
    """One `args` key a rule reads: how its value is checked and read, and its default (None: absent stays None)."""

    parse: Callable[[Any, str], Any]      # (value, key) -> the value; JobArgError naming `args.<key>`
    default: Any = None


def number(default: float | None = None) -> Arg:
    return Arg(lambda v, key: read.number(v, f"args.{key}"), default)


def span(default: str | None = None) -> Arg:
    return Arg(lambda v, key: read.duration(v, f"args.{key}", positive=True), default)


def spans(default: list[str], *, example: str, may_be_empty: bool = False) -> Arg:
    """A list of positive durations (`windows = ["15min", "1h"]`)."""
    def parse(v: Any, key: str) -> list[dt.timedelta]:
        if not isinstance(v, list) or (not v and not may_be_empty):
            raise JobArgError(f"args.{key}: expected a list of durations, e.g. {example}"
                              + (" (or [] for none)" if may_be_empty else ""))
        return [read.duration(w, f"args.{key}", positive=True) for w in v]
    return Arg(parse, default)


def zone() -> Arg:
    return Arg(lambda v, key: read.zone(v, f"args.{key}"))


@dataclass(frozen=True)
class Rule:
    name: str                                                           # job name and `checks` entry
    check: Callable[[JobContext, sa.Connection, dict[str, Any]], CheckOutput]
    args: dict[str, Arg]
    validate: Callable[[dict[str, Any]], None] | None = None            # checks across its args


RULES: dict[str, Rule] = {}


def metric_rule(validate: Callable[[dict[str, Any]], None] | None = None, **args: Arg):
    """Register `def name(ctx, conn, a) -> CheckOutput` as a metric rule reading `args` (see the module doc).

    Returns the job `name(ctx) -> JobResult` that runs it alone; `validate(a)` checks the parsed args
    together (e.g. a critical line above the warning line)."""
    def register(check: Callable[[JobContext, sa.Connection, dict[str, Any]], CheckOutput]):
        name = check.__name__
        if name in RULES:
            raise ValueError(f"metric rule {name!r} registered twice")
        RULES[name] = Rule(name, check, args, validate)

        def job(ctx: JobContext) -> JobResult:
            return run_checks(ctx, [name])
        job.__name__ = job.__qualname__ = name
        job.__doc__ = f"Job: the metric rule {name} alone. " + (check.__doc__ or "")
        job.rule = RULES[name]
        return job
    return register


def _parsed(rule: Rule, args: dict[str, Any]) -> dict[str, Any]:
    """The rule's args as it reads them: each given value checked and read, the defaults filled in."""
    out: dict[str, Any] = {}
    for key, arg in rule.args.items():
        value = args.get(key, arg.default)
        out[key] = None if value is None else arg.parse(value, key)
    return out


# -- rules -------------------------------------------------------------------------------

def _judge(rows: list[dict[str, Any]]) -> tuple[Severity | None, dict[str, Any] | None]:
    """The scope's verdict from its windows: critical when a fast window is over its line, warning when a
    slow one is; each judged only with enough jobs and failures (see error_rate)."""
    over = [r for r in rows if r["judged"] and r["wilson_low_pct"] > r["limit_pct"]]
    for severity in (Severity.critical, Severity.warning):
        mine = [r for r in over if r["severity"] == severity.value]
        if mine:
            return severity, max(mine, key=lambda r: r["wilson_low_pct"] - r["limit_pct"])
    return None, max(rows, key=lambda r: r["wilson_low_pct"], default=None)


def bonferroni_z(confidence: float, tests: int) -> float:
    """The z of a two-sided interval that keeps `confidence` for `tests` tests together (Bonferroni)."""
    alpha = (1.0 - confidence) / max(tests, 1)
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _error_rate_lines(a: dict[str, Any]) -> None:
    if a["critical_pct"] < a["warn_pct"]:
        raise JobArgError("args.critical_pct: must be >= warn_pct")
    if not 0.5 <= a["confidence"] < 1.0:
        raise JobArgError("args.confidence: expected a probability in [0.5, 1), e.g. 0.95")


@metric_rule(warn_pct=number(1.0), critical_pct=number(14.4), slow_burn=number(3.0),
             slow_critical_burn=number(6.0), min_jobs=number(3), min_failures=number(3),
             confidence=number(0.95), z=number(),
             windows=spans(["15min", "1h"], example='["15min", "1h"]'),
             slow_windows=spans(["6h"], example='["6h"]', may_be_empty=True),
             validate=_error_rate_lines)
def error_rate(ctx: JobContext, conn: sa.Connection, a: dict[str, Any]) -> CheckOutput:
    """Failure share of finished jobs per provider, and of all other providers together.

    Multi-window burn rates against the error budget (`warn_pct`, 1 %: 99 % of
    jobs succeed), as in the Google SRE workbook, judged on the
    (continuity-corrected) Wilson lower bound so a handful of jobs proves nothing:
    - fast burn, CRITICAL: in a short window (`windows`, 15 min and 1 h) even the
      optimistic end of the interval is above `critical_pct` (14.4 %: the
      workbook's 14.4x burn, 2 % of a 30-day budget in an hour);
    - slow burn over a long window (`slow_windows`, 6 h): CRITICAL above
      `slow_critical_burn` times the budget (6 %), WARNING above `slow_burn` times
      it (3 %). The long window also keeps an incident's alert firing while its
      short windows dip (keep_firing_for-style hysteresis), so it does not flap.
    A window is judged on at least `min_jobs` finished jobs and `min_failures`
    failures. The interval's z is corrected for multiple testing (Bonferroni over
    every scope and window: 5 scopes x 3 windows at `confidence` 95 % together give
    z = 2.94), so a healthy app does not warn because it was asked 15 questions.
    The 'all' scope covers the providers not flagged on their own, so one
    provider's outage raises one alert, not two, while failures spread thinly over
    many small providers still add up to one.
    """
    warn = a["warn_pct"] / 100.0
    crit = a["critical_pct"] / 100.0
    slow_burn = a["slow_burn"]
    slow_critical_burn = a["slow_critical_burn"]
    min_jobs = int(a["min_jobs"])
    min_failures = int(a["min_failures"])
    confidence = a["confidence"]
    fast, slow = a["windows"], a["slow_windows"]
    spans = ([(w, Severity.critical, crit) for w in fast]
             + [(w, Severity.critical, slow_critical_burn * warn) for w in slow]
             + [(w, Severity.warning, slow_burn * warn) for w in slow])
    now = ctx.now()
    q = queries.load("metrics").job_outcomes

    counts: dict[str, dict[str, tuple[int, int]]] = {}  # window -> provider -> (finished, failed)
    for span, _, _ in spans:
        if _words(span) not in counts:
            df = q(conn, span=span, now=now)
            counts[_words(span)] = {r.provider: (int(r.finished), int(r.failed)) for r in df.itertuples(index=False)}
    providers = sorted({p for c in counts.values() for p in c if p != "*"})
    z = a["z"] if a["z"] is not None else bonferroni_z(confidence, (len(providers) + 1) * len(counts))

    def row(span: dt.timedelta, severity: Severity, limit: float, n: int, f: int) -> dict[str, Any]:
        return {"window": _words(span), "finished": n, "failed": f,
                "rate_pct": round(100.0 * f / n, 2) if n else None,
                "wilson_low_pct": round(100.0 * wilson_lower(f, n, z), 2),
                "limit_pct": round(100.0 * limit, 2), "severity": severity.value,
                "judged": n >= min_jobs and f >= min_failures}

    out = CheckOutput(rules={ERROR_RATE})
    flagged: set[str] = set()
    results: list[tuple[str, Severity, dict[str, Any], list[dict[str, Any]]]] = []
    for prov in providers:
        rows = [row(w, sev, lim, *counts[_words(w)].get(prov, (0, 0))) for w, sev, lim in spans]
        severity, worst = _judge(rows)
        if severity is not None:
            flagged.add(prov)
            results.append((prov, severity, worst, rows))
    rest_rows = []
    for w, sev, lim in spans:
        c = counts[_words(w)]
        n = sum(c[p][0] for p in providers if p in c and p not in flagged)
        f = sum(c[p][1] for p in providers if p in c and p not in flagged)
        rest_rows.append(row(w, sev, lim, n, f))
    for w, c in counts.items():
        total = c.get("*", (0, 0))
        out.metrics[f"error_rate_pct_{w}"] = round(100.0 * total[1] / total[0], 2) if total[0] else 0.0
    severity, worst = _judge(rest_rows)
    if severity is not None:
        results.append(("all", severity, worst, rest_rows))

    windows = [w for w, _, _ in spans]
    since = now - max(windows)
    for scope, severity, worst, rows in results:
        who = ("all providers" if not flagged else "the other providers") if scope == "all" else scope
        out.findings.append(Finding(
            rule=ERROR_RATE, severity=severity, labels={"provider": scope},
            summary=(f"{who}: {worst['failed']}/{worst['finished']} jobs failed in the last {worst['window']} "
                     f"({worst['rate_pct']:.1f} %, at least {worst['wilson_low_pct']:.1f} % at "
                     f"{100 * confidence:g} % confidence over all checks; limit {worst['limit_pct']:g} %)"),
            evidence=rows, evidence_count=len(rows),
            command=f"opsbench query errors.window_by_provider -p since={since.isoformat()} -p until={now.isoformat()}",
            requires=NEEDS_DB,
        ))
    return out


@metric_rule(stuck_after=span("15min"))
def stuck_jobs(ctx: JobContext, conn: sa.Connection, a: dict[str, Any]) -> CheckOutput:
    """Jobs pending/processing longer than `stuck_after` (default 15min)."""
    older = a["stuck_after"]
    df = queries.load("metrics").stuck_jobs(conn, older_than=older, now=ctx.now())
    out = CheckOutput(rules={STUCK_JOBS}, metrics={"stuck_jobs": float(len(df))})
    if len(df):
        oldest = float(df["age_minutes"].max())
        out.findings.append(Finding(
            rule=STUCK_JOBS, severity=Severity.warning,
            summary=f"{len(df)} video job(s) pending or processing for more than {_words(older)} "
                    f"(oldest {oldest / 60:.1f} h)",
            details="job ids: " + ", ".join(str(x) for x in df["job_id"].head(EVIDENCE_ROWS)),
            evidence=_records(df), evidence_count=len(df),
            command=f"opsbench query metrics.stuck_jobs -p older_than={_words(older)}",
            requires=NEEDS_DB,
        ))
    return out


@metric_rule()
def negative_balances(ctx: JobContext, conn: sa.Connection, a: dict[str, Any]) -> CheckOutput:
    """Any user with a negative credit balance (critical): the reconciliation check's rows, looked at live."""
    df = queries.load("metrics").negative_balances(conn, now=ctx.now())
    out = CheckOutput(rules={NEGATIVE_BALANCE}, metrics={"negative_balances": float(len(df))})
    if len(df):
        df = df.assign(user=df["user_id"].map(_short)).drop(columns=["user_id"])
        out.findings.append(Finding(
            rule=NEGATIVE_BALANCE, severity=Severity.critical,
            summary=f"{len(df)} user(s) with a negative credit balance (lowest {int(df['credits_remaining'].min())})",
            evidence=_records(df[["user", "credits_remaining", "created_at"]]), evidence_count=len(df),
            command="opsbench query metrics.negative_balances", requires=NEEDS_DB,
        ))
    return out


def expected_purchases(rates: dict[int, float], start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> float:
    """Purchases the baseline expects in [start, end): each local hour's rate times its overlap."""
    total = 0.0
    t = start
    guard = 0
    while t < end and guard < 24 * 7 * 8:  # a gap longer than 8 weeks is certain anyway
        local = t.astimezone(tz)
        hour_start = local.replace(minute=0, second=0, microsecond=0)
        next_hour = (hour_start + dt.timedelta(hours=1)).astimezone(dt.timezone.utc)
        piece_end = min(end, next_hour)
        how = local.weekday() * 24 + local.hour
        total += rates.get(how, 0.0) * (piece_end - t).total_seconds() / 3600.0
        t = piece_end
        guard += 1
    return total


def _probability_lines(a: dict[str, Any]) -> None:
    if a["critical_probability"] > a["warn_probability"]:
        raise JobArgError("args.critical_probability: must be <= warn_probability (a smaller chance is worse)")


@metric_rule(weeks=number(8), min_gap=span("1h"), warn_probability=number(1e-3),
             critical_probability=number(1e-6), min_history_weeks=number(2), tz=zone(),
             validate=_probability_lines)
def purchases_stopped(ctx: JobContext, conn: sa.Connection, a: dict[str, Any]) -> CheckOutput:
    """No production purchase for longer than the data's own baseline makes plausible.

    Baseline: for every local hour of the week, the purchases per hour over the
    last `weeks` weeks, after dropping the busiest week (one promotion must not
    raise the bar). The purchases expected in the silent gap are summed hour by
    hour; under a Poisson model the chance of seeing none is exp(-expected).
    It fires when that chance is below `warn_probability` and the gap is at
    least `min_gap` (a floor so a quiet hour never pages).
    """
    weeks = int(a["weeks"])
    min_gap = a["min_gap"]
    p_warn = a["warn_probability"]
    p_crit = a["critical_probability"]
    min_hours = int(a["min_history_weeks"])
    tz = a["tz"] or read.zone(ctx.settings.report_tz, "args.tz")
    tz_name = tz.key
    now = ctx.now()
    m = queries.load("metrics")

    last = m.last_purchase(conn, now=now).iloc[0]
    out = CheckOutput()
    if last["last_purchased_at"] is None or pd.isna(last["last_purchased_at"]):
        out.notes.append("no production purchases yet: no baseline")
        return out
    last_at = pd.Timestamp(last["last_purchased_at"]).to_pydatetime()
    gap = now - last_at
    base = m.purchase_rate_by_hour_of_week(conn, weeks=weeks, tz=tz_name, now=now)
    base = base[base["hours"] >= min_hours]
    if len(base) < 168:
        out.notes.append(f"baseline needs {min_hours} weeks of sales history")
        return out
    rates = dict(zip(base["hour_of_week"].astype(int), base["trimmed_per_hour"].astype(float)))
    expected = expected_purchases(rates, last_at, now, tz)
    p_none = math.exp(-expected)
    out.rules.add(PURCHASES_STOPPED)
    out.metrics.update({"minutes_since_last_purchase": gap.total_seconds() / 60, "expected_purchases_in_gap": expected})
    if gap >= min_gap and p_none < p_warn:
        severity = Severity.critical if p_none < p_crit else Severity.warning
        hours = gap.total_seconds() / 3600
        out.findings.append(Finding(
            rule=PURCHASES_STOPPED, severity=severity,
            summary=(f"no purchase for {hours:.1f} h; the last {weeks} weeks make about {expected:.1f} "
                     f"expected in that time (chance of none {p_none:.1e})"),
            details=f"last production purchase at {last_at.isoformat()}; hours of the week in {tz_name}",
            evidence=[{"last_purchase_at": last_at.isoformat(), "gap_hours": round(hours, 2),
                       "expected": round(expected, 2), "p_none": p_none}],
            evidence_count=1,
            command=f"opsbench query metrics.purchase_rate_by_hour_of_week -p weeks={weeks} -p tz={tz_name}",
            requires=NEEDS_DB,
        ))
    return out


def _outliers(values: dict[str, int], min_count: float, multiple: float, z_limit: float) -> list[tuple[str, int, float, float]]:
    """Actors far above the others: (actor, count, median, robust z).

    Robust z uses the median absolute deviation; when most actors have the same
    count the MAD is 0 and the multiple of the median decides alone.
    """
    if not values:
        return []
    counts = list(values.values())
    med = median(counts)
    mad = median(abs(c - med) for c in counts)
    out = []
    for actor, c in values.items():
        z = (c - med) / (1.4826 * mad) if mad > 0 else math.inf
        if c >= min_count and c >= multiple * max(med, 1.0) and z >= z_limit:
            out.append((actor, c, float(med), z))
    return sorted(out, key=lambda t: -t[1])


def _rate_limits(v: Any, key: str) -> dict[str, tuple[float, dt.timedelta]]:
    """`rate_limits = { action = { max = N, window = "1h" } }` -> action: (max, window)."""
    if not isinstance(v, dict):
        raise JobArgError(f"args.{key}: expected a table of action = {{ max = N, window = \"1h\" }}")
    out = {}
    for action, spec in v.items():
        if not isinstance(spec, dict) or "max" not in spec or set(spec) - {"max", "window"}:
            raise JobArgError(f"args.{key}.{action}: expected {{ max = N, window = \"1h\" }}")
        try:
            if _num(spec, "max", 0) <= 0:
                raise JobArgError("args.max: expected a positive number")
            out[action] = (_num(spec, "max", 0), _span(spec, "window", "1h"))
        except JobArgError as e:
            raise JobArgError(f"args.{key}.{action}.{str(e).removeprefix('args.')}") from None
    return out


@metric_rule(usage_window=span("1h"), min_requests=number(20), multiple_of_median=number(10),
             robust_z=number(5), rate_limit_near_pct=number(100),
             rate_limits=Arg(_rate_limits, {"video_generation": {"max": 10, "window": "1h"}}))
def abuse(ctx: JobContext, conn: sa.Connection, a: dict[str, Any]) -> CheckOutput:
    """Users far above the usual usage ("high usage"), and IPs past their rate limit (`rate_limit_near_pct`, 100 %)."""
    span = a["usage_window"]
    min_count = a["min_requests"]
    multiple = a["multiple_of_median"]
    z_limit = a["robust_z"]
    near = a["rate_limit_near_pct"] / 100.0
    now = ctx.now()
    m = queries.load("metrics")
    out = CheckOutput(rules={HIGH_USAGE, RATE_LIMIT_NEAR})

    users = m.usage_by_user(conn, span=span, now=now)
    ips = m.usage_by_ip(conn, span=span, now=now)
    actors = [("user", "video jobs", {str(u): int(n) for u, n in zip(users["user_id"], users["jobs"])}),
              ("ip", "requests", {str(ip): int(n) for ip, n in zip(ips["ip"], ips["requests"])})]
    for kind, what, counts in actors:
        for who, c, med, z in _outliers(counts, min_count, multiple, z_limit):
            actor = _short(who) if kind == "user" else who  # user ids appear shortened in messages
            out.findings.append(Finding(
                rule=HIGH_USAGE, severity=Severity.warning, labels={"kind": kind, "who": actor},
                summary=f"{kind} {actor}: {c} {what} in the last {_words(span)} (typical {med:g})",
                evidence=[{"kind": kind, "who": actor, "count": c, "median": med,
                           "robust_z": None if math.isinf(z) else round(z, 1)}],
                evidence_count=1,
                command=f"opsbench query metrics.usage_by_{kind} -p span={_words(span)}",
                requires=NEEDS_DB,
            ))
    for action, (cap, window) in sorted(a["rate_limits"].items()):
        # "> 80 % of the limit": the smallest count strictly above near * max
        threshold = math.floor(near * cap) + 1
        df = m.rate_limit_usage(conn, action=action, span=window, min_requests=threshold, now=now)
        for r in df.itertuples(index=False):
            out.findings.append(Finding(
                rule=RATE_LIMIT_NEAR, severity=Severity.info, labels={"action": action, "ip": r.ip},
                summary=f"{r.ip}: {r.requests} {action} requests in {_words(window)}, "
                        f"{100 * r.requests / cap:.0f} % of the limit {cap:g}",
                evidence=_records(pd.DataFrame([r._asdict()])), evidence_count=1,
                command=f"opsbench query metrics.rate_limit_usage -p action={action} -p span={_words(window)}",
                requires=NEEDS_DB,
            ))
    out.metrics["active_users"] = float(len(users))
    return out


def run_checks(ctx: JobContext, names: list[str]) -> JobResult:
    """Run the named checks on one analytics connection and merge their results."""
    try:
        conn = ctx.analytics.connect()
    except sa.exc.OperationalError as exc:
        reason = redact(getattr(exc, "orig", exc)).strip().splitlines()
        return JobResult(status="skipped",
                         summary=f"backend database unreachable ({reason[0][:200] if reason else 'no detail'}); "
                                 f"the postgres probe reports it as {DATABASE_UNREACHABLE}")
    result = JobResult()
    parts: list[str] = []
    failed: list[str] = []
    with conn:
        for name in names:
            try:
                rule = RULES[name]
                out = rule.check(ctx, conn, _parsed(rule, ctx.args))
            except JobArgError:
                raise  # a configuration mistake: fail loudly with the one-line message
            except sa.exc.OperationalError:
                raise  # the connection died: the run as a whole failed
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                conn.rollback()
                ctx.logger.exception("metric check %s failed", name)
                failed.append(f"{name}: {redact(exc).splitlines()[0][:200]}")
                continue
            result.findings += out.findings
            result.rules |= out.rules
            result.metrics.update(out.metrics)
            parts.append(f"{name}: {len(out.findings)} finding(s)" + (f" ({'; '.join(out.notes)})" if out.notes else ""))
    if failed:
        result.status = "failed"
        parts += [f"FAILED {f}" for f in failed]
    result.summary = "; ".join(parts)
    return result


def metric_probes(ctx: JobContext) -> JobResult:
    """Job: every metric check (args apply to all; see each check for its keys)."""
    only = ctx.args.get("checks")
    names = list(RULES) if not only else [str(n) for n in only]
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise JobArgError(f"args.checks: unknown check {unknown[0]!r} (expected: {', '.join(RULES)})")
    return run_checks(ctx, names)


# -- argument check for the jobs-file loader ------------------------------------------

def validate_args(args: dict[str, Any], *, allow_checks: bool = True) -> None:
    """Every key the rules read (their declarations above), checked up front. Raises JobArgError naming the key.

    Any rule's keys are accepted by each metric job (one [jobs.X.args] table may be copied between them)."""
    allowed = {key for rule in RULES.values() for key in rule.args} | ({"checks"} if allow_checks else set())
    read.known_keys(args, allowed)
    for rule in RULES.values():
        parsed = _parsed(rule, args)
        if rule.validate is not None:
            rule.validate(parsed)
    only = args.get("checks")
    if only is not None:
        if not isinstance(only, list) or not only or any(str(n) not in RULES for n in only):
            raise JobArgError(f"args.checks: expected a list drawn from {', '.join(RULES)}")


def _validate_single(args: dict[str, Any]) -> None:
    validate_args(args, allow_checks=False)


ARG_VALIDATORS = {"metric_probes": validate_args, **{name: _validate_single for name in RULES}}
