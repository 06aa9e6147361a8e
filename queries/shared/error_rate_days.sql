-- errors.daily's rows, from the raw tables (errors.daily) and from the rollups (errors_series)
-- alike: needs the CTEs `days` (every local day of the window) and `job_days` (day, provider,
-- model_id, jobs, failed, unfinished: shared/job_days.sql, or the stored rollup_jobs_daily).
error_days AS (
    SELECT d.day,
           CAST(COALESCE(sum(j.jobs), 0) AS bigint)       AS jobs,
           CAST(COALESCE(sum(j.failed), 0) AS bigint)     AS failed,
           CAST(COALESCE(sum(j.unfinished), 0) AS bigint) AS unfinished
    FROM days d LEFT JOIN job_days j ON j.day = d.day
    GROUP BY d.day
)
SELECT x.day, x.jobs, x.failed, x.unfinished, r.error_rate, r.wilson_low, r.wilson_high
FROM error_days x
-- include: wilson
ORDER BY x.day
