-- Video job failures, error_log, job durations.
--
-- Rules shared by the job queries in this file:
--   * A job's outcome per local day is shared/job_days.sql (dated by created_at in
--     local days of `tz`; jobs = completed + failed; pending and processing are
--     `unfinished`), the same rows the rollups store.
--   * error_rate = failed / jobs with its 95 % Wilson score interval: shared/wilson.sql
--     (NULL, not 0, when no job finished: nothing was measured).


-- name: daily
-- Daily job error rate (failed / finished jobs) with its 95 % Wilson interval.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns:
--   day          local day in tz (jobs dated by created_at)
--   jobs         finished jobs: completed + failed
--   failed       failed jobs
--   unfinished   jobs still pending or processing (not in jobs)
--   error_rate   failed / jobs (float8), NULL when jobs = 0
--   wilson_low   lower end of the 95 % Wilson interval, NULL when jobs = 0
--   wilson_high  upper end of the 95 % Wilson interval, NULL when jobs = 0
WITH
-- include: local_days,
-- include: job_days,
-- include: error_rate_days


-- name: by_provider
-- Daily job error rate per provider with its 95 % Wilson interval (every day x every provider).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, then as in `daily` (jobs, failed, unfinished,
-- error_rate, wilson_low, wilson_high) for that provider's jobs. Providers are
-- those in `models` plus any other seen on jobs in the window.
WITH
-- include: local_days,
-- include: job_days,
counts AS (
    SELECT day, provider, sum(jobs) AS jobs, sum(failed) AS failed, sum(unfinished) AS unfinished
    FROM job_days GROUP BY 1, 2
),
providers AS (
    SELECT provider FROM models
    UNION
    SELECT provider FROM counts
),
per_day AS (
    SELECT d.day, pr.provider,
           CAST(COALESCE(c.jobs, 0) AS bigint)       AS jobs,
           CAST(COALESCE(c.failed, 0) AS bigint)     AS failed,
           CAST(COALESCE(c.unfinished, 0) AS bigint) AS unfinished
    FROM days d
    CROSS JOIN providers pr
    LEFT JOIN counts c ON c.day = d.day AND c.provider = pr.provider
)
SELECT x.day, x.provider, x.jobs, x.failed, x.unfinished, r.error_rate, r.wilson_low, r.wilson_high
FROM per_day x
-- include: wilson
ORDER BY x.day, x.provider;


-- name: by_model
-- Daily job error rate per model with its 95 % Wilson interval (every day x every model).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, model_id, model (models.name, NULL if the model row is gone),
-- provider (models.provider), then as in `daily` for that model's jobs.
WITH
-- include: local_days,
-- include: job_days,
-- every model in `models` plus any other seen on jobs in the window, every day
model_days AS (
    SELECT d.day, ml.model_id
    FROM days d
    CROSS JOIN (SELECT id AS model_id FROM models UNION SELECT model_id FROM job_days) ml
),
per_day AS (
    SELECT md.day, md.model_id,
           CAST(COALESCE(sum(j.jobs), 0) AS bigint)       AS jobs,
           CAST(COALESCE(sum(j.failed), 0) AS bigint)     AS failed,
           CAST(COALESCE(sum(j.unfinished), 0) AS bigint) AS unfinished
    FROM model_days md
    LEFT JOIN job_days j ON j.day = md.day AND j.model_id = md.model_id
    GROUP BY 1, 2
)
SELECT x.day, x.model_id, m.name AS model, m.provider, x.jobs, x.failed, x.unfinished,
       r.error_rate, r.wilson_low, r.wilson_high
FROM per_day x
LEFT JOIN models m ON m.id = x.model_id
-- include: wilson
ORDER BY x.day, m.provider, m.name, x.model_id;


-- name: by_code
-- Failed jobs per error_code over the window, with each code's share of all failures.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns:
--   error_code   the job's error_code; NULL = the backend recorded a failure without a code
--                (kept as its own group so the shares add up to 1)
--   failed       failed jobs with this code (jobs dated by created_at)
--   share        failed / all failed jobs in the window (float8)
--   providers    distinct providers these failures came from
--   last_seen    created_at of the latest such job
WITH
-- include: local_days,
-- include: failure_code_days,
codes AS (
    SELECT error_code, CAST(sum(failed) AS bigint) AS failed, count(DISTINCT provider) AS providers,
           max(last_seen) AS last_seen
    FROM failure_code_days
    GROUP BY error_code
)
SELECT error_code,
       failed,
       CAST(failed AS float8) / sum(failed) OVER () AS share,
       providers,
       last_seen
FROM codes
ORDER BY failed DESC, error_code NULLS LAST;


