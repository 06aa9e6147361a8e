-- activity.daily's columns, from the raw tables and from the rollups alike. Needs the CTE
-- `activity` (day, dau, wau, mau, new_users, new_active; NULL where nothing was counted).
SELECT a.day,
       COALESCE(a.dau, 0)                                      AS dau,
       CAST(COALESCE(a.wau, 0) AS bigint)                      AS wau,
       CAST(COALESCE(a.mau, 0) AS bigint)                      AS mau,
       CAST(COALESCE(a.dau, 0) AS float8) / NULLIF(a.mau, 0)   AS stickiness,
       COALESCE(a.new_users, 0)                                AS new_users,
       COALESCE(a.new_active, 0)                               AS new_active,
       COALESCE(a.dau, 0) - COALESCE(a.new_active, 0)          AS returning_active
FROM activity a
ORDER BY a.day
