-- What the scheduled reports read from the state store about job runs that
-- went wrong (cleanup volumes come from state/probes.cleanup_runs). Runs from
-- before opsbench.backend_since() were about another backend and are left out.

-- name: failed_runs
-- Runs that failed or timed out and started in [since, until), newest first.
-- :param since timestamptz    start of the window (inclusive)
-- :param until timestamptz    end of the window (exclusive)
-- :param limit int = 20       how many rows
SELECT run_id, job, trigger, status, started_at, finished_at, duration_s, summary, error
  FROM opsbench.job_runs
 WHERE status IN ('failed', 'timeout')
   AND started_at >= CAST(:since AS timestamptz) AND started_at < CAST(:until AS timestamptz)
   AND started_at >= opsbench.backend_since()
 ORDER BY started_at DESC, run_id
 LIMIT CAST(:limit AS int)

-- name: failed_run_count
-- How many runs failed or timed out in [since, until) (the list above may be cut).
-- :param since timestamptz    start of the window (inclusive)
-- :param until timestamptz    end of the window (exclusive)
SELECT count(*) AS n
  FROM opsbench.job_runs
 WHERE status IN ('failed', 'timeout')
   AND started_at >= CAST(:since AS timestamptz) AND started_at < CAST(:until AS timestamptz)
   AND started_at >= opsbench.backend_since()


-- name: last_reconcile
-- The newest finished reconcile run that checked everything (status ok), with its per-check counts
-- (metrics `reconcile_<check>`), so a report reads what the job computed instead of recomputing it.
-- :param since timestamptz    oldest run worth reading
SELECT finished_at, metrics
  FROM opsbench.job_runs
 WHERE status = 'ok' AND finished_at >= CAST(:since AS timestamptz)
   AND started_at >= opsbench.backend_since()
   AND EXISTS (SELECT 1 FROM jsonb_object_keys(metrics) AS k WHERE k LIKE 'reconcile\_%')
 ORDER BY finished_at DESC, run_id
 LIMIT 1
