-- The backend the state store describes (queries/state/migrations/080_backend.sql).

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
INSERT INTO opsbench.backend_identity (singleton, system_identifier, database, recorded_at)
VALUES (true, CAST(:system_identifier AS text), CAST(:database AS text), CAST(:at AS timestamptz))
ON CONFLICT (singleton) DO UPDATE SET
    system_identifier = EXCLUDED.system_identifier, database = EXCLUDED.database, recorded_at = EXCLUDED.recorded_at

-- name: delete
DELETE FROM opsbench.backend_identity

-- name: rollup_zones
-- Every zone that has rollups (a watermark).
SELECT tz FROM opsbench.rollup_watermarks ORDER BY tz
