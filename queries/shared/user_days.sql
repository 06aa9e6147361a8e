-- Active user-days with whether the user signed up that same local day: what activity.daily counts
-- and the rollups store (rollup_user_days). Needs the CTE `win` (tz, lo, hi); defines active_days
-- (shared/active_days.sql), joined (users who signed up in [lo, hi): id, signup_day) and
-- user_days (user_id, day, signup_day).
-- Only users who signed up inside the range can be new on a day of it, so users are read through
-- that small set (the created_at index), not looked up once per active user-day (every user_id
-- exists in users: foreign keys).
-- include: active_days,
joined AS (
    SELECT (u.created_at AT TIME ZONE w.tz)::date AS signup_day, u.id
    FROM win w JOIN users u ON u.created_at >= w.lo AND u.created_at < w.hi
),
user_days AS (
    SELECT a.user_id, a.day, COALESCE(j.signup_day = a.day, false) AS signup_day
    FROM active_days a LEFT JOIN joined j ON j.id = a.user_id
)
