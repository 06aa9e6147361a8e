-- The window of a daily query, from its parameters :start, :end (local days, inclusive) and :tz.
-- Defines the CTEs win (first_day, last_day, tz, lo, hi: [lo, hi) is the window as a UTC range,
-- [start 00:00 local, end + 1 00:00 local), so the indexes on the timestamps are used and the
-- indexed columns are never wrapped in a function) and days (every local day of the window).
-- `win` is NOT MATERIALIZED: inlined, its bounds are expressions of the parameters the planner
-- can evaluate, so it estimates the window's rows (a materialized CTE hides them and the plan
-- reads a table whole even for one day; measured at `large`, see docs/performance.md).
win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                     AS first_day,
           CAST(:end AS date)                                                       AS last_day,
           CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
)
