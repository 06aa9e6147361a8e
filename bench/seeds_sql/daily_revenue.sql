-- name: daily_revenue
-- THE SEEDS' QUERY, verbatim (the founder's operations notes, "Daily revenue"); for side-by-side runs only.
SELECT
  DATE(created_at) as date,
  COUNT(*) as purchases,
  SUM(change) as total_credits_sold
FROM quota_log
WHERE reason = 'iap_purchase'
  AND created_at > NOW() - INTERVAL '30 days'
GROUP BY DATE(created_at)
ORDER BY date DESC;
