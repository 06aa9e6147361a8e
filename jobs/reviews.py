"""The weekly maintenance review: admin actions and error patterns.

The seeds' weekly list asks a human to "review admin actions" and "analyze
error patterns". This job does the reading and hands over what deserves a look:

  * `admin_actions_review` (info): the week's admin actions by actor and type;
    `admin_action_by_non_admin` (warning) when the actor is not an admin.
  * `new_error_code` (warning): a code seen this week and never in the
    `baseline_weeks` before.
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
from jobs.base import Finding, JobContext, JobResult, Severity
from jobs.probes import DATABASE_UNREACHABLE

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


def review_error_codes(df: pd.DataFrame, growth: float, min_count: int, z_limit: float,
                       command: str) -> list[Finding]:
    findings: list[Finding] = []
    for _, r in df.iterrows():
        source, code = str(r["source"]), str(r["code"])
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


def weekly_review(ctx: JobContext) -> JobResult:
    """Job: the weekly review. args: days (7), baseline_weeks (4), growth (2), min_count (10), z (3)."""
    a = ctx.args
    days = int(a.get("days", 7))
    weeks = int(a.get("baseline_weeks", 4))
    growth = float(a.get("growth", 2.0))
    min_count = int(a.get("min_count", 10))
    z_limit = float(a.get("z", 3.0))
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
    return JobResult(
        status="ok",
        summary=(f"{int(admin['actions'].sum()) if len(admin) else 0} admin actions; "
                 f"{counts[NEW_CODE]} new error code(s); {counts[SHARE_GREW]} code(s) grew; "
                 f"{counts[ADMIN_NOT_ADMIN]} action group(s) by non-admins"),
        metrics={"admin_actions": float(admin["actions"].sum()) if len(admin) else 0.0,
                 "new_error_codes": float(counts[NEW_CODE]), "grown_error_codes": float(counts[SHARE_GREW])},
        findings=findings, rules={ADMIN_REVIEW, ADMIN_NOT_ADMIN, NEW_CODE, SHARE_GREW},
    )
