-- The rollup tables in the state database (schema opsbench): loading a
-- refreshed day range, deriving DAU/WAU/MAU, the watermark, and reading
-- series back. ops/data/rollups.py runs these; the raw side is queries/rollups.sql.
--
-- A refresh loads the recomputed rows of [start, end] into temp tables
-- (COPY), then merges them: changed rows are updated, new rows inserted, rows
-- of the range that no longer exist deleted. Unchanged rows are not touched,
-- so a second refresh of the same data changes nothing (the merge statements
-- return how many rows they changed).


-- name: incoming_revenue
-- Staging for refreshed revenue rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_revenue (LIKE opsbench.rollup_revenue_daily) ON COMMIT DROP

-- name: incoming_jobs
-- Staging for refreshed job rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_jobs (LIKE opsbench.rollup_jobs_daily) ON COMMIT DROP

-- name: incoming_user_days
-- Staging for refreshed user-day rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_user_days (LIKE opsbench.rollup_user_days) ON COMMIT DROP

-- name: incoming_signups
-- Staging for refreshed signup rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_signups (LIKE opsbench.rollup_signups_daily) ON COMMIT DROP

-- name: incoming_durations
-- Staging for refreshed duration rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_durations (LIKE opsbench.rollup_durations_daily) ON COMMIT DROP

-- name: incoming_failure_codes
-- Staging for refreshed failure-code rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_failure_codes (LIKE opsbench.rollup_failure_codes_daily) ON COMMIT DROP

-- name: incoming_activity
-- Staging for derived activity rows (dropped at commit).
CREATE TEMP TABLE IF NOT EXISTS incoming_activity (LIKE opsbench.rollup_activity_daily) ON COMMIT DROP

-- name: copy_revenue
-- COPY target for revenue rows.
COPY incoming_revenue (tz, day, currency, gross, refunds, purchases, refunded_purchases, paying_users, credits_sold)
FROM STDIN

-- name: copy_jobs
-- COPY target for job rows.
COPY incoming_jobs (tz, day, provider, model_id, jobs, failed, unfinished) FROM STDIN

-- name: copy_user_days
-- COPY target for user-day rows.
COPY incoming_user_days (tz, day, user_id, signup_day) FROM STDIN

-- name: copy_signups
-- COPY target for signup rows.
COPY incoming_signups (tz, day, new_users) FROM STDIN


-- name: copy_durations
-- COPY target for duration rows.
COPY incoming_durations (tz, day, completed, p50_seconds, p95_seconds, max_seconds) FROM STDIN

-- name: copy_failure_codes
-- COPY target for failure-code rows.
COPY incoming_failure_codes (tz, day, provider, error_code, failed, last_seen) FROM STDIN

-- name: analyze_incoming_revenue
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_revenue

-- name: analyze_incoming_jobs
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_jobs

-- name: analyze_incoming_user_days
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_user_days

-- name: analyze_incoming_signups
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_signups

-- name: analyze_incoming_durations
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_durations

-- name: analyze_incoming_failure_codes
-- Statistics for the staged rows (temp tables are never analyzed by autovacuum), so the merge is planned for their size.
ANALYZE incoming_failure_codes

-- name: analyze_rollups
-- Statistics for the rollup tables after a backfill filled them: until autovacuum gets to them, the next
-- refresh's merges would be planned for near-empty tables (measured: a 3-day refresh right after a medium
-- backfill spent 77 s in merge_user_days on a nested-loop anti-join; 1.7 s with statistics).
ANALYZE opsbench.rollup_revenue_daily, opsbench.rollup_jobs_daily, opsbench.rollup_user_days,
        opsbench.rollup_signups_daily, opsbench.rollup_activity_daily, opsbench.rollup_durations_daily,
        opsbench.rollup_failure_codes_daily

