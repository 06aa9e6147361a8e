"""The weekly maintenance review: admin actions and error patterns.

A weekly maintenance routine asks a human to "review admin actions" and
"analyze error patterns". This job does the reading and hands over what deserves a look:

  * `admin_actions_review` (info): the week's admin actions by actor and type;
    `admin_action_by_non_admin` (warning) when the actor is not an admin.
  * `new_error_code` (warning): a code seen this week and never in the
    `baseline_weeks` before. Only judged for a source (error_log, failed
    video jobs) that has errors in the baseline weeks: on a fresh backend with
    no history every code would be "new", so the check is skipped for that
    source and the run's summary says so.
  * `error_code_share_grew` (info): a code whose share of its source's errors
    grew at least `growth`-fold and significantly (two-proportion z >= `z`,
    at least `min_count` this week), so noise in small counts stays quiet.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

import queries
from jobs import args as read
from jobs.probes.common import DATABASE_UNREACHABLE
from ops.contract import Finding, JobContext, JobResult, Severity

ADMIN_REVIEW = "admin_actions_review"
ADMIN_NOT_ADMIN = "admin_action_by_non_admin"
NEW_CODE = "new_error_code"
SHARE_GREW = "error_code_share_grew"
NEEDS_DB = (DATABASE_UNREACHABLE,)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """z of p1 > p2 with the pooled standard error (0 when undefined)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 0.0 if se == 0 else (x1 / n1 - x2 / n2) / se


