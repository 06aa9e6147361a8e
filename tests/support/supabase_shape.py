"""A database set up the way Supabase sets one up, on the session's PostgreSQL 15 (support/pg15.py).

- the bootstrap superuser is `supabase_admin`;
- `postgres` is NOSUPERUSER but CREATEROLE, CREATEDB, BYPASSRLS and LOGIN (what founders connect as);
- `anon`, `authenticated`, `service_role` (BYPASSRLS) exist, NOLOGIN;
- the backend schema (queries/schema.sql) holds the small demo data at a fixed anchor;
- row level security is on for every table, with policies only `TO authenticated`.

`owner` picks who owns the tables: `postgres` (what Supabase's SQL editor and migrations make) or
`supabase_admin` (another superuser; as on Supabase, default privileges give `postgres` ALL on
them, without grant option), or `supabase_admin` with `grant_postgres=False` (postgres may not
read them at all).

Roles are cluster-wide: `drop()` removes the database and opsbench's three roles, so the next
case (or another module on the same server) can run deploy/roles.sql again.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import psycopg

from support.pg15 import Pg15Server

ANCHOR = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)  # fixed: never the wall clock
TABLES = ("admin_actions", "error_log", "idempotency_keys", "models", "products", "purchases", "quota_log",
          "rate_limit_log", "users", "video_jobs")
OPSBENCH_ROLES = ("opsbench_ro", "opsbench_maint", "opsbench_state")


@dataclass
class SupabaseDb:
    server: Pg15Server
    name: str
    owner: str
    postgres_password: str
    manifest: dict

    @property
    def admin_url(self) -> str:
        """The superuser on this database: the reference every figure is compared with."""
        return self.server.url(self.name)

    @property
    def postgres_url(self) -> str:
        """ADMIN_URL as the README means it on Supabase: the `postgres` user's connection string."""
        return self.server.url(self.name, "postgres", self.postgres_password)

    def url(self, user: str, password: str) -> str:
        return self.server.url(self.name, user, password)

    def drop(self) -> None:
        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            for role in OPSBENCH_ROLES:
                conn.execute(f"DROP ROLE IF EXISTS {role}")


def supabase_roles(server: Pg15Server) -> str:
    """Create Supabase's roles once per server (idempotent); returns the `postgres` role's password."""
    pw = getattr(server, "_postgres_password", None)
    if pw:
        return pw
    pw = secrets.token_hex(16)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE postgres LOGIN NOSUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS "
                     f"PASSWORD '{pw}'")
        conn.execute("CREATE ROLE anon NOLOGIN NOINHERIT")
        conn.execute("CREATE ROLE authenticated NOLOGIN NOINHERIT")
        conn.execute("CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS")
        conn.execute("GRANT anon, authenticated, service_role TO postgres")
    server._postgres_password = pw  # type: ignore[attr-defined]
    return pw


TEMPLATE = "supabase_tmpl"


def _template(server: Pg15Server) -> dict:
    """The seeded demo database once per server (schema + small demo data at ANCHOR, analyzed); its manifest."""
    manifest = getattr(server, "_supabase_manifest", None)
    if manifest is not None:
        return manifest
    from ops.data.seed import seed_database

    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    manifest = seed_database(server.url(TEMPLATE), scale="small", seed=1, anchor=ANCHOR)
    with psycopg.connect(server.url(TEMPLATE), autocommit=True) as conn:
        conn.execute("ANALYZE")
    server._supabase_manifest = manifest  # type: ignore[attr-defined]
    return manifest


def make(server: Pg15Server, name: str, owner: str = "postgres", grant_postgres: bool = True) -> SupabaseDb:
    """A new database `name` shaped like a Supabase project, tables owned by `owner`."""
    pw = supabase_roles(server)
    manifest = _template(server)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        conn.execute(f'GRANT ALL ON DATABASE "{name}" TO postgres')
    db = SupabaseDb(server, name, owner, pw, manifest)
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("GRANT ALL ON SCHEMA public TO postgres, anon, authenticated, service_role")
        for table in TABLES:
            # as if the owner's migration had made them (the superuser seeded the rows: no RLS in the way)
            conn.execute(f"ALTER TABLE public.{table} OWNER TO {owner}")
        if owner != "postgres" and grant_postgres:
            # Supabase: ALTER DEFAULT PRIVILEGES ... GRANT ALL ON TABLES TO postgres, anon, authenticated,
            # service_role (no grant option: postgres cannot pass them on)
            conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO postgres, anon, authenticated, service_role")
        for table in TABLES:
            conn.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
            conn.execute(f"CREATE POLICY own_rows ON public.{table} FOR SELECT TO authenticated USING (true)")
    return db
