-- The backend the state store describes (queries/internal/state/migrations/080_backend.sql).

-- name: has_table
SELECT to_regclass('opsbench.backend_identity') IS NOT NULL

-- name: get
SELECT system_identifier, database, recorded_at FROM opsbench.backend_identity WHERE singleton

-- name: lock
-- Serialise backend switches (two processes noticing the change together).
SELECT pg_advisory_xact_lock(hashtextextended('opsbench.backend_identity', 0))

-- name: put
-- :param system_identifier text   cluster identity
-- :param database text            database name
-- :param at timestamptz           when
-- :param since timestamptz = null derived rows older than this are another backend's (null: none are)
INSERT INTO opsbench.backend_identity (singleton, system_identifier, database, recorded_at, since)
VALUES (true, CAST(:system_identifier AS text), CAST(:database AS text), CAST(:at AS timestamptz),
        COALESCE(CAST(:since AS timestamptz), '-infinity'))
ON CONFLICT (singleton) DO UPDATE SET
    system_identifier = EXCLUDED.system_identifier, database = EXCLUDED.database, recorded_at = EXCLUDED.recorded_at,
    since = EXCLUDED.since

-- name: switched_at
-- When the store switched to the backend it describes now (NULL: it only ever described this one).
SELECT NULLIF(since, '-infinity') FROM opsbench.backend_identity WHERE singleton

-- name: predates_binding
-- True when this store was created before backend binding (080 applied by a later migration run than
-- the first file), and so may hold derived state of a backend nobody recorded.
SELECT COALESCE((SELECT applied_at FROM opsbench.schema_migrations WHERE name = '080_backend.sql')
                > (SELECT min(applied_at) FROM opsbench.schema_migrations), false)

-- name: has_derived_state
-- Whether the store holds anything derived from a backend: rollups, open alerts, or job runs.
SELECT EXISTS (SELECT 1 FROM opsbench.rollup_watermarks)
    OR EXISTS (SELECT 1 FROM opsbench.alerts WHERE state IN ('pending', 'firing'))
    OR EXISTS (SELECT 1 FROM opsbench.job_runs)

-- name: forget_evaluations
-- Rule evaluations (good-evaluation streaks, last values) describe the old backend: start afresh.
DELETE FROM opsbench.rule_evaluations

-- name: delete
DELETE FROM opsbench.backend_identity

-- name: rollup_zones
-- Every zone that has rollups (a watermark).
SELECT tz FROM opsbench.rollup_watermarks ORDER BY tz