-- name: merge_revenue
-- Merge staged revenue rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_revenue_daily AS t
    SELECT * FROM incoming_revenue
    ON CONFLICT (tz, currency, day) DO UPDATE
       SET gross = excluded.gross, refunds = excluded.refunds, purchases = excluded.purchases,
           refunded_purchases = excluded.refunded_purchases, paying_users = excluded.paying_users,
           credits_sold = excluded.credits_sold
     WHERE (t.gross, t.refunds, t.purchases, t.refunded_purchases, t.paying_users, t.credits_sold)
           IS DISTINCT FROM (excluded.gross, excluded.refunds, excluded.purchases, excluded.refunded_purchases,
                             excluded.paying_users, excluded.credits_sold)
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_revenue_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_revenue i
                        WHERE i.tz = t.tz AND i.currency = t.currency AND i.day = t.day)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed

-- name: merge_jobs
-- Merge staged job rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_jobs_daily AS t
    SELECT * FROM incoming_jobs
    ON CONFLICT (tz, day, provider, model_id) DO UPDATE
       SET jobs = excluded.jobs, failed = excluded.failed, unfinished = excluded.unfinished
     WHERE (t.jobs, t.failed, t.unfinished) IS DISTINCT FROM (excluded.jobs, excluded.failed, excluded.unfinished)
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_jobs_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_jobs i
                        WHERE i.tz = t.tz AND i.day = t.day AND i.provider = t.provider AND i.model_id = t.model_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed

-- name: merge_user_days
-- Merge staged user-day rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_user_days AS t
    SELECT * FROM incoming_user_days
    ON CONFLICT (tz, day, user_id) DO UPDATE
       SET signup_day = excluded.signup_day
     WHERE t.signup_day IS DISTINCT FROM excluded.signup_day
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_user_days t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_user_days i
                        WHERE i.tz = t.tz AND i.day = t.day AND i.user_id = t.user_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed

-- name: merge_signups
-- Merge staged signup rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_signups_daily AS t
    SELECT * FROM incoming_signups
    ON CONFLICT (tz, day) DO UPDATE
       SET new_users = excluded.new_users
     WHERE t.new_users IS DISTINCT FROM excluded.new_users
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_signups_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_signups i WHERE i.tz = t.tz AND i.day = t.day)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed


-- name: merge_durations
-- Merge staged duration rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_durations_daily AS t
    SELECT * FROM incoming_durations
    ON CONFLICT (tz, day) DO UPDATE
       SET completed = excluded.completed, p50_seconds = excluded.p50_seconds,
           p95_seconds = excluded.p95_seconds, max_seconds = excluded.max_seconds
     WHERE (t.completed, t.p50_seconds, t.p95_seconds, t.max_seconds)
           IS DISTINCT FROM (excluded.completed, excluded.p50_seconds, excluded.p95_seconds, excluded.max_seconds)
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_durations_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_durations i WHERE i.tz = t.tz AND i.day = t.day)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed

