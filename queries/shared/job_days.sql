-- Video jobs per local day, provider and model: the one definition of a job's outcome, read by
-- errors.* (summed over what they group by) and stored by the rollups (rollups.jobs_days).
-- Needs the CTE `win` (tz: the zone days are cut in; lo, hi: the UTC range [lo, hi)); defines
-- the CTE job_days (day, provider, model_id, jobs, failed, unfinished):
--   * a job is dated by created_at (when the user asked), in local days of tz; the range is
--     UTC so the index on video_jobs.created_at is used;
--   * jobs = completed + failed (finished jobs have an outcome); pending and processing are
--     `unfinished`, never counted as successes or failures.
job_days AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
           j.provider,
           j.model_id,
           count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    GROUP BY 1, 2, 3
)
