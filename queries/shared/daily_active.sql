-- DAU and new active users per local day of [first_day, last_day], from the raw tables
-- (activity.daily, rollups.dau_days) and from the stored user-days (derive_activity) alike.
-- Needs the CTEs `win` (first_day, last_day) and `user_days` (user_id, day, signup_day);
-- defines daily_active (day, dau, new_active), days with an active user only.
daily_active AS (
    SELECT ud.day, count(*) AS dau, count(*) FILTER (WHERE ud.signup_day) AS new_active
    FROM win w JOIN user_days ud ON ud.day BETWEEN w.first_day AND w.last_day
    GROUP BY ud.day
)
