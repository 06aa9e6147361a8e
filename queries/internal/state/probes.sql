-- State-store statements of the probe, reconciliation and cleanup jobs.
-- Tables: queries/internal/state/migrations/030_probes.sql. Readers leave out rows from before
-- opsbench.backend_since() (another backend's, 110_backend_since.sql).


-- name: insert_sample
-- Record one probe sample.
-- :param at timestamptz            when the probe ran (the job clock)
-- :param job_id text               job id
-- :param run_id text               run id
-- :param kind text                 http | postgres
-- :param probe text                probe name
-- :param ok bool                   reachable and every expectation met
-- :param status_code int = null    HTTP status
-- :param latency_ms float = null   latency in milliseconds
-- :param tls_days_left float = null  certificate days left
-- :param error text = null         why it was not ok
INSERT INTO opsbench.probe_samples (at, job_id, run_id, kind, probe, ok, status_code, latency_ms, tls_days_left, error)
VALUES (:at, :job_id, :run_id, :kind, :probe, :ok, :status_code, :latency_ms, :tls_days_left, :error)


-- name: samples
-- Probe samples in a window, newest first.
-- :param since timestamptz         start of the window (inclusive)
-- :param until timestamptz = null  end of the window (exclusive); default now
SELECT at, job_id, run_id, kind, probe, ok, status_code, latency_ms, tls_days_left, error
FROM opsbench.probe_samples
WHERE at >= CAST(:since AS timestamptz) AND at >= opsbench.backend_since()
  AND at < COALESCE(CAST(:until AS timestamptz), now())
ORDER BY at DESC, id DESC


-- name: uptime
-- Uptime share and latency percentiles per probe in a window.
-- :param since timestamptz         start of the window (inclusive)
-- :param until timestamptz = null  end of the window (exclusive); default now
SELECT probe,
       kind,
       count(*)                                                           AS samples,
       count(*) FILTER (WHERE ok)                                         AS ok_samples,
       CAST(count(*) FILTER (WHERE ok) AS float8) / count(*)              AS uptime,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)            AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)           AS p95_ms,
       max(at)                                                            AS last_at
FROM opsbench.probe_samples
WHERE at >= CAST(:since AS timestamptz) AND at >= opsbench.backend_since()
  AND at < COALESCE(CAST(:until AS timestamptz), now())
GROUP BY probe, kind
ORDER BY probe


-- name: insert_reconciliation_count
-- Record how many rows one reconciliation check found in one run.
-- :param at timestamptz     when the check ran (the job clock)
-- :param job_id text        job id
-- :param run_id text        run id
-- :param check_name text    reconciliation check name
-- :param rows_found int     offending rows
INSERT INTO opsbench.reconciliation_counts (at, job_id, run_id, check_name, rows_found)
VALUES (:at, :job_id, :run_id, :check_name, :rows_found)


-- name: reconciliation_counts
-- Reconciliation counts per check and run in a window, oldest first.
-- :param since timestamptz         start of the window (inclusive)
-- :param until timestamptz = null  end of the window (exclusive); default now
SELECT at, run_id, check_name, rows_found
FROM opsbench.reconciliation_counts
WHERE at >= CAST(:since AS timestamptz) AND at >= opsbench.backend_since()
  AND at < COALESCE(CAST(:until AS timestamptz), now())
ORDER BY at, check_name


-- name: insert_cleanup_run
-- Record what one cleanup run did to one table.
-- :param at timestamptz     when the run happened (the job clock)
-- :param job_id text        job id
-- :param run_id text        run id
-- :param table_name text    table cleaned
-- :param cutoff timestamptz rows older than this were eligible
-- :param candidates int     eligible rows at the start
-- :param table_rows int     rows in the table at the start
-- :param deleted int        rows removed
-- :param batches int        delete batches committed
-- :param dry_run bool       nothing was changed
-- :param outcome text       done | capped | dry_run | refused | failed
-- :param note text        why, for refused and failed (empty otherwise)
INSERT INTO opsbench.cleanup_runs (at, job_id, run_id, table_name, cutoff, candidates, table_rows, deleted,
                                   batches, dry_run, outcome, note)
VALUES (:at, :job_id, :run_id, :table_name, :cutoff, :candidates, :table_rows, :deleted,
        :batches, :dry_run, :outcome, :note)


-- name: cleanup_runs
-- Cleanup volumes per table and run in a window, oldest first.
-- :param since timestamptz         start of the window (inclusive)
-- :param until timestamptz = null  end of the window (exclusive); default now
SELECT at, run_id, table_name, cutoff, candidates, table_rows, deleted, batches, dry_run, outcome, note
FROM opsbench.cleanup_runs
WHERE at >= CAST(:since AS timestamptz) AND at >= opsbench.backend_since()
  AND at < COALESCE(CAST(:until AS timestamptz), now())
ORDER BY at, table_name
