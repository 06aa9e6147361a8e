-- WAU and MAU per local day, from the raw tables (activity.daily) and from the stored user-days
-- (derive_activity) alike. Needs the CTEs `win` (first_day, last_day) and `user_days` (user_id,
-- day: covering the 29 days before first_day too); defines all_days, spans, deltas and
-- rolling (day, wau, mau) for first_day - 29 .. last_day.
-- Rolling distinct counts are computed once from per-user-per-day activity: each active day of a
-- user "covers" the following 7 (or 30) days until that user's next active day takes over. The
-- covered spans of one user never overlap, so adding +1 at a span's start and -1 after its end and
-- running a cumulative sum over the days counts every user at most once per day, in one pass
-- instead of one distinct count per day.
all_days AS (
    SELECT w.first_day - 29 + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day + 29) AS i
),
spans AS (
    SELECT user_id, day, lead(day) OVER (PARTITION BY user_id ORDER BY day) AS next_day
    FROM user_days
),
deltas AS (
    SELECT day, sum(dw) AS dw, sum(dm) AS dm
    FROM (
        SELECT day, 1 AS dw, 1 AS dm FROM spans
        UNION ALL
        SELECT LEAST(day + 7, next_day), -1, 0 FROM spans    -- LEAST ignores a NULL next_day
        UNION ALL
        SELECT LEAST(day + 30, next_day), 0, -1 FROM spans
    ) e
    GROUP BY day
),
rolling AS (
    SELECT a.day,
           sum(COALESCE(d.dw, 0)) OVER (ORDER BY a.day) AS wau,
           sum(COALESCE(d.dm, 0)) OVER (ORDER BY a.day) AS mau
    FROM all_days a LEFT JOIN deltas d ON d.day = a.day
)
