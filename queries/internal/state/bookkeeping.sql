-- Migration bookkeeping for ops/data/state.py: which files of queries/internal/state/migrations/ have run.
-- Not a query subject (`opsbench query --list` skips queries/internal/state/).

-- name: migration_lock
-- Serialise migrations of processes starting together (released at commit).
-- :param key int   advisory lock key
SELECT pg_advisory_xact_lock(CAST(:key AS bigint))

-- name: ensure_schema
-- The schema opsbench owns in the state database. Created only when missing:
-- CREATE SCHEMA IF NOT EXISTS checks the database's CREATE privilege even when
-- the schema exists, and the state role of deploy/roles.sql owns the schema
-- without that privilege.
DO $$
BEGIN
    IF to_regnamespace('opsbench') IS NULL THEN
        CREATE SCHEMA opsbench;
    END IF;
END
$$

-- name: ensure_migrations_table
-- One row per applied migration file.
CREATE TABLE IF NOT EXISTS opsbench.schema_migrations (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied
-- Names of the migration files applied so far.
SELECT name FROM opsbench.schema_migrations

-- name: record
-- Remember that a migration file has been applied.
-- :param name text   the file's name
INSERT INTO opsbench.schema_migrations (name) VALUES (:name)
