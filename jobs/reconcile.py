"""Business invariants, checked nightly: every check file, shipped and the founder's own.

A check is one SQL file (`queries/checks/*.sql`, and `OPSBENCH_CHECKS_DIR/*.sql`;
format in `queries.checkfile`) whose query returns the offending rows, none
meaning pass. Each runs as one plain read-only statement returning its count
and first rows; a failing check becomes a finding carrying those rows and the
command that lists them all (`opsbench checks run NAME`); every check's count
is stored each run (`opsbench.reconciliation_counts`) so drift can be drawn
over time.

Each check has a rule of its own (`reconcile_<check>`), so a check that could
not run this time does not resolve its alert by omission. A broken check file
(bad header, not a read-only query, an SQL error) is that check's own finding,
naming the file and line; the other checks run all the same.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from jobs import args as read
from jobs.args import JobArgError
from jobs.evidence import clean_row
from jobs.probes.common import DATABASE_UNREACHABLE, record_state
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.errors import SettingsError
from queries import checkfile, loader

SUBJECT = "reconciliation"
# a broken check cannot vouch for its invariant: look today, but it is not money going wrong
BROKEN_SEVERITY = Severity.warning


def rule_for(check: str) -> str:
    return f"reconcile_{check}"


def _catalogue(settings=None) -> checkfile.Catalogue:
    if settings is None:
        try:
            checks_dir = checkfile.settings_dir()
        except SettingsError:
            checks_dir = None
    else:
        checks_dir = settings.checks_dir
    return checkfile.discover(checks_dir)


def checks(settings=None) -> list[str]:
    """Names of the runnable checks: the shipped ones, then the founder's (OPSBENCH_CHECKS_DIR), by name."""
    return _catalogue(settings).names()


def run_check(conn, check: checkfile.Check, keep: int) -> tuple[int, list[dict[str, Any]]]:
    """(offending rows, the first `keep` of them cleaned for a chat): one plain statement with count(*) OVER ()."""
    total, first = checkfile.run(conn, check, keep)
    return total, [clean_row(r) for r in first]


# undefined table / column: a shipped check that hits these says the backend's schema
# is not the one queries/schema.sql describes (doctor names what is missing)
_SCHEMA_MISSING = {"42P01", "42703"}
# insufficient_privilege: the analytics role may not read a table (doctor names the GRANT that works)
_PERMISSION_DENIED = "42501"


def _unconfigured(check: checkfile.Check, settings) -> str | None:
    """The setting a check needs and the founder has not set (the check then judges nothing), or None."""
    for p in check.params:
        var, attr = loader.SETTINGS_DEFAULTS.get(p.default or "", (None, None))
        if var and getattr(settings, attr, None) is None:
            return var
    return None


def _broken(name: str, problem: checkfile.Problem) -> Finding:
    return Finding(
        rule=rule_for(name), severity=BROKEN_SEVERITY, labels={"check": name},
        summary=f"reconciliation {name}: the check is broken - {problem}",
        details="Fix the file; until then this invariant is not checked.",
        command=f"opsbench checks run {name}",
        requires=(DATABASE_UNREACHABLE,),
    )


def reconcile(ctx: JobContext) -> JobResult:
    """Job: run every check.

    args: checks (default all), evidence_rows (5), severity (a table check ->
    critical|warning|info overriding the check file's own).
    """
    catalogue = _catalogue(ctx.settings)
    broken_files = {p.key: p for p in catalogue.problems}
    names = ctx.args.get("checks") or [*catalogue.names(), *broken_files]
    unknown = [n for n in names if n not in catalogue.checks and n not in broken_files]
    if unknown:
        raise JobArgError(f"args.checks: unknown check {unknown[0]!r} "
                          f"(expected: {', '.join(sorted(catalogue.checks))})")
    keep = int(ctx.args.get("evidence_rows", 5))
    overrides = {k: Severity(v) for k, v in (ctx.args.get("severity") or {}).items()}
    now = ctx.now()

    findings: list[Finding] = []
    rules: set[str] = set()
    counts: dict[str, int] = {}
    broken: list[str] = []
    not_configured: dict[str, str] = {}
    for name in names:
        if name in broken_files:
            findings.append(_broken(name, broken_files[name]))
            rules.add(rule_for(name))
            broken.append(name)
    runnable = [n for n in names if n in catalogue.checks]
    if runnable:
        with ctx.analytics.connect() as raw:
            conn = checkfile.readonly(raw)
            for name in runnable:
                check = catalogue.checks[name]
                missing = _unconfigured(check, ctx.settings)
                if missing:
                    # nothing to judge without the founder's file: not a pass, and no alert of its rule resolves
                    not_configured[name] = missing
                    continue
                try:
                    count, first = run_check(conn, check, keep)
                except sa.exc.DBAPIError as exc:
                    if exc.connection_invalidated:
                        raise  # the database went away: the job fails, the outage alert speaks
                    if check.shipped and getattr(exc.orig, "sqlstate", None) in _SCHEMA_MISSING:
                        raise  # the backend lacks the app's tables or columns: not this check's fault
                    if getattr(exc.orig, "sqlstate", None) == _PERMISSION_DENIED:
                        raise  # the role may not read a table: no check can vouch for anything, the job fails
                    problem = checkfile.error_line(check, exc)
                except ValueError as exc:  # the result lacks an offender column
                    problem = checkfile.Problem(name, check.path, check.line, str(exc))
                else:
                    problem = None
                finally:
                    conn.rollback()  # nothing a check did outlives it, not even a set_config()
                rules.add(rule_for(name))
                if problem is not None:
                    ctx.logger.warning("check %s is broken: %s", name, problem)
                    findings.append(_broken(name, problem))
                    broken.append(name)
                    continue
                counts[name] = count
                if count:
                    findings.append(Finding(
                        rule=rule_for(name),
                        severity=overrides.get(name, Severity(check.severity)),
                        labels={"check": name},
                        summary=f"reconciliation {name}: {count} row(s) - {check.description}",
                        details=f"One row per offender, named by {', '.join(check.offender)}.",
                        evidence=first, evidence_count=count,
                        command=f"opsbench checks run {name}",
                        requires=(DATABASE_UNREACHABLE, *check.requires),
                    ))

    record_state(ctx, "insert_reconciliation_count", (
        {"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id, "check_name": name, "rows_found": n}
        for name, n in counts.items()
    ))
    parts = [f"{name} {'ok' if n == 0 else n}" for name, n in counts.items()]
    parts += [f"BROKEN {name}" for name in broken]
    parts += [f"{name} not configured ({var})" for name, var in not_configured.items()]
    total = len(counts) + len(broken)
    return JobResult(
        status="ok",
        summary=f"{sum(1 for n in counts.values() if n == 0)}/{total} checks pass: " + ", ".join(parts),
        metrics={f"reconcile_{k}": float(v) for k, v in counts.items()},
        findings=findings, rules=rules, not_run=broken,
    )


def validate_args(args: dict[str, Any]) -> None:
    """For the jobs-file loader: checks, evidence_rows and severity, checked against the check files."""
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
