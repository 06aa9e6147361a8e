-- Rollups of job durations and failure codes per local day (ops/data/rollups.py),
-- so the digest and the errors notebook read closed days from the state store
-- instead of sorting a month of raw jobs. Keyed by zone like 040_rollups.sql.
-- Idempotent: every statement can run again on a database that has it.

-- Completed jobs' duration percentiles per local day: the columns of `errors.durations`
-- (days with at least one completed job only; other days read as 0 / NULL).
CREATE TABLE IF NOT EXISTS opsbench.rollup_durations_daily (
    tz           text NOT NULL,
    day          date NOT NULL,
    completed    bigint NOT NULL,
    p50_seconds  float8 NOT NULL,
    p95_seconds  float8 NOT NULL,
    max_seconds  float8 NOT NULL,
    PRIMARY KEY (tz, day)
);

-- Failed jobs per local day, provider and error_code (NULL: a failure without a code),
-- with the latest such job's created_at: `errors.by_code` of any window is a sum of these.
-- No primary key (error_code may be NULL); the merge compares whole rows.
CREATE TABLE IF NOT EXISTS opsbench.rollup_failure_codes_daily (
    tz          text NOT NULL,
    day         date NOT NULL,
    provider    text NOT NULL,
    error_code  text,
    failed      bigint NOT NULL,
    last_seen   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rollup_failure_codes_daily_day ON opsbench.rollup_failure_codes_daily (tz, day);

-- Zones rolled up before these tables existed hold no rows in them: forget their
-- watermarks so each zone's next refresh backfills every table (until then, reads are raw).
DELETE FROM opsbench.rollup_watermarks
 WHERE NOT EXISTS (SELECT 1 FROM opsbench.rollup_durations_daily d WHERE d.tz = rollup_watermarks.tz);
