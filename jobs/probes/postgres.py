"""PostgreSQL probe: the backend database as a client sees it.

`postgres(ctx)` connects to the backend like a client would (a fresh connection
each time, so the connect is measured) and reads the server's own statistics:
latency, connections against max_connections, long queries, idle-in-transaction
sessions, replication lag on a standby.

Every sample goes to the state store (`opsbench.probe_samples`); a state store
that cannot be written never hides a finding.
"""

from __future__ import annotations

import math
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import queries
from jobs import args as read
from jobs.args import JobArgError
from jobs.evidence import evidence_rows
from jobs.probes.common import DATABASE_UNREACHABLE, record_state
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.redact import redact

# Rule names (DATABASE_UNREACHABLE, the root cause other jobs name in `requires`, is in common.py).
DATABASE_LATENCY = "database_latency"
DATABASE_CONNECTIONS = "database_connections"
LONG_QUERIES = "long_running_queries"
IDLE_IN_TRANSACTION = "idle_in_transaction"
REPLICATION_LAG = "replication_lag"
SESSIONS_HIDDEN = "database_sessions_hidden"  # the probing role lacks pg_monitor


# -- PostgreSQL probe ------------------------------------------------------------------

def _probe_engine(ctx: JobContext, connect_timeout_s: int) -> sa.Engine:
    """Analytics-role engine without a pool: each probe pays (and measures) a real connect.

    Built once per runtime (and timeout), disposed with it."""
    from ops.data import db

    settings = ctx.settings
    return ctx.runtime.shared(
        ("probes.engine", settings, connect_timeout_s),
        lambda: db.make_engine("analytics", settings, poolclass=NullPool,
                               connect_args={"connect_timeout": connect_timeout_s,
                                             "application_name": "opsbench-probe"}))


_PG_NUMBERS = {
    "connect_timeout_s": 5.0, "latency_warn_ms": 500.0, "latency_critical_ms": 2000.0,
    "connections_warn_pct": 80.0, "connections_critical_pct": 95.0, "long_query_s": 60.0,
    "idle_in_transaction_s": 60.0, "replication_lag_warn_s": 60.0, "replication_lag_critical_s": 300.0,
}


def postgres_args(args: dict[str, Any]) -> dict[str, Any]:
    """The PostgreSQL probe's arguments with defaults, checked. Raises JobArgError naming the key."""
    unknown = sorted(set(args) - set(_PG_NUMBERS) - {"name"})
    if unknown:
        raise JobArgError(f"args.{unknown[0]}: unknown key (expected one of: "
                               f"{', '.join(sorted({'name', *_PG_NUMBERS}))})")
    out: dict[str, Any] = {"name": str(args.get("name", "backend"))}
    for key, default in _PG_NUMBERS.items():
        out[key] = read.number(args.get(key, default), f"args.{key}")
    for warn, crit in (("latency_warn_ms", "latency_critical_ms"), ("connections_warn_pct", "connections_critical_pct"),
                       ("replication_lag_warn_s", "replication_lag_critical_s")):
        if out[crit] < out[warn]:
            raise JobArgError(f"args.{crit}: must be >= {warn}")
    return out


def validate_postgres_args(args: dict[str, Any]) -> None:
    postgres_args(args)


