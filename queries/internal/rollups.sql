-- Daily aggregates of a local-day range, read from the raw tables on the
-- analytics (backend) connection; ops/data/rollups.py stores them in the state
-- database's rollup tables (queries/state/migrations/040_rollups.sql).
--
-- Every rule is the raw queries' rule, restated here grouped one level finer
-- (per currency, per provider/model, per user), so the rollups give exactly
-- the raw answers (tests/test_rollups.py compares every day):
--   * revenue: queries/revenue.sql (Production only, first copy of a
--     transaction_id, gross on the purchase day, refunds on the refund day, a
--     refund on any copy of a transaction counted once, at its earliest refunded_at)
--   * jobs: queries/errors.sql (dated by created_at; jobs = completed + failed;
--     unfinished = pending + processing)
--   * activity: queries/activity.sql (a job of any status or a purchase of any
--     environment makes the user active that local day)
-- Days are local days in `tz`; [start, end] becomes the UTC range
-- [start 00:00 local, end + 1 00:00 local) so the created_at / purchased_at /
-- refunded_at indexes are used; `win` is NOT MATERIALIZED so the planner sees
-- those bounds and estimates the window's rows (one day is a handful of rows).


-- name: revenue_days
-- Production revenue per local day and currency (days and currencies with any purchase or refund).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, currency, gross, refunds, purchases, refunded_purchases, paying_users, credits_sold
-- (as in revenue.daily for that currency).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
bought AS (
    SELECT (p.purchased_at AT TIME ZONE w.tz)::date AS day, p.currency,
           sum(p.price) AS gross, count(*) AS purchases,
           count(DISTINCT p.user_id) AS paying_users, sum(p.credits) AS credits_sold
    FROM win w
    JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    WHERE p.environment = 'Production'
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
    GROUP BY 1, 2
),
refunded AS (
    SELECT (r.refunded_at AT TIME ZONE w.tz)::date AS day, p.currency,
           sum(p.price) AS refunds, count(*) AS refunded_purchases
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency)
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN purchases p ON p.transaction_id = r.transaction_id
    WHERE p.environment = 'Production'
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
      AND NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
    GROUP BY 1, 2
)
SELECT COALESCE(b.day, r.day)                AS day,
       COALESCE(b.currency, r.currency)      AS currency,
       COALESCE(b.gross, 0)                  AS gross,
       COALESCE(r.refunds, 0)                AS refunds,
       COALESCE(b.purchases, 0)              AS purchases,
       COALESCE(r.refunded_purchases, 0)     AS refunded_purchases,
       COALESCE(b.paying_users, 0)           AS paying_users,
       COALESCE(b.credits_sold, 0)           AS credits_sold
FROM bought b
FULL JOIN refunded r ON r.day = b.day AND r.currency = b.currency
ORDER BY 1, 2;


-- name: jobs_days
-- Video jobs per local day, provider and model: finished, failed, unfinished.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, model_id, jobs (completed + failed), failed, unfinished (pending + processing).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT (j.created_at AT TIME ZONE w.tz)::date                       AS day,
       j.provider,
       j.model_id,
       count(*) FILTER (WHERE j.status IN ('completed', 'failed'))   AS jobs,
       count(*) FILTER (WHERE j.status = 'failed')                   AS failed,
       count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
FROM win w
JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;


-- name: user_days
-- One row per user per local day the user was active (a job of any status or a purchase of any environment).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, user_id, signup_day (the user signed up that same local day).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
user_days AS (
    SELECT j.user_id, (j.created_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    UNION
    SELECT p.user_id, (p.purchased_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
)
SELECT ud.day,
       ud.user_id,
       COALESCE((u.created_at AT TIME ZONE w.tz)::date = ud.day, false) AS signup_day
FROM win w
CROSS JOIN user_days ud
LEFT JOIN users u ON u.id = ud.user_id;


-- name: signups_days
-- Users who signed up per local day (users.created_at), days with signups only.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT (u.created_at AT TIME ZONE w.tz)::date AS day, count(*) AS new_users
FROM win w JOIN users u ON u.created_at >= w.lo AND u.created_at < w.hi
GROUP BY 1
ORDER BY 1;


-- name: data_start
-- The first local day with any signup, job, purchase or refund (NULL on an empty backend): where a backfill starts.
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
SELECT (LEAST((SELECT min(created_at) FROM users),
              (SELECT min(created_at) FROM video_jobs),
              (SELECT min(purchased_at) FROM purchases),
              (SELECT min(refunded_at) FROM purchases WHERE refunded_at IS NOT NULL))
        AT TIME ZONE CAST(:tz AS text))::date AS first_day;


-- name: dau_days
-- Daily active users of [start, end] without the rolling WAU/MAU (no 29-day look-back): today's row of a DAU series.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, dau, new_users, new_active, returning_active, exactly as in activity.daily.
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                     AS first_day,
           CAST(:end AS date)                                                       AS last_day,
           CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
user_days AS (
    SELECT j.user_id, (j.created_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    UNION
    SELECT p.user_id, (p.purchased_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
),
-- only users who signed up inside the window can be "new" on a day of it: a
-- small set read by the created_at index, instead of one users lookup per
-- active user (every user_id exists in users: foreign keys)
joined AS (
    SELECT (u.created_at AT TIME ZONE w.tz)::date AS signup_day, u.id
    FROM win w JOIN users u ON u.created_at >= w.lo AND u.created_at < w.hi
),
daily_active AS (
    SELECT ud.day,
           count(*) AS dau,
           count(*) FILTER (WHERE j.signup_day = ud.day) AS new_active
    FROM user_days ud
    LEFT JOIN joined j ON j.id = ud.user_id
    GROUP BY ud.day
),
signups AS (
    SELECT signup_day AS day, count(*) AS new_users FROM joined GROUP BY 1
)
SELECT d.day,
       COALESCE(da.dau, 0)                               AS dau,
       COALESCE(s.new_users, 0)                          AS new_users,
       COALESCE(da.new_active, 0)                        AS new_active,
       COALESCE(da.dau, 0) - COALESCE(da.new_active, 0)  AS returning_active
FROM days d
LEFT JOIN daily_active da ON da.day = d.day
LEFT JOIN signups s ON s.day = d.day
ORDER BY d.day;


-- name: durations_days
-- Completed jobs' duration percentiles per local day (days with a completed job only), as in errors.durations.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, completed, p50_seconds, p95_seconds, max_seconds (completed_at - created_at, completed jobs).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
done AS (
    SELECT (j.created_at AT TIME ZONE w.tz)::date                            AS day,
           CAST(EXTRACT(EPOCH FROM j.completed_at - j.created_at) AS float8) AS seconds
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    WHERE j.status = 'completed' AND j.completed_at IS NOT NULL
)
SELECT day, count(*) AS completed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)  AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_seconds,
       max(seconds)                                          AS max_seconds
FROM done
GROUP BY day
ORDER BY day;


-- name: failure_codes_days
-- Failed jobs per local day, provider and error_code (NULL kept as its own code), as in errors.by_code.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, error_code, failed, last_seen (created_at of the latest such job).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT (j.created_at AT TIME ZONE w.tz)::date AS day, j.provider, j.error_code,
       count(*) AS failed, max(j.created_at) AS last_seen
FROM win w
JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
WHERE j.status = 'failed'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
