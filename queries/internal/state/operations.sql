-- The operations notebook's view of the state store (schema opsbench): job runs,
-- probe samples, alert episodes, cleanup volumes and reconciliation counts.
-- Tables: queries/internal/state/migrations/010_daemon.sql, 020_alerts.sql, 030_probes.sql.
--
-- Rules shared by the queries in this file:
--   * The window is [start, end] in local days of `tz`, turned into a UTC range
--     [lo, hi) so the time indexes are used. Rows are dated by when they
--     happened: a job run by started_at, a sample or count by `at`.
--   * `bucket` is 'hour' or 'day'. `period` is the start of the local hour or
--     day as a wall-clock timestamp in tz (no offset), which is what a chart's
--     axis should show. On the night clocks go back, the repeated local hour
--     is one bucket holding both real hours: counts stay right, just merged.
--   * Skipped runs never started: they count as runs, but not in durations
--     or failure rates. `running` rows have no outcome yet.
--   * Only reads. Every query here is safe on a read-only session.
--   * Nothing from before opsbench.backend_since() (110_backend_since.sql):
--     those rows were derived from another backend.


-- name: missing_tables
-- The state-store tables this notebook reads that do not exist yet (the daemon creates them at start).
SELECT t.name AS table_name
FROM (VALUES (1, 'job_runs'), (2, 'alert_events'), (3, 'probe_samples'), (4, 'cleanup_runs'),
             (5, 'reconciliation_counts')) AS t(n, name)
WHERE to_regclass('opsbench.' || t.name) IS NULL
ORDER BY t.n


-- name: totals
-- One row: what the state store holds for the window, and how many job runs it holds at all.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
--
-- Columns:
--   runs, ok, failed, timeout, skipped, running   job runs started in the window, by status
--   jobs              distinct jobs that ran
--   first_run_at      earliest start in the window; last_run_at the latest
--   probe_samples     probe samples in the window
--   alerts_fired      alert episodes that started firing in the window
--   cleanup_deleted   rows cleanup removed in the window (dry runs excluded)
--   cleanup_runs      cleanup runs (distinct run ids, dry runs included) in the window
--   reconcile_runs    reconciliation runs (distinct run ids) in the window
--   all_runs          job runs ever recorded (0: the daemon never ran a job here)
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
runs AS (
    SELECT count(*)                                   AS runs,
           count(*) FILTER (WHERE r.status = 'ok')      AS ok,
           count(*) FILTER (WHERE r.status = 'failed')  AS failed,
           count(*) FILTER (WHERE r.status = 'timeout') AS timeout,
           count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
           count(*) FILTER (WHERE r.status = 'running') AS running,
           count(DISTINCT r.job)                      AS jobs,
           min(r.started_at)                          AS first_run_at,
           max(r.started_at)                          AS last_run_at
    FROM win w
    JOIN opsbench.job_runs r ON r.started_at >= w.lo AND r.started_at < w.hi
)
SELECT runs.*,
       (SELECT count(*) FROM win w JOIN opsbench.probe_samples p ON p.at >= w.lo AND p.at < w.hi) AS probe_samples,
       (SELECT count(*) FROM win w JOIN opsbench.alert_events e
                     ON e.kind = 'firing' AND e.at >= w.lo AND e.at < w.hi)                 AS alerts_fired,
       (SELECT CAST(COALESCE(sum(c.deleted), 0) AS bigint) FROM win w JOIN opsbench.cleanup_runs c
                     ON NOT c.dry_run AND c.at >= w.lo AND c.at < w.hi)                     AS cleanup_deleted,
       (SELECT count(DISTINCT c.run_id) FROM win w JOIN opsbench.cleanup_runs c
                     ON c.at >= w.lo AND c.at < w.hi)                                       AS cleanup_runs,
       (SELECT count(DISTINCT c.run_id) FROM win w JOIN opsbench.reconciliation_counts c
                     ON c.at >= w.lo AND c.at < w.hi)                                       AS reconcile_runs,
       (SELECT count(*) FROM opsbench.job_runs WHERE started_at >= opsbench.backend_since()) AS all_runs
FROM runs