def postgres(ctx: JobContext) -> JobResult:
    """Job: the backend database as a client sees it.

    args: name ("backend"), connect_timeout_s (5), latency_warn_ms (500),
    latency_critical_ms (2000), connections_warn_pct (80), connections_critical_pct (95),
    long_query_s (60), idle_in_transaction_s (60), replication_lag_warn_s (60),
    replication_lag_critical_s (300).

    Other roles' sessions show state and query only to a role with
    pg_read_all_stats (pg_monitor has it); without it their long queries and
    idle transactions are invisible, so the probe counts the sessions it
    cannot read and raises `database_sessions_hidden` naming the GRANT.
    """
    a = postgres_args(ctx.args)
    name = a["name"]
    connect_timeout = max(1, int(a["connect_timeout_s"]))
    lat_warn, lat_crit = a["latency_warn_ms"], a["latency_critical_ms"]
    conn_warn, conn_crit = a["connections_warn_pct"], a["connections_critical_pct"]
    long_s, idle_s = a["long_query_s"], a["idle_in_transaction_s"]
    lag_warn, lag_crit = a["replication_lag_warn_s"], a["replication_lag_critical_s"]
    now = ctx.now()
    q = queries.load("probes")
    labels = {"db": name}
    needs = (DATABASE_UNREACHABLE,)
    command = f"opsbench run {ctx.job_id}"

    started = time.perf_counter()
    try:
        with _probe_engine(ctx, connect_timeout).connect() as conn:
            q.ping.execute(conn).scalar_one()
            latency_ms = (time.perf_counter() - started) * 1000.0
            usage = q.connections(conn).iloc[0]
            long_df = q.long_queries(conn, min_seconds=long_s)
            idle_df = q.idle_in_transaction(conn, min_seconds=idle_s)
            repl = q.replication(conn).iloc[0]
            seen = q.stats_visibility(conn).iloc[0]
    except sa.exc.OperationalError as exc:
        error = redact(getattr(exc, "orig", exc)).strip().splitlines()
        reason = error[0][:300] if error else type(exc).__name__
        record_state(ctx, "insert_sample", [{"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id,
                                             "kind": "postgres", "probe": name, "ok": False, "error": reason}])
        # one root cause: every other database finding names it in `requires`
        return JobResult(
            status="ok", summary=f"{name} database unreachable: {reason}",
            findings=[Finding(rule=DATABASE_UNREACHABLE, severity=Severity.critical, labels=labels,
                              summary=f"{name} database unreachable", details=reason, command=command)],
            rules={DATABASE_UNREACHABLE}, metrics={"reachable": 0.0},
        )

    findings: list[Finding] = []
    if latency_ms > lat_warn:
        crit = latency_ms > lat_crit
        findings.append(Finding(
            rule=DATABASE_LATENCY, severity=Severity.critical if crit else Severity.warning, labels=labels,
            summary=f"{name} connect + SELECT 1 took {latency_ms:.0f} ms (limit {lat_crit if crit else lat_warn:.0f} ms)",
            command=command, requires=needs))
    in_use, usable = int(usage["in_use"]), max(1, int(usage["usable"]))
    pct = 100.0 * in_use / usable
    if pct >= conn_warn:
        crit = pct >= conn_crit
        findings.append(Finding(
            rule=DATABASE_CONNECTIONS, severity=Severity.critical if crit else Severity.warning, labels=labels,
            summary=f"{name}: {in_use} of {usable} usable connections in use ({pct:.0f} %)",
            evidence=[{"in_use": in_use, "max_connections": int(usage["max_connections"]),
                       "reserved": int(usage["reserved"])}], evidence_count=1,
            command=command, requires=needs))
    if len(long_df):
        findings.append(Finding(
            rule=LONG_QUERIES, severity=Severity.warning, labels=labels,
            summary=f"{name}: {len(long_df)} statement(s) running longer than {long_s:g} s "
                    f"(longest {float(long_df['running_s'].max()):.0f} s)",
            evidence=evidence_rows(long_df, 5), evidence_count=len(long_df),
            command=f"opsbench query probes.long_queries -p min_seconds={long_s:g}", requires=needs))
    if len(idle_df):
        findings.append(Finding(
            rule=IDLE_IN_TRANSACTION, severity=Severity.warning, labels=labels,
            summary=f"{name}: {len(idle_df)} session(s) idle in transaction longer than {idle_s:g} s",
            evidence=evidence_rows(idle_df, 5), evidence_count=len(idle_df),
            command=f"opsbench query probes.idle_in_transaction -p min_seconds={idle_s:g}", requires=needs))
    hidden, role = int(seen["hidden_sessions"]), str(seen["role"])
    if hidden and not bool(seen["reads_all_stats"]):
        findings.append(Finding(
            rule=SESSIONS_HIDDEN, severity=Severity.warning, labels=labels,
            summary=(f"{name}: {hidden} session(s) of other roles are hidden from {role}, so their long queries "
                     f"and idle transactions go unseen; grant pg_monitor to {role}"),
            details=(f"GRANT pg_monitor TO {role};  -- without pg_read_all_stats, pg_stat_activity shows other "
                     "roles' state, query and timings as NULL"),
            evidence=[{"role": role, "hidden_sessions": hidden}], evidence_count=1,
            command="opsbench query probes.stats_visibility", requires=needs))
    lag = repl["lag_s"]
    is_replica = bool(repl["is_replica"])
    if is_replica and lag is not None and not (isinstance(lag, float) and math.isnan(lag)) and float(lag) > lag_warn:
        crit = float(lag) > lag_crit
        findings.append(Finding(
            rule=REPLICATION_LAG, severity=Severity.critical if crit else Severity.warning, labels=labels,
            summary=f"{name} replica is {float(lag):.0f} s behind", command=command, requires=needs))

    record_state(ctx, "insert_sample", [{"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id,
                                         "kind": "postgres", "probe": name, "ok": True,
                                         "latency_ms": latency_ms}])
    metrics = {"reachable": 1.0, "latency_ms": latency_ms, "connections_in_use": float(in_use),
               "connections_pct": pct, "long_queries": float(len(long_df)),
               "idle_in_transaction": float(len(idle_df)), "hidden_sessions": float(hidden)}
    if is_replica and lag is not None:
        metrics["replication_lag_s"] = float(lag)
    return JobResult(
        status="ok",
        summary=f"{name} answered in {latency_ms:.0f} ms; {in_use}/{usable} connections; "
                f"{len(long_df)} long, {len(idle_df)} idle in transaction"
                + (f"; {hidden} session(s) of other roles hidden (grant pg_monitor to {role})"
                   if hidden and not bool(seen["reads_all_stats"]) else ""),
        metrics=metrics, findings=findings,
        rules={DATABASE_UNREACHABLE, DATABASE_LATENCY, DATABASE_CONNECTIONS, LONG_QUERIES,
               IDLE_IN_TRANSACTION, REPLICATION_LAG, SESSIONS_HIDDEN},
    )


ARG_VALIDATORS = {"postgres": validate_postgres_args}
