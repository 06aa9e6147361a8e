-- name: daily_active_users
-- THE SEEDS' QUERY, verbatim (the founder's operations notes, "Daily active users"); for side-by-side runs only.
SELECT
  DATE(created_at) as date,
  COUNT(DISTINCT user_id) as active_users
FROM video_jobs
WHERE created_at > NOW() - INTERVAL '30 days'
GROUP BY DATE(created_at)
ORDER BY date DESC;