def _json(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return v.isoformat()
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def review_admin_actions(df: pd.DataFrame, window: str, command: str) -> list[Finding]:
    findings: list[Finding] = []
    if df.empty:
        return findings
    rows = [{"admin": str(r["admin_user_id"])[:8], "action_type": r["action_type"], "actions": int(r["actions"]),
             "credits": int(r["credits"]), "target_users": int(r["target_users"]),
             "last_reason": r["last_reason"], "last_at": _json(r["last_at"])} for _, r in df.iterrows()]
    by_type = df.groupby("action_type")["actions"].sum().sort_values(ascending=False)
    findings.append(Finding(
        rule=ADMIN_REVIEW, severity=Severity.info,
        summary=f"{int(df['actions'].sum())} admin action(s) in {window}: "
                + ", ".join(f"{t} {int(n)}" for t, n in by_type.items())
                + f"; {int(df.loc[df['action_type'].isin(['credit_refund', 'credit_adjustment']), 'credits'].sum())} credits moved",
        evidence=rows[:20], evidence_count=len(rows), command=command, requires=NEEDS_DB,
    ))
    for _, r in df[~df["actor_is_admin"].astype(bool)].iterrows():
        who = str(r["admin_user_id"])[:8]
        findings.append(Finding(
            rule=ADMIN_NOT_ADMIN, severity=Severity.warning, labels={"actor": who},
            summary=f"{who} performed {int(r['actions'])} {r['action_type']} action(s) in {window} but is not an admin",
            evidence=[{"actor": who, "action_type": r["action_type"], "actions": int(r["actions"])}],
            evidence_count=1, command=command, requires=NEEDS_DB,
        ))
    return findings


def sources_without_baseline(df: pd.DataFrame) -> list[str]:
    """Sources with errors this week but none in the baseline weeks: "new" means nothing there."""
    if df.empty:
        return []
    totals = df.groupby("source")[["recent_total", "baseline_total"]].max()
    return sorted(str(s) for s, r in totals.iterrows() if int(r["baseline_total"]) == 0)


def review_error_codes(df: pd.DataFrame, growth: float, min_count: int, z_limit: float,
                       command: str) -> list[Finding]:
    findings: list[Finding] = []
    no_baseline = set(sources_without_baseline(df))
    for _, r in df.iterrows():
        source, code = str(r["source"]), str(r["code"])
        if source in no_baseline:
            continue  # no history to be new against, and no share before to grow from
        recent, base = int(r["recent"]), int(r["baseline"])
        rt, bt = int(r["recent_total"]), int(r["baseline_total"])
        labels = {"source": source, "code": code}
        share_now = recent / rt if rt else 0.0
        share_before = base / bt if bt else 0.0
        row = {"source": source, "code": code, "this_week": recent, "before": base,
               "share_pct": round(100 * share_now, 2), "share_before_pct": round(100 * share_before, 2)}
        if recent > 0 and base == 0:
            findings.append(Finding(
                rule=NEW_CODE, severity=Severity.warning, labels=labels,
                summary=f"new error code {code} in {source}: {recent} this week, none in the weeks before",
                evidence=[row], evidence_count=1, command=command, requires=NEEDS_DB,
            ))
        elif (recent >= min_count and share_now >= growth * share_before
              and two_proportion_z(recent, rt, base, bt) >= z_limit):
            findings.append(Finding(
                rule=SHARE_GREW, severity=Severity.info, labels=labels,
                summary=(f"{code} in {source} grew to {100 * share_now:.1f} % of errors this week "
                         f"from {100 * share_before:.1f} % ({recent} vs {base} before)"),
                evidence=[row], evidence_count=1, command=command, requires=NEEDS_DB,
            ))
    return findings


_ARGS = {"days": (int, 7, 1), "baseline_weeks": (int, 4, 1), "growth": (float, 2.0, 1.0),
         "min_count": (int, 10, 1), "z": (float, 3.0, 0.0)}


def review_args(args: dict[str, Any]) -> dict[str, Any]:
    """The review's arguments with defaults, checked. Raises JobArgError naming the key."""
    read.known_keys(args, _ARGS)
    out: dict[str, Any] = {}
    for key, (kind, default, minimum) in _ARGS.items():
        value = args.get(key, default)
        out[key] = (read.whole(value, f"args.{key}", minimum=minimum) if kind is int
                    else read.number(value, f"args.{key}", minimum=minimum))
    return out


def validate_args(args: dict[str, Any]) -> None:
    review_args(args)


def weekly_review(ctx: JobContext) -> JobResult:
    """Job: the weekly review. args: days (7), baseline_weeks (4), growth (2), min_count (10), z (3)."""
    a = review_args(ctx.args)
    days, weeks, growth, min_count, z_limit = a["days"], a["baseline_weeks"], a["growth"], a["min_count"], a["z"]
    until = ctx.now()
    since = until - dt.timedelta(days=days)
    window = f"the {days} days to {until:%Y-%m-%d %H:%M} UTC"
    q = queries.load("reviews")
    with ctx.analytics.connect() as conn:
        admin = q.admin_actions(conn, since=since, until=until)
        codes = q.error_codes(conn, since=since, until=until, weeks=weeks)
    span = f"-p since={since.isoformat()} -p until={until.isoformat()}"
    findings = review_admin_actions(admin, window, f"opsbench query reviews.admin_actions {span}")
    findings += review_error_codes(codes, growth, min_count, z_limit,
                                   f"opsbench query reviews.error_codes {span} -p weeks={weeks}")
    counts = {rule: sum(f.rule == rule for f in findings) for rule in (NEW_CODE, SHARE_GREW, ADMIN_NOT_ADMIN)}
    no_baseline = sources_without_baseline(codes)
    judged = set(codes["source"]) - set(no_baseline) if len(codes) else set()
    skipped = (f" (new-code and growth checks skipped for {', '.join(no_baseline)}: no errors in the "
               f"{weeks} baseline week(s) before, so every code would look new)") if no_baseline else ""
    rules = {ADMIN_REVIEW, ADMIN_NOT_ADMIN}
    if judged or not no_baseline:
        # a run that could judge no source says nothing about earlier new-code alerts
        rules |= {NEW_CODE, SHARE_GREW}
    return JobResult(
        status="ok",
        summary=(f"{int(admin['actions'].sum()) if len(admin) else 0} admin actions; "
                 f"{counts[NEW_CODE]} new error code(s); {counts[SHARE_GREW]} code(s) grew{skipped}; "
                 f"{counts[ADMIN_NOT_ADMIN]} action group(s) by non-admins"),
        metrics={"admin_actions": float(admin["actions"].sum()) if len(admin) else 0.0,
                 "new_error_codes": float(counts[NEW_CODE]), "grown_error_codes": float(counts[SHARE_GREW]),
                 "sources_without_baseline": float(len(no_baseline))},
        findings=findings, rules=rules,
    )


ARG_VALIDATORS = {"weekly_review": validate_args}
