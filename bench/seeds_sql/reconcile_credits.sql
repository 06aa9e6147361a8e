-- name: reconcile_credits
-- THE SEEDS' QUERY, verbatim (the founder's operations notes, "Reconcile credits"); for side-by-side runs only.
SELECT
  u.id,
  u.credits_remaining,
  (SELECT SUM(change) FROM quota_log WHERE user_id = u.id) as calculated
FROM users u
WHERE u.credits_remaining != (SELECT SUM(change) FROM quota_log WHERE user_id = u.id);
