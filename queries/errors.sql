-- Video job failures, error_log, job durations.
--
-- Rules shared by the job queries in this file:
--   * A job is dated by created_at (when the user asked), in local days of `tz`.
--     The window becomes a UTC range computed from the local dates so the index
--     on video_jobs.created_at is used.
--   * Outcomes are finished jobs only: jobs = completed + failed. pending and
--     processing jobs have no outcome yet; they are shown as `unfinished` and
--     never counted as successes or failures.
--   * error_rate = failed / jobs. A rate from 3 jobs is not a rate from 3000, so
--     each comes with its 95 % Wilson score interval (z = 1.959964):
--       centre = (p + z^2 / 2n) / (1 + z^2 / n)
--       half   = z * sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)
--     clamped to [0, 1] (guarded by CASE: GREATEST/LEAST skip NULLs and would
--     turn "no data" into 0 .. 1). With no finished jobs (n = 0) the rate and the
--     interval are NULL, not 0: nothing was measured.


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
WITH win AS (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
counts AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
           count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    GROUP BY 1
),
per_day AS (
    SELECT d.day,
           COALESCE(c.jobs, 0)       AS jobs,
           COALESCE(c.failed, 0)     AS failed,
           COALESCE(c.unfinished, 0) AS unfinished
    FROM days d LEFT JOIN counts c ON c.day = d.day
)
SELECT x.day, x.jobs, x.failed, x.unfinished,
       r.p                                        AS error_rate,
       CASE WHEN r.p IS NOT NULL THEN GREATEST(0.0, r.centre - r.half) END AS wilson_low,
       CASE WHEN r.p IS NOT NULL THEN LEAST(1.0, r.centre + r.half) END    AS wilson_high
FROM per_day x
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST(1.959964 AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT q.p AS p,
           (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) r
ORDER BY x.day;


-- name: by_provider
-- Daily job error rate per provider with its 95 % Wilson interval (every day x every provider).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, then as in `daily` (jobs, failed, unfinished,
-- error_rate, wilson_low, wilson_high) for that provider's jobs. Providers are
-- those in `models` plus any other seen on jobs in the window.
WITH win AS (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
counts AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
           j.provider,
           count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    GROUP BY 1, 2
),
providers AS (
    SELECT provider FROM models
    UNION
    SELECT provider FROM counts
),
per_day AS (
    SELECT d.day, pr.provider,
           COALESCE(c.jobs, 0)       AS jobs,
           COALESCE(c.failed, 0)     AS failed,
           COALESCE(c.unfinished, 0) AS unfinished
    FROM days d
    CROSS JOIN providers pr
    LEFT JOIN counts c ON c.day = d.day AND c.provider = pr.provider
)
SELECT x.day, x.provider, x.jobs, x.failed, x.unfinished,
       r.p                                        AS error_rate,
       CASE WHEN r.p IS NOT NULL THEN GREATEST(0.0, r.centre - r.half) END AS wilson_low,
       CASE WHEN r.p IS NOT NULL THEN LEAST(1.0, r.centre + r.half) END    AS wilson_high
FROM per_day x
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST(1.959964 AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT q.p AS p,
           (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) r
ORDER BY x.day, x.provider;


-- name: by_model
-- Daily job error rate per model with its 95 % Wilson interval (every day x every model).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, model_id, model (models.name, NULL if the model row is gone),
-- provider (models.provider), then as in `daily` for that model's jobs.
WITH win AS (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
counts AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
           j.model_id,
           count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    GROUP BY 1, 2
),
model_list AS (
    SELECT id AS model_id FROM models
    UNION
    SELECT model_id FROM counts
),
per_day AS (
    SELECT d.day, ml.model_id,
           COALESCE(c.jobs, 0)       AS jobs,
           COALESCE(c.failed, 0)     AS failed,
           COALESCE(c.unfinished, 0) AS unfinished
    FROM days d
    CROSS JOIN model_list ml
    LEFT JOIN counts c ON c.day = d.day AND c.model_id = ml.model_id
)
SELECT x.day, x.model_id, m.name AS model, m.provider, x.jobs, x.failed, x.unfinished,
       r.p                                        AS error_rate,
       CASE WHEN r.p IS NOT NULL THEN GREATEST(0.0, r.centre - r.half) END AS wilson_low,
       CASE WHEN r.p IS NOT NULL THEN LEAST(1.0, r.centre + r.half) END    AS wilson_high
FROM per_day x
LEFT JOIN models m ON m.id = x.model_id
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST(1.959964 AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT q.p AS p,
           (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) r
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
WITH win AS (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
codes AS (
    SELECT j.error_code, count(*) AS failed, count(DISTINCT j.provider) AS providers,
           max(j.created_at) AS last_seen
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    WHERE j.status = 'failed'
    GROUP BY j.error_code
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
WITH counts AS (
    SELECT count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM video_jobs j
    WHERE j.created_at >= CAST(:since AS timestamptz) AND j.created_at < CAST(:until AS timestamptz)
)
SELECT x.jobs, x.failed, x.unfinished,
       r.p                                        AS error_rate,
       CASE WHEN r.p IS NOT NULL THEN GREATEST(0.0, r.centre - r.half) END AS wilson_low,
       CASE WHEN r.p IS NOT NULL THEN LEAST(1.0, r.centre + r.half) END    AS wilson_high
FROM counts x
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST(1.959964 AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT q.p AS p,
           (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) r;


-- name: window_by_provider
-- Job error rate with its 95 % Wilson interval per provider for jobs created in [since, until).
-- :param since timestamptz   start of the window (inclusive)
-- :param until timestamptz   end of the window (exclusive)
--
-- One row per provider with jobs in the window (providers without jobs are
-- absent: a probe has nothing to say about them): provider, jobs, failed,
-- unfinished, error_rate, wilson_low, wilson_high as in `window`.
WITH counts AS (
    SELECT j.provider,
           count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
           count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
           count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
    FROM video_jobs j
    WHERE j.created_at >= CAST(:since AS timestamptz) AND j.created_at < CAST(:until AS timestamptz)
    GROUP BY j.provider
)
SELECT x.provider, x.jobs, x.failed, x.unfinished,
       r.p                                        AS error_rate,
       CASE WHEN r.p IS NOT NULL THEN GREATEST(0.0, r.centre - r.half) END AS wilson_low,
       CASE WHEN r.p IS NOT NULL THEN LEAST(1.0, r.centre + r.half) END    AS wilson_high
FROM counts x
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST(1.959964 AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT q.p AS p,
           (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) r
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
WITH win AS (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
done AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
           CAST(EXTRACT(EPOCH FROM j.completed_at - j.created_at) AS float8) AS seconds
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    WHERE j.status = 'completed' AND j.completed_at IS NOT NULL
),
stats AS (
    SELECT day, count(*) AS completed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)  AS p50_seconds,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_seconds,
           max(seconds)                                          AS max_seconds
    FROM done GROUP BY day
)
SELECT d.day, COALESCE(s.completed, 0) AS completed, s.p50_seconds, s.p95_seconds, s.max_seconds
FROM days d LEFT JOIN stats s ON s.day = d.day
ORDER BY d.day;