-- name: job_runs
-- Job runs per job and local hour or day: counts by status, run durations and findings.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
-- :param bucket text = day     hour or day
--
-- Columns:
--   job, period       job id; start of the local hour/day (wall clock in tz)
--   runs              all runs started in the bucket (skipped ones included)
--   ok, failed, timeout, skipped, running   runs by status
--   avg_duration_s, p50_duration_s, p95_duration_s, max_duration_s
--                     wall time of runs that started (skipped excluded); NULL when none finished
--   findings          findings the runs handed to the alert manager
WITH win AS (
    SELECT CAST(:tz AS text)                                                          AS tz,
           greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT r.job,
       date_trunc(CAST(:bucket AS text), r.started_at AT TIME ZONE w.tz)             AS period,
       count(*)                                                                       AS runs,
       count(*) FILTER (WHERE r.status = 'ok')                                        AS ok,
       count(*) FILTER (WHERE r.status = 'failed')                                    AS failed,
       count(*) FILTER (WHERE r.status = 'timeout')                                   AS timeout,
       count(*) FILTER (WHERE r.status = 'skipped')                                   AS skipped,
       count(*) FILTER (WHERE r.status = 'running')                                   AS running,
       avg(r.duration_s) FILTER (WHERE r.status <> 'skipped')                         AS avg_duration_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status <> 'skipped')                                       AS p50_duration_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status <> 'skipped')                                       AS p95_duration_s,
       max(r.duration_s) FILTER (WHERE r.status <> 'skipped')                         AS max_duration_s,
       CAST(sum(r.findings) AS bigint)                                                AS findings
FROM win w
JOIN opsbench.job_runs r ON r.started_at >= w.lo AND r.started_at < w.hi
GROUP BY 1, 2
ORDER BY 2, 1


-- name: job_summary
-- One row per job over the window: runs by status, failure rate, durations, the latest run.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
--
-- Columns:
--   job, runs, ok, failed, timeout, skipped
--   failure_rate      (failed + timeout) / finished runs (ok + failed + timeout); NULL when none finished
--   p50_duration_s, p95_duration_s, max_duration_s   wall time of runs that started
--   last_started_at, last_status, last_summary       the latest run in the window
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
runs AS (
    SELECT r.*
    FROM win w
    JOIN opsbench.job_runs r ON r.started_at >= w.lo AND r.started_at < w.hi
),
latest AS (
    SELECT DISTINCT ON (job) job, started_at AS last_started_at, status AS last_status, summary AS last_summary
    FROM runs
    ORDER BY job, started_at DESC, run_id
)
SELECT r.job,
       count(*)                                                                       AS runs,
       count(*) FILTER (WHERE r.status = 'ok')                                        AS ok,
       count(*) FILTER (WHERE r.status = 'failed')                                    AS failed,
       count(*) FILTER (WHERE r.status = 'timeout')                                   AS timeout,
       count(*) FILTER (WHERE r.status = 'skipped')                                   AS skipped,
       CAST(count(*) FILTER (WHERE r.status IN ('failed', 'timeout')) AS float8)
           / NULLIF(count(*) FILTER (WHERE r.status IN ('ok', 'failed', 'timeout')), 0) AS failure_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status <> 'skipped')                                       AS p50_duration_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status <> 'skipped')                                       AS p95_duration_s,
       max(r.duration_s) FILTER (WHERE r.status <> 'skipped')                         AS max_duration_s,
       l.last_started_at, l.last_status, l.last_summary
FROM runs r
JOIN latest l ON l.job = r.job
GROUP BY r.job, l.last_started_at, l.last_status, l.last_summary
ORDER BY r.job


-- name: problem_runs
-- Every failed or timed-out job run in the window, oldest first, with its error.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT r.started_at, r.job, r.status, r.trigger, r.duration_s, r.summary, r.error, r.run_id
FROM win w
JOIN opsbench.job_runs r ON r.started_at >= w.lo AND r.started_at < w.hi
WHERE r.status IN ('failed', 'timeout')
ORDER BY r.started_at, r.run_id


-- name: probe_uptime
-- Probe uptime and latency per probe and local hour or day.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
-- :param bucket text = day     hour or day
--
-- Columns:
--   probe, kind, period   probe name, http|postgres, start of the local hour/day
--   samples, ok_samples   samples taken / samples that met every expectation
--   uptime                ok_samples / samples (float8, 0..1)
--   p50_ms, p95_ms        latency percentiles of samples that got an answer; NULL when none did
WITH win AS (
    SELECT CAST(:tz AS text)                                                          AS tz,
           greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT p.probe,
       p.kind,
       date_trunc(CAST(:bucket AS text), p.at AT TIME ZONE w.tz)                     AS period,
       count(*)                                                                       AS samples,
       count(*) FILTER (WHERE p.ok)                                                   AS ok_samples,
       CAST(count(*) FILTER (WHERE p.ok) AS float8) / count(*)                        AS uptime,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.latency_ms)                      AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.latency_ms)                     AS p95_ms