-- name: merge_failure_codes
-- Merge staged failure-code rows into [start, end] of zone tz; returns rows changed.
-- error_code may be NULL, so rows are compared whole (IS NOT DISTINCT FROM): a row
-- that no longer exists as it is is deleted, a staged row not yet stored is inserted
-- (a changed count is one of each). Unchanged rows are not touched.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH gone AS (
    DELETE FROM opsbench.rollup_failure_codes_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_failure_codes i
                        WHERE i.tz = t.tz AND i.day = t.day AND i.provider = t.provider
                          AND i.error_code IS NOT DISTINCT FROM t.error_code
                          AND i.failed = t.failed AND i.last_seen = t.last_seen)
    RETURNING 1
), up AS (
    INSERT INTO opsbench.rollup_failure_codes_daily
    SELECT i.* FROM incoming_failure_codes i
     WHERE NOT EXISTS (SELECT 1 FROM opsbench.rollup_failure_codes_daily t
                        WHERE t.tz = i.tz AND t.day = i.day AND t.provider = i.provider
                          AND t.error_code IS NOT DISTINCT FROM i.error_code
                          AND t.failed = i.failed AND t.last_seen = i.last_seen)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed

-- name: derive_activity
-- Stage DAU/WAU/MAU of [start, end] from the stored user-days (the spans method of queries/shared/wau_mau.sql, as activity.daily).
-- :param tz text      zone of the rows
-- :param start date   first day to derive
-- :param end date     last day to derive
INSERT INTO incoming_activity (tz, day, dau, wau, mau, new_users, new_active)
WITH win AS (
    SELECT CAST(:tz AS text) AS tz, CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day
),
-- the stored rows of shared/user_days.sql
user_days AS (
    SELECT ud.user_id, ud.day, ud.signup_day
    FROM win w
    JOIN opsbench.rollup_user_days ud
      ON ud.tz = w.tz AND ud.day BETWEEN w.first_day - 29 AND w.last_day
),
-- include: daily_active,
-- include: wau_mau
SELECT w.tz, r.day,
       COALESCE(da.dau, 0), CAST(r.wau AS bigint), CAST(r.mau AS bigint),
       COALESCE(s.new_users, 0), COALESCE(da.new_active, 0)
FROM win w
JOIN rolling r ON r.day BETWEEN w.first_day AND w.last_day
LEFT JOIN daily_active da ON da.day = r.day
LEFT JOIN opsbench.rollup_signups_daily s ON s.tz = w.tz AND s.day = r.day

-- name: merge_activity
-- Merge staged activity rows into [start, end] of zone tz; returns rows changed.
-- :param tz text      zone the rows were cut in
-- :param start date   first day refreshed
-- :param end date     last day refreshed
WITH up AS (
    INSERT INTO opsbench.rollup_activity_daily AS t
    SELECT * FROM incoming_activity
    ON CONFLICT (tz, day) DO UPDATE
       SET dau = excluded.dau, wau = excluded.wau, mau = excluded.mau,
           new_users = excluded.new_users, new_active = excluded.new_active
     WHERE (t.dau, t.wau, t.mau, t.new_users, t.new_active)
           IS DISTINCT FROM (excluded.dau, excluded.wau, excluded.mau, excluded.new_users, excluded.new_active)
    RETURNING 1
), gone AS (
    DELETE FROM opsbench.rollup_activity_daily t
     WHERE t.tz = :tz AND t.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
       AND NOT EXISTS (SELECT 1 FROM incoming_activity i WHERE i.tz = t.tz AND i.day = t.day)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS changed


-- name: lock_zone
-- Serialise refreshes of one zone (two daemons, or the job and a manual run).
-- :param tz text      zone being refreshed
SELECT pg_advisory_xact_lock(hashtextextended('opsbench.rollups/' || :tz, 0))

-- name: get_watermark
-- The rollups' complete range for a zone (no row: never refreshed).
-- :param tz text      zone
SELECT tz, complete_from, refreshed_through, last_from, last_rows_changed, refreshed_at
FROM opsbench.rollup_watermarks
WHERE tz = :tz

-- name: set_watermark
-- Record a finished refresh.
-- :param tz text                     zone
-- :param complete_from date          first day the rollups hold
-- :param refreshed_through date      last closed day refreshed
-- :param last_from date              first day this run recomputed
-- :param changed int                 rows this run changed
-- :param at timestamptz              when
INSERT INTO opsbench.rollup_watermarks AS w
       (tz, complete_from, refreshed_through, last_from, last_rows_changed, refreshed_at)
VALUES (:tz, CAST(:complete_from AS date), CAST(:refreshed_through AS date), CAST(:last_from AS date),
        :changed, :at)
ON CONFLICT (tz) DO UPDATE
   SET complete_from = LEAST(w.complete_from, excluded.complete_from),
       refreshed_through = excluded.refreshed_through,
       last_from = excluded.last_from,
       last_rows_changed = excluded.last_rows_changed,
       refreshed_at = excluded.refreshed_at


-- name: revenue_series
-- Daily revenue of [start, end] from the rollups, with the columns of revenue.daily.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
-- :param currency text = USD  ISO currency
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day,
           CAST(:tz AS text) AS tz, upper(CAST(:currency AS text)) AS currency
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
revenue AS (
    SELECT d.day, w.currency, r.gross, r.refunds,
           CAST(NULL AS numeric) AS proceeds,  -- not rolled up: read raw when configured
           r.purchases, r.refunded_purchases, r.paying_users, r.credits_sold
    FROM days d
    CROSS JOIN win w
    LEFT JOIN opsbench.rollup_revenue_daily r
           ON r.tz = w.tz AND r.currency = w.currency AND r.day = d.day
)
-- include: revenue_columns

-- name: activity_series
-- Daily DAU/WAU/MAU of [start, end] from the rollups, with the columns of activity.daily.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
activity AS (
    SELECT d.day, a.dau, a.wau, a.mau, a.new_users, a.new_active
    FROM days d
    CROSS JOIN win w
    LEFT JOIN opsbench.rollup_activity_daily a ON a.tz = w.tz AND a.day = d.day
)
-- include: activity_columns

-- name: errors_series
-- Daily job error rate of [start, end] from the rollups, with the columns of errors.daily (Wilson 95 %).
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
-- the stored rows of shared/job_days.sql
job_days AS (
    SELECT r.day, r.provider, r.model_id, r.jobs, r.failed, r.unfinished
    FROM win w
    JOIN opsbench.rollup_jobs_daily r ON r.tz = w.tz AND r.day BETWEEN w.first_day AND w.last_day
),
-- include: error_rate_days

-- name: has_tables
-- Whether the rollup tables exist (the migration has run).
SELECT to_regclass('opsbench.rollup_watermarks') IS NOT NULL AS present

-- name: dau_series
-- Daily active users of [start, end] from the rollups, with the DAU columns of activity.daily.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
activity AS (
    SELECT d.day, a.dau, a.new_users, a.new_active
    FROM days d
    CROSS JOIN win w
    LEFT JOIN opsbench.rollup_activity_daily a ON a.tz = w.tz AND a.day = d.day
)
-- include: dau_columns

-- name: forget_zone
-- Drop every rollup row and the watermark of a zone (after a REPORT_TZ change, or to force a backfill).
-- :param tz text      zone
WITH a AS (DELETE FROM opsbench.rollup_revenue_daily WHERE tz = :tz RETURNING 1),
     b AS (DELETE FROM opsbench.rollup_jobs_daily WHERE tz = :tz RETURNING 1),
     c AS (DELETE FROM opsbench.rollup_user_days WHERE tz = :tz RETURNING 1),
     d AS (DELETE FROM opsbench.rollup_signups_daily WHERE tz = :tz RETURNING 1),
     e AS (DELETE FROM opsbench.rollup_activity_daily WHERE tz = :tz RETURNING 1),
     f AS (DELETE FROM opsbench.rollup_watermarks WHERE tz = :tz RETURNING 1),
     g AS (DELETE FROM opsbench.rollup_durations_daily WHERE tz = :tz RETURNING 1),
     h AS (DELETE FROM opsbench.rollup_failure_codes_daily WHERE tz = :tz RETURNING 1)
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c)
     + (SELECT count(*) FROM d) + (SELECT count(*) FROM e) + (SELECT count(*) FROM f)
     + (SELECT count(*) FROM g) + (SELECT count(*) FROM h) AS deleted


-- name: durations_series
-- Daily job durations of [start, end] from the rollups, with the columns of errors.durations.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
)
SELECT d.day, COALESCE(r.completed, 0) AS completed, r.p50_seconds, r.p95_seconds, r.max_seconds
FROM days d
CROSS JOIN win w
LEFT JOIN opsbench.rollup_durations_daily r ON r.tz = w.tz AND r.day = d.day
ORDER BY d.day

