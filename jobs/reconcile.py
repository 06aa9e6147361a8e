"""Daily ledger reconciliation: every check of `queries/reconciliation.sql`.

A check is a named query of that file with no required parameters (the
`summary` roll-up aside); it returns the offending rows, none meaning pass. A
failing check becomes a finding carrying its first rows and the command that
lists them all; every check's count is stored each run
(`opsbench.reconciliation_counts`) so drift can be drawn over time.

Each check has a rule of its own (`reconcile_<check>`), so a check that could
not run this time does not resolve its alert by omission.
"""

from __future__ import annotations

from typing import Any

import queries
from jobs import args as read
from jobs.args import JobArgError
from jobs.evidence import clean_row
from jobs.metrics import NEGATIVE_BALANCE
from jobs.probes import DATABASE_UNREACHABLE, record_state
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.redact import redact

SUBJECT = "reconciliation"
_NOT_CHECKS = {"summary"}
# Money owed to a customer or credits out of thin air page; the rest is a warning.
DEFAULT_SEVERITY = {
    "negative_balances": Severity.critical,
    "purchase_credit_mismatch": Severity.critical,
}
# Checks that a live metric probe also watches: while the probe's alert fires,
# the daily check's alert is held back so the founder hears about it once.
_COVERED_BY = {"negative_balances": NEGATIVE_BALANCE}


def rule_for(check: str) -> str:
    return f"reconcile_{check}"


def checks() -> list[str]:
    """Names of the reconciliation checks, in file order."""
    subject = queries.load(SUBJECT)
    return [name for name, q in subject.queries.items()
            if name not in _NOT_CHECKS and not any(p.required for p in q.params)]


def run_check(conn, name: str, keep: int) -> tuple[int, list[dict[str, Any]]]:
    """(offending rows, the first `keep` of them): one plain statement with count(*) OVER ()."""
    total, first = getattr(queries.load(SUBJECT), name).count_and_head(conn, keep)
    return total, [clean_row(r) for r in first]


def reconcile(ctx: JobContext) -> JobResult:
    """Job: run every reconciliation check.

    args: checks (default all), evidence_rows (5), severity (a table check ->
    critical|warning|info overriding the defaults).
    """
    names = ctx.args.get("checks") or checks()
    known = set(checks())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise JobArgError(f"args.checks: unknown check {unknown[0]!r} (expected: {', '.join(sorted(known))})")
    keep = int(ctx.args.get("evidence_rows", 5))
    overrides = {k: Severity(v) for k, v in (ctx.args.get("severity") or {}).items()}
    now = ctx.now()

    findings: list[Finding] = []
    rules: set[str] = set()
    counts: dict[str, int] = {}
    failed: list[str] = []
    with ctx.analytics.connect() as conn:
        for name in names:
            try:
                count, first = run_check(conn, name, keep)
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                conn.rollback()
                ctx.logger.exception("reconciliation check %s failed", name)
                failed.append(f"{name}: {redact(exc).splitlines()[0][:200]}")
                continue
            counts[name] = count
            rules.add(rule_for(name))
            if count:
                description = getattr(queries.load(SUBJECT), name).description
                findings.append(Finding(
                    rule=rule_for(name),
                    severity=overrides.get(name, DEFAULT_SEVERITY.get(name, Severity.warning)),
                    labels={"check": name},
                    summary=f"reconciliation {name}: {count} row(s) - {description}",
                    evidence=first, evidence_count=count,
                    command=f"opsbench query {SUBJECT}.{name}",
                    requires=(DATABASE_UNREACHABLE,) + ((_COVERED_BY[name],) if name in _COVERED_BY else ()),
                ))

    record_state(ctx, "insert_reconciliation_count", (
        {"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id, "check_name": name, "rows_found": n}
        for name, n in counts.items()
    ))
    parts = [f"{name} {'ok' if n == 0 else n}" for name, n in counts.items()]
    parts += [f"FAILED {f}" for f in failed]
    return JobResult(
        status="failed" if failed else "ok",
        summary=f"{sum(1 for n in counts.values() if n == 0)}/{len(counts)} checks pass: " + ", ".join(parts),
        metrics={f"reconcile_{k}": float(v) for k, v in counts.items()},
        findings=findings, rules=rules,
    )


def validate_args(args: dict[str, Any]) -> None:
    """For the jobs-file loader: checks, evidence_rows and severity, checked against the SQL file."""
    allowed = {"checks", "evidence_rows", "severity"}
    read.known_keys(args, allowed)
    known = checks()
    names = args.get("checks")
    if names is not None and (not isinstance(names, list) or any(n not in known for n in names)):
        raise JobArgError(f"args.checks: expected a list drawn from {', '.join(known)}")
    read.whole(args.get("evidence_rows", 5), "args.evidence_rows")
    severity = args.get("severity") or {}
    if not isinstance(severity, dict):
        raise JobArgError("args.severity: expected a table of check = \"critical\" | \"warning\" | \"info\"")
    levels = [s.value for s in Severity]
    for check, level in severity.items():
        if check not in known:
            raise JobArgError(f"args.severity.{check}: no such check (expected one of: {', '.join(known)})")
        if level not in levels:
            raise JobArgError(f"args.severity.{check}: expected one of {', '.join(levels)}")


ARG_VALIDATORS = {"reconcile": validate_args}
