"""The benchmark's own embedded PostgreSQL, one database per scale.

The server lives under `.opsbench/bench/pg` (git-ignored), apart from the demo
server, and keeps running between runs so a seeded `large` database (minutes
to build) is reused. A scale's database is reused only when its seed record
(written after a successful seed) names the same scale and generator seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from ops.core.settings import Settings, load_settings
from ops.data import embedded

REPO = Path(__file__).resolve().parent.parent
BENCH_HOME = REPO / ".opsbench" / "bench"
GENERATOR_SEED = 1


def settings() -> Settings:
    return load_settings(OPSBENCH_HOME=str(BENCH_HOME))


def database_name(scale: str) -> str:
    return f"bench_{scale}"


def url(scale: str) -> str:
    """The libpq URL of the scale's database, creating the (empty) database if needed."""
    s = settings()
    admin = embedded.server_url(s, "postgres")
    embedded.ensure_database(admin, database_name(scale))
    return embedded.server_url(s, database_name(scale))


def admin_url() -> str:
    return embedded.server_url(settings(), "postgres")


def record_path(scale: str) -> Path:
    return BENCH_HOME / f"seed-{scale}.json"


def load_record(scale: str) -> dict | None:
    try:
        rec = json.loads(record_path(scale).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if rec.get("scale") != scale or rec.get("seed") != GENERATOR_SEED:
        return None
    return rec


def save_record(scale: str, record: dict) -> None:
    path = record_path(scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def drop_database(scale: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psycopg.sql.Identifier(database_name(scale))))
    record_path(scale).unlink(missing_ok=True)
