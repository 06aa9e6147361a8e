-- Failed jobs per local day, provider and error_code (a NULL code kept as its own group): the one
-- definition, read by errors.by_code and stored by the rollups (rollups.failure_codes_days).
-- Needs the CTE `win` (tz, lo, hi as in shared/job_days.sql); defines failure_code_days
-- (day, provider, error_code, failed, last_seen: created_at of the latest such job).
failure_code_days AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date AS day, j.provider, j.error_code,
           count(*) AS failed, max(j.created_at) AS last_seen
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    WHERE j.status = 'failed'
    GROUP BY 1, 2, 3
)