FROM win w
JOIN opsbench.probe_samples p ON p.at >= w.lo AND p.at < w.hi
GROUP BY 1, 2, 3
ORDER BY 3, 1


-- name: probe_summary
-- One row per probe over the window: uptime, latency percentiles and the latest sample.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
samples AS (
    SELECT p.*
    FROM win w
    JOIN opsbench.probe_samples p ON p.at >= w.lo AND p.at < w.hi
),
latest AS (
    SELECT DISTINCT ON (probe, kind) probe, kind, at AS last_at, ok AS last_ok, error AS last_error
    FROM samples
    ORDER BY probe, kind, at DESC, id DESC
)
SELECT s.probe,
       s.kind,
       count(*)                                                                       AS samples,
       count(*) FILTER (WHERE s.ok)                                                   AS ok_samples,
       CAST(count(*) FILTER (WHERE s.ok) AS float8) / count(*)                        AS uptime,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.latency_ms)                      AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.latency_ms)                     AS p95_ms,
       l.last_at, l.last_ok, l.last_error
FROM samples s
JOIN latest l ON l.probe = s.probe AND l.kind = s.kind
GROUP BY s.probe, s.kind, l.last_at, l.last_ok, l.last_error
ORDER BY s.probe, s.kind


-- name: alert_history
-- Alert episodes overlapping the window: when each alert fired, when it resolved, how long it lasted.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
--
-- An episode is a `firing` event of a key and the first `resolved` event of the
-- same key after it. It overlaps the window when it fired before the window's
-- end and was still firing at its start.
--
-- Columns:
--   key, rule, severity, summary   the alert as it fired
--   fired_at, resolved_at          resolved_at NULL: still firing
--   duration_s                     resolved_at - fired_at; NULL while still firing
--   state                          firing | resolved
--   repeats                        reminders sent during the episode
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
fired AS (
    SELECT e.id, e.key, e.rule, e.severity, e.summary, e.at AS fired_at
    FROM win w
    JOIN opsbench.alert_events e ON e.kind = 'firing' AND e.at < w.hi AND e.at >= opsbench.backend_since()
),
episodes AS (
    SELECT f.*, r.at AS resolved_at
    FROM fired f
    LEFT JOIN LATERAL (
        SELECT x.at
        FROM opsbench.alert_events x
        WHERE x.key = f.key AND x.kind = 'resolved' AND (x.at, x.id) > (f.fired_at, f.id)
        ORDER BY x.at, x.id
        LIMIT 1
    ) r ON true
)
SELECT ep.key, ep.rule, ep.severity, ep.summary, ep.fired_at, ep.resolved_at,
       EXTRACT(EPOCH FROM (ep.resolved_at - ep.fired_at))                             AS duration_s,
       CASE WHEN ep.resolved_at IS NULL THEN 'firing' ELSE 'resolved' END             AS state,
       (SELECT count(*) FROM opsbench.alert_events x
         WHERE x.key = ep.key AND x.kind = 'repeat' AND x.at > ep.fired_at
           AND (ep.resolved_at IS NULL OR x.at < ep.resolved_at))                     AS repeats
FROM episodes ep, win w
WHERE ep.resolved_at IS NULL OR ep.resolved_at >= w.lo
ORDER BY ep.fired_at, ep.key


-- name: cleanup_volumes
-- What each cleanup run did to each table in the window, oldest first (dry runs flagged).
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
--
-- Columns:
--   at, run_id, job_id, table_name   when, which run, which table
--   candidates, table_rows           eligible rows / all rows when the run started
--   deleted, batches                 rows removed (0 in a dry run), delete batches committed
--   dry_run, outcome, note           done | capped | dry_run | refused | failed, and why
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT c.at, c.run_id, c.job_id, c.table_name, c.candidates, c.table_rows, c.deleted, c.batches,
       c.dry_run, c.outcome, c.note
FROM win w
JOIN opsbench.cleanup_runs c ON c.at >= w.lo AND c.at < w.hi
ORDER BY c.at, c.run_id, c.table_name


-- name: reconciliation_trend
-- Offending rows per reconciliation check per run in the window, oldest first.
-- :param start date            first local day (inclusive)
-- :param end date              last local day (inclusive)
-- :param tz tz = REPORT_TZ           IANA zone the days are cut in
WITH win AS (
    SELECT greatest(CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text), opsbench.backend_since()) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT c.at, c.run_id, c.job_id, c.check_name, c.rows_found
FROM win w
JOIN opsbench.reconciliation_counts c ON c.at >= w.lo AND c.at < w.hi
ORDER BY c.at, c.run_id, c.check_name
