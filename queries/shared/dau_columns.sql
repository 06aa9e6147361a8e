-- The DAU columns of activity.daily (rollups.dau_days, dau_series). Needs the CTE `activity`
-- (day, dau, new_users, new_active; NULL where nothing was counted).
SELECT a.day,
       COALESCE(a.dau, 0)                               AS dau,
       COALESCE(a.new_users, 0)                         AS new_users,
       COALESCE(a.new_active, 0)                        AS new_active,
       COALESCE(a.dau, 0) - COALESCE(a.new_active, 0)   AS returning_active
FROM activity a
ORDER BY a.day
