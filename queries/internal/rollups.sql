-- Daily aggregates of a local-day range, read from the raw tables on the
-- analytics (backend) connection; ops/data/rollups.py stores them in the state
-- database's rollup tables (queries/state/migrations/040_rollups.sql).
--
-- Every rule is the raw queries' rule, not restated but pasted from the same file in
-- queries/shared/ (see queries/loader.py, `-- include:`), grouped one level finer (per
-- currency, per provider/model, per user), so the rollups give exactly the raw answers by
-- construction (tests/test_rollups.py still compares every day):
--   * revenue: shared/revenue_rows.sql, summed by shared/revenue_sums.sql
--   * jobs: shared/job_days.sql; durations: shared/duration_days.sql; failure codes:
--     shared/failure_code_days.sql
--   * activity: shared/user_days.sql (shared/active_days.sql, with the signup flag)
-- Days are local days in `tz`: shared/local_days.sql.


-- name: revenue_days
-- Production revenue per local day and currency (days and currencies with any purchase or refund).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, currency, gross, refunds, purchases, refunded_purchases, paying_users, credits_sold
-- (as in revenue.daily for that currency).
WITH
-- include: local_days,
-- include: revenue_rows,
-- the rollups hold no proceeds: revenue.daily reads them raw when a commission file is configured
priced_rows AS (
    SELECT e.*, CAST(NULL AS numeric) AS proceeds FROM revenue_rows e
),
by_day AS (
    SELECT day, currency,
-- include: revenue_sums
    FROM priced_rows
    GROUP BY day, currency
)
SELECT day, currency,
       COALESCE(gross, 0)        AS gross,
       COALESCE(refunds, 0)      AS refunds,
       purchases,
       refunded_purchases,
       paying_users,
       COALESCE(credits_sold, 0) AS credits_sold
FROM by_day
ORDER BY 1, 2;


-- name: jobs_days
-- Video jobs per local day, provider and model: finished, failed, unfinished.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, model_id, jobs (completed + failed), failed, unfinished (pending + processing).
WITH
-- include: local_days,
-- include: job_days
SELECT day, provider, model_id, jobs, failed, unfinished
FROM job_days
ORDER BY 1, 2, 3;


-- name: user_days
-- One row per user per local day the user was active (a job of any status or a purchase of any environment).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, user_id, signup_day (the user signed up that same local day).
WITH
-- include: local_days,
-- include: user_days
SELECT day, user_id, signup_day
FROM user_days;


-- name: signups_days
-- Users who signed up per local day (users.created_at), days with signups only.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
WITH
-- include: local_days
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
WITH
-- include: local_days,
-- include: user_days,
-- include: daily_active,
signups AS (
    SELECT signup_day AS day, count(*) AS new_users FROM joined GROUP BY 1
),
activity AS (
    SELECT d.day, da.dau, s.new_users, da.new_active
    FROM days d
    LEFT JOIN daily_active da ON da.day = d.day
    LEFT JOIN signups s ON s.day = d.day
)
-- include: dau_columns
;


-- name: durations_days
-- Completed jobs' duration percentiles per local day (days with a completed job only), as in errors.durations.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, completed, p50_seconds, p95_seconds, max_seconds (completed_at - created_at, completed jobs).
WITH
-- include: local_days,
-- include: duration_days
SELECT day, completed, p50_seconds, p95_seconds, max_seconds
FROM duration_days
ORDER BY day;


-- name: failure_codes_days
-- Failed jobs per local day, provider and error_code (NULL kept as its own code), as in errors.by_code.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: day, provider, error_code, failed, last_seen (created_at of the latest such job).
WITH
-- include: local_days,
-- include: failure_code_days
SELECT day, provider, error_code, failed, last_seen
FROM failure_code_days
ORDER BY 1, 2, 3;
