-- activity.summary's row, from the raw tables and from the rollups alike. Needs the CTEs `win`
-- (first_day, last_day), `active_days` (user_id, day: covering the 29 days before last_day too)
-- and `signups` (one row: new_users over [first_day, last_day]).
figures AS (
    SELECT count(DISTINCT ud.user_id) FILTER (WHERE ud.day >= w.first_day)      AS active_users,
           count(*) FILTER (WHERE ud.day = w.last_day)                          AS dau,
           count(DISTINCT ud.user_id) FILTER (WHERE ud.day > w.last_day - 7)    AS wau,
           count(DISTINCT ud.user_id) FILTER (WHERE ud.day > w.last_day - 30)   AS mau
    FROM win w
    JOIN active_days ud ON ud.day BETWEEN LEAST(w.first_day, w.last_day - 29) AND w.last_day
)
SELECT w.first_day,
       w.last_day,
       f.active_users,
       s.new_users,
       f.dau,
       f.wau,
       f.mau,
       CAST(f.dau AS float8) / NULLIF(f.mau, 0) AS stickiness
FROM win w, figures f, signups s