-- name: failure_codes_rows
-- The stored failure-code rows of [start, end] (day, provider, error_code, failed, last_seen), as
-- rollups.failure_codes_days returns them from the raw tables.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
SELECT day, provider, error_code, failed, last_seen
FROM opsbench.rollup_failure_codes_daily
WHERE tz = :tz AND day BETWEEN CAST(:start AS date) AND CAST(:end AS date)
ORDER BY day, provider, error_code

-- name: activity_tail
-- activity.daily for open days [start, end] right after the rolled-up days: WAU/MAU from the
-- stored user-days of the 29 days before `start` plus the given user-days of [start, end]
-- (read from the raw tables by the caller). Each day's WAU/MAU is the number of distinct users
-- in its 7/30-day range (what the spans method of queries/shared/wau_mau.sql counts), found by a hash
-- of user ids: for the one or few open days this is cheaper than sorting a month of user-days
-- by user for the spans.
-- :param start date              first day (the stored user-days must cover the 29 days before it)
-- :param end date                last day
-- :param tz tz = REPORT_TZ            zone
-- :param user_ids uuid[]         user-days of [start, end]: user ids ...
-- :param days date[]             ... their days ...
-- :param signup bool[]           ... and whether the user signed up that day
-- :param signup_days date[]      days of [start, end] with signups ...
-- :param signup_counts int[]     ... and how many
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
fresh AS (
    SELECT f.user_id, f.day, f.signup_day
    FROM unnest(CAST(:user_ids AS uuid[]), CAST(:days AS date[]), CAST(:signup AS boolean[]))
         AS f(user_id, day, signup_day)
),
days AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
user_days AS MATERIALIZED (
    SELECT ud.user_id, ud.day
    FROM win w
    JOIN opsbench.rollup_user_days ud
      ON ud.tz = w.tz AND ud.day BETWEEN w.first_day - 29 AND w.first_day - 1
    UNION ALL
    SELECT f.user_id, f.day FROM fresh f
),
rolling AS (
    SELECT d.day,
           (SELECT count(*) FROM (SELECT DISTINCT u.user_id FROM user_days u
                                   WHERE u.day BETWEEN d.day - 6 AND d.day) x)  AS wau,
           (SELECT count(*) FROM (SELECT DISTINCT u.user_id FROM user_days u
                                   WHERE u.day BETWEEN d.day - 29 AND d.day) x) AS mau
    FROM days d
),
daily_active AS (
    SELECT day, count(*) AS dau, count(*) FILTER (WHERE signup_day) AS new_active
    FROM fresh GROUP BY day
),
signups AS (
    SELECT s.day, s.new_users
    FROM unnest(CAST(:signup_days AS date[]), CAST(:signup_counts AS bigint[])) AS s(day, new_users)
),
activity AS (
    SELECT r.day, da.dau, r.wau, r.mau, s.new_users, da.new_active
    FROM rolling r
    LEFT JOIN daily_active da ON da.day = r.day
    LEFT JOIN signups s ON s.day = r.day
)
-- include: activity_columns

-- name: activity_summary
-- activity.summary of closed days [start, end] from the stored user-days and signups (the caller checks
-- that the rollups hold [start, end] and the 29 days before `end`).
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          zone the rollups were cut in
WITH win AS (
    SELECT CAST(:start AS date) AS first_day, CAST(:end AS date) AS last_day, CAST(:tz AS text) AS tz
),
-- the stored rows of shared/active_days.sql
active_days AS (
    SELECT ud.user_id, ud.day
    FROM win w
    JOIN opsbench.rollup_user_days ud
      ON ud.tz = w.tz AND ud.day BETWEEN LEAST(w.first_day, w.last_day - 29) AND w.last_day
),
signups AS (
    SELECT CAST(COALESCE(sum(s.new_users), 0) AS bigint) AS new_users
    FROM win w
    JOIN opsbench.rollup_signups_daily s ON s.tz = w.tz AND s.day BETWEEN w.first_day AND w.last_day
),
-- include: activity_summary
