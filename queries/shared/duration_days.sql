-- Completed jobs' durations per local day: the one definition, read by errors.durations and stored
-- by the rollups (rollups.durations_days). Needs the CTE `win` (tz, lo, hi as in shared/job_days.sql);
-- defines duration_days (day, completed, p50_seconds, p95_seconds, max_seconds), days with a
-- completed job only. Duration = completed_at - created_at: the user waits from the moment they
-- asked, queue included; only completed jobs (a failure's time is not a delivery time).
duration_days AS (
    SELECT day, count(*) AS completed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)  AS p50_seconds,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_seconds,
           max(seconds)                                          AS max_seconds
    FROM (
        SELECT (j.created_at AT TIME ZONE w.tz)::date                            AS day,
               CAST(EXTRACT(EPOCH FROM j.completed_at - j.created_at) AS float8) AS seconds
        FROM win w
        JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
        WHERE j.status = 'completed' AND j.completed_at IS NOT NULL
    ) done
    GROUP BY day
)
