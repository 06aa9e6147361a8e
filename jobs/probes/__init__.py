"""Probes: measurements of live systems, one module each.

- `jobs.probes.http`: the HTTP endpoints the jobs file names (status, latency, body, TLS expiry);
- `jobs.probes.postgres`: the backend PostgreSQL as a client sees it (connect, connections, long
  queries, idle transactions, replication lag);
- `jobs.probes.common`: what they share with the other jobs (`DATABASE_UNREACHABLE`, `record_state`).

The jobs file names the jobs by this package (`jobs.probes:http_probes`, `jobs.probes:postgres`),
so the entry points, their argument checks and rule names are importable from here as before.
A new probe is a module beside these, its names below and its job in jobs/jobs.toml.
"""

from __future__ import annotations

from jobs.args import JobArgError
from jobs.probes import http as _http
from jobs.probes import postgres as _postgres
from jobs.probes.common import DATABASE_UNREACHABLE, record_state
from jobs.probes.http import (HEALTH_FAILING, HTTP_LATENCY, TLS_EXPIRY, HttpProbe, ProbeOutcome, check_body,
                              http_findings, http_probes, parse_targets, run_http_probes, validate_http_args)
from jobs.probes.postgres import (DATABASE_CONNECTIONS, DATABASE_LATENCY, IDLE_IN_TRANSACTION, LONG_QUERIES,
                                  REPLICATION_LAG, SESSIONS_HIDDEN, postgres, postgres_args,
                                  validate_postgres_args)

# the jobs file's loader reads a module's ARG_VALIDATORS by the module it names (jobs.probes)
ARG_VALIDATORS = {**_http.ARG_VALIDATORS, **_postgres.ARG_VALIDATORS}

__all__ = [
    "ARG_VALIDATORS", "DATABASE_CONNECTIONS", "DATABASE_LATENCY", "DATABASE_UNREACHABLE", "HEALTH_FAILING",
    "HTTP_LATENCY", "IDLE_IN_TRANSACTION", "JobArgError", "LONG_QUERIES", "REPLICATION_LAG", "SESSIONS_HIDDEN",
    "TLS_EXPIRY", "HttpProbe", "ProbeOutcome", "check_body", "http_findings", "http_probes", "parse_targets",
    "postgres", "postgres_args", "record_state", "run_http_probes", "validate_http_args", "validate_postgres_args",
]
