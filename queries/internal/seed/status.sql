-- Demo data generator: is the database already filled, and emptying it for --force.

-- name: has_schema
-- Whether the backend's users table exists.
SELECT to_regclass('users') IS NOT NULL AS present

-- name: has_data
-- Whether any backend table holds a row.
SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM models) OR EXISTS (SELECT 1 FROM products)
    OR EXISTS (SELECT 1 FROM purchases) OR EXISTS (SELECT 1 FROM quota_log) OR EXISTS (SELECT 1 FROM video_jobs)
    OR EXISTS (SELECT 1 FROM error_log) OR EXISTS (SELECT 1 FROM rate_limit_log)
    OR EXISTS (SELECT 1 FROM idempotency_keys) OR EXISTS (SELECT 1 FROM admin_actions) AS present

-- name: truncate
-- Remove all demo rows (only with --force) and restart the id sequences.
TRUNCATE users, models, products, purchases, quota_log, video_jobs, error_log, rate_limit_log, idempotency_keys,
         admin_actions RESTART IDENTITY CASCADE