-- name: window
-- Job error rate with its 95 % Wilson interval for jobs created in [since, until) (the daemon's metric probe).
-- :param since timestamptz   start of the window (inclusive)
-- :param until timestamptz   end of the window (exclusive)
--
-- One row: jobs (completed + failed), failed, unfinished (pending/processing),
-- error_rate (NULL when jobs = 0), wilson_low, wilson_high (NULL when jobs = 0).
-- the window as shared/job_days.sql reads it (its days are not used: cut in UTC)
WITH win AS (
    SELECT 'UTC' AS tz, CAST(:since AS timestamptz) AS lo, CAST(:until AS timestamptz) AS hi
),
-- include: job_days,
counts AS (
    SELECT CAST(COALESCE(sum(jobs), 0) AS bigint)       AS jobs,
           CAST(COALESCE(sum(failed), 0) AS bigint)     AS failed,
           CAST(COALESCE(sum(unfinished), 0) AS bigint) AS unfinished
    FROM job_days
)
SELECT x.jobs, x.failed, x.unfinished, r.error_rate, r.wilson_low, r.wilson_high
FROM counts x
-- include: wilson
;


-- name: window_by_provider
-- Job error rate with its 95 % Wilson interval per provider for jobs created in [since, until).
-- :param since timestamptz   start of the window (inclusive)
-- :param until timestamptz   end of the window (exclusive)
--
-- One row per provider with jobs in the window (providers without jobs are
-- absent: a probe has nothing to say about them): provider, jobs, failed,
-- unfinished, error_rate, wilson_low, wilson_high as in `window`.
-- the window as shared/job_days.sql reads it (its days are not used: cut in UTC)
WITH win AS (
    SELECT 'UTC' AS tz, CAST(:since AS timestamptz) AS lo, CAST(:until AS timestamptz) AS hi
),
-- include: job_days,
counts AS (
    SELECT provider, CAST(sum(jobs) AS bigint) AS jobs, CAST(sum(failed) AS bigint) AS failed,
           CAST(sum(unfinished) AS bigint) AS unfinished
    FROM job_days
    GROUP BY provider
)
SELECT x.provider, x.jobs, x.failed, x.unfinished, r.error_rate, r.wilson_low, r.wilson_high
FROM counts x
-- include: wilson
ORDER BY x.provider;


-- name: log_top_codes
-- The most frequent error_log codes over the window.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
-- :param limit int = 10   how many codes to show
--
-- Columns:
--   error_code  error_log.error_code
--   errors      error_log rows with this code in the window
--   users       distinct users among them (rows without a user are not counted here)
--   share       errors / all error_log rows in the window (float8)
--   endpoints   distinct endpoints that logged this code
--   last_seen   created_at of the latest such row
WITH win AS (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
codes AS (
    SELECT e.error_code, count(*) AS errors, count(DISTINCT e.user_id) AS users,
           count(DISTINCT e.endpoint) AS endpoints, max(e.created_at) AS last_seen
    FROM win w
    JOIN error_log e ON e.created_at >= w.lo AND e.created_at < w.hi
    GROUP BY e.error_code
)
SELECT error_code, errors, users,
       CAST(errors AS float8) / sum(errors) OVER () AS share,
       endpoints, last_seen
FROM codes
ORDER BY errors DESC, error_code
LIMIT CAST(:limit AS int);


-- name: log_top_endpoints
-- The endpoints with the most error_log rows over the window.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
-- :param limit int = 10   how many endpoints to show
--
-- Columns:
--   endpoint    error_log.endpoint
--   errors      error_log rows for this endpoint in the window
--   users       distinct users among them
--   share       errors / all error_log rows in the window (float8)
--   codes       distinct error codes logged by this endpoint
--   top_code    its most frequent code (ties: the smallest code)
--   last_seen   created_at of the latest such row
WITH win AS (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
rows_in AS (
    SELECT e.endpoint, e.error_code, e.user_id, e.created_at
    FROM win w
    JOIN error_log e ON e.created_at >= w.lo AND e.created_at < w.hi
),
endpoints AS (
    SELECT endpoint, count(*) AS errors, count(DISTINCT user_id) AS users,
           count(DISTINCT error_code) AS codes, max(created_at) AS last_seen,
           mode() WITHIN GROUP (ORDER BY error_code) AS top_code
    FROM rows_in
    GROUP BY endpoint
)
SELECT endpoint, errors, users,
       CAST(errors AS float8) / sum(errors) OVER () AS share,
       codes, top_code, last_seen
FROM endpoints
ORDER BY errors DESC, endpoint
LIMIT CAST(:limit AS int);


-- name: durations
-- Daily p50 / p95 duration in seconds of completed jobs, from request to result.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Duration = completed_at - created_at, not - started_at: the user waits from
-- the moment they asked, queue included, so that is the number that hurts; and
-- started_at is not set on every row. Only completed jobs (a failure's time is
-- not a delivery time); jobs dated by created_at.
-- Columns:
--   day          local day in tz
--   completed    completed jobs with a completed_at
--   p50_seconds  median duration (continuous percentile), NULL when none
--   p95_seconds  95th percentile duration, NULL when none
--   max_seconds  longest duration, NULL when none
WITH
-- include: local_days,
-- include: duration_days
SELECT d.day, COALESCE(s.completed, 0) AS completed, s.p50_seconds, s.p95_seconds, s.max_seconds
FROM days d LEFT JOIN duration_days s ON s.day = d.day
ORDER BY d.day;
