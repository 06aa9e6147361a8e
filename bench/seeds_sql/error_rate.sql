-- name: error_rate
-- THE SEEDS' QUERY, verbatim (the founder's operations notes, "Error rate"); for side-by-side runs only.
SELECT
  DATE(created_at) as date,
  COUNT(*) FILTER (WHERE status = 'failed') as failed,
  COUNT(*) as total,
  ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'failed') / COUNT(*), 2) as error_rate_pct
FROM video_jobs
WHERE created_at > NOW() - INTERVAL '7 days'
GROUP BY DATE(created_at)
ORDER BY date DESC;
