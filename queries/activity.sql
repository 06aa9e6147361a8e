-- Active users, stickiness, new vs returning, weekly retention.
--
-- What "active" means: shared/active_days.sql (a video job of any status or a purchase of any
-- environment that local day), the same user-days the rollups store. WAU/MAU: the spans method
-- of shared/wau_mau.sql, which the rollups derive their WAU/MAU with too.
--
-- Days are local days in `tz`; windows become UTC ranges computed from the local
-- dates so the indexes on created_at / purchased_at are used.


-- name: daily
-- Daily DAU, WAU (7 local days), MAU (30 local days), stickiness and new vs returning active users.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns:
--   day               local day in tz
--   dau               distinct active users that day
--   wau               distinct active users in the 7 local days ending that day
--   mau               distinct active users in the 30 local days ending that day
--   stickiness        dau / mau (float8), NULL when mau is 0
--   new_users         users who signed up that day (users.created_at), active or not
--   new_active        active users who signed up that same day
--   returning_active  active users who signed up on an earlier day (dau - new_active)
--
-- `win` is NOT MATERIALIZED: inlined, its bounds reach the created_at /
-- purchased_at index scans and the planner estimates the window's rows
-- (materialized, it misestimated 59 days of jobs by 6x and chose its joins
-- for the wrong size). Only users who signed up inside [start, end] can be
-- new on a day of it, so users are read through that small set (the
-- created_at index), not looked up once per active user-day (every
-- user_id exists in users: foreign keys).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                       AS first_day,
           CAST(:end AS date)                                                         AS last_day,
           CAST(:tz AS text)                                                          AS tz,
           -- activity is read from 29 days before `start` so the MAU of `start` is whole
           CAST(CAST(:start AS date) - 29 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text)    AS hi
),
-- include: user_days,
-- include: daily_active,
-- include: wau_mau,
signups AS (
    SELECT signup_day AS day, count(*) AS new_users FROM joined GROUP BY 1
),
activity AS (
    SELECT r.day, da.dau, r.wau, r.mau, s.new_users, da.new_active
    FROM win w
    JOIN rolling r ON r.day BETWEEN w.first_day AND w.last_day
    LEFT JOIN daily_active da ON da.day = r.day
    LEFT JOIN signups s ON s.day = r.day
)
-- include: activity_columns
;


-- name: summary
-- Distinct active users over the window, and DAU, WAU, MAU ending on `end`.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- One row:
--   first_day, last_day  the window
--   active_users         distinct users active on at least one day of [start, end]
--   new_users            users who signed up in [start, end]
--   dau                  distinct active users on `end`
--   wau                  distinct active users in the 7 local days ending on `end`
--   mau                  distinct active users in the 30 local days ending on `end`
--   stickiness           dau / mau (float8), NULL when mau is 0
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date) AS first_day,
           CAST(:end AS date)   AS last_day,
           CAST(:tz AS text)    AS tz,
           -- whichever reaches further back: the window, or the 30 days MAU needs
           CAST(LEAST(CAST(:start AS date), CAST(:end AS date) - 29) AS timestamp)
               AT TIME ZONE CAST(:tz AS text)                                       AS lo,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)    AS signups_lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text)  AS hi
),
-- include: active_days,
signups AS (
    SELECT count(*) AS new_users
    FROM win w JOIN users u ON u.created_at >= w.signups_lo AND u.created_at < w.hi
),
-- include: activity_summary
;


-- name: retention_weekly
-- Weekly signup cohorts (local weeks starting Monday) x weeks since signup: cohort size, retained users, retention.
-- :param start date       a day in the first cohort week (the whole Monday-Sunday week is taken)
-- :param end date         last local day of signups and of observed activity
-- :param tz tz = REPORT_TZ      IANA zone the days and weeks are cut in
-- :param weeks int = 12   report weeks since signup 0..weeks
--
-- Columns:
--   cohort_week         Monday of the local week the users signed up in
--   weeks_since_signup  0 = the signup week itself, 1 = the next Monday-Sunday week, ...
--   cohort_size         users who signed up that week (up to `end`)
--   retained            cohort users active (see top of file) at least once in that week
--   retention           retained / cohort_size (float8), NULL for an empty cohort
--   week_complete       false when the week runs past `end`: its figure can still grow
-- Weeks that start after `end` are not reported.
WITH params AS (
    SELECT CAST(:start AS date) - (CAST(EXTRACT(ISODOW FROM CAST(:start AS date)) AS int) - 1) AS first_week,
           CAST(:end AS date)                                                                 AS last_day,
           CAST(:tz AS text)                                                                  AS tz,
           CAST(:weeks AS int)                                                                AS max_weeks
),
win AS (
    SELECT p.*,
           CAST(p.first_week AS timestamp) AT TIME ZONE p.tz   AS lo,
           CAST(p.last_day + 1 AS timestamp) AT TIME ZONE p.tz AS hi
    FROM params p
),
cohort AS (
    SELECT u.id AS user_id, d.signup_day - (CAST(EXTRACT(ISODOW FROM d.signup_day) AS int) - 1) AS cohort_week
    FROM win b
    JOIN users u ON u.created_at >= b.lo AND u.created_at < b.hi
    CROSS JOIN LATERAL (SELECT (u.created_at AT TIME ZONE b.tz)::date AS signup_day) d
),
cohort_weeks AS (
    SELECT b.first_week + 7 * i AS cohort_week
    FROM win b, generate_series(0, (b.last_day - b.first_week) / 7) AS i
),
sizes AS (
    SELECT cohort_week, count(*) AS cohort_size FROM cohort GROUP BY cohort_week
),
-- include: active_days,
retained AS (
    SELECT c.cohort_week, (ud.day - c.cohort_week) / 7 AS week_no, count(DISTINCT c.user_id) AS retained
    FROM cohort c JOIN active_days ud ON ud.user_id = c.user_id AND ud.day >= c.cohort_week
    GROUP BY 1, 2
)
SELECT cw.cohort_week,
       k.week_no                                                       AS weeks_since_signup,
       COALESCE(s.cohort_size, 0)                                      AS cohort_size,
       COALESCE(r.retained, 0)                                         AS retained,
       CAST(COALESCE(r.retained, 0) AS float8) / NULLIF(s.cohort_size, 0) AS retention,
       cw.cohort_week + 7 * k.week_no + 6 <= b.last_day                AS week_complete
FROM win b
CROSS JOIN cohort_weeks cw
CROSS JOIN LATERAL generate_series(0, LEAST(b.max_weeks, (b.last_day - cw.cohort_week) / 7)) AS k(week_no)
LEFT JOIN sizes s    ON s.cohort_week = cw.cohort_week
LEFT JOIN retained r ON r.cohort_week = cw.cohort_week AND r.week_no = k.week_no
ORDER BY cw.cohort_week, k.week_no;
