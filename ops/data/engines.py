"""How an engine of each role is made: the three database connections and their privileges.

| role        | used by                        | session settings                                   |
|-------------|--------------------------------|----------------------------------------------------|
| analytics   | queries, notebooks, probes     | default_transaction_read_only=on, statement_timeout |
| maintenance | cleanup jobs                   | lock_timeout, statement_timeout                    |
| state       | daemon bookkeeping (`opsbench`)| read-write, owns schema opsbench                   |

With no DATABASE_URL all three point at the embedded server's demo database.

The settings are sent as the `options` startup parameter and set again, with
SET LOCAL semantics, at the start of every transaction (ops.data.session): a
pooler may refuse or drop `options`, or hand each transaction another server
session. psycopg never prepares statements (`prepare_threshold=None`): a
transaction pooler cannot keep them; bench/prepare.py measures what that costs
on a direct connection.

This module only makes engines; ops/data/db.py hands out the process's pooled
ones (through ops/data/runtime.py, which imports this module and nothing above it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ops.core.redact import mask_dsn
from ops.core.settings import Settings, get_settings
from ops.data import embedded, session


class Role(str, Enum):
    analytics = "analytics"
    maintenance = "maintenance"
    state = "state"


@dataclass(frozen=True)
class ResolvedDsn:
    role: Role
    dsn: str
    embedded: bool

    def masked(self) -> str:
        return mask_dsn(self.dsn)


def resolve(role: Role, settings: Settings | None = None) -> ResolvedDsn:
    """Which DSN a role uses, starting the embedded server when it is the fallback."""
    s = settings or get_settings()
    role = Role(role)
    if role is Role.analytics:
        dsn = s.database_url
    elif role is Role.maintenance:
        dsn = s.maintenance_database_url or s.database_url
    else:
        dsn = s.state_url
    if dsn:
        return ResolvedDsn(role, dsn, False)
    return ResolvedDsn(role, embedded.start(s), True)


def sqlalchemy_url(dsn: str) -> sa.URL:
    url = sa.make_url(dsn)
    return url.set(drivername="postgresql+psycopg")


def _session_options(role: Role, s: Settings, read_only: bool = False) -> str:
    stmt_ms = int(s.statement_timeout_s * 1000)
    opts = [f"-c statement_timeout={stmt_ms}"]
    if role is Role.analytics or read_only:
        # read-only at the session level: a notebook can never write by accident
        opts.append("-c default_transaction_read_only=on")
    if role is Role.maintenance:
        opts.append(f"-c lock_timeout={int(s.lock_timeout_s * 1000)}")
    opts.append("-c idle_in_transaction_session_timeout=600000")
    return " ".join(opts)


def application_name(role: Role) -> str:
    return "opsbench" if role is Role.analytics else f"opsbench-{role.value}"


def make_engine(role: Role, settings: Settings | None = None, *, read_only: bool = False, **kwargs) -> Engine:
    """A new engine for `role`; `read_only` makes every transaction read-only (dry runs)."""
    s = settings or get_settings()
    role = Role(role)
    resolved = resolve(role, s)
    connect_args = {
        "options": _session_options(role, s, read_only),
        "application_name": application_name(role),
        "connect_timeout": 10,
        "prepare_threshold": None,
    }
    connect_args.update(kwargs.pop("connect_args", {}))
    eng = sa.create_engine(
        sqlalchemy_url(resolved.dsn),
        connect_args=connect_args,
        pool_pre_ping=True,
        hide_parameters=True,
        **kwargs,
    )
    session.connect_without_refused_options(eng)
    session.set_local_each_transaction(
        eng, statement_timeout_ms=int(s.statement_timeout_s * 1000),
        lock_timeout_ms=int(s.lock_timeout_s * 1000) if role is Role.maintenance else None,
        read_only=role is Role.analytics or read_only)
    return eng
