-- Statements the benchmark harness (bench/) runs. Not a query subject: this
-- folder is not listed by `opsbench query --list`.

-- name: seed_backends
-- Server backends running the demo generator (to sample their memory).
-- :param app text   application_name of the seeding connection
SELECT pid FROM pg_stat_activity WHERE application_name = :app

-- name: server_settings
-- The server settings that shape the timings.
SELECT current_setting('server_version') AS server_version, current_setting('shared_buffers') AS shared_buffers,
       current_setting('work_mem') AS work_mem, current_setting('TimeZone') AS timezone,
       current_setting('max_parallel_workers_per_gather') AS max_parallel_workers_per_gather,
       current_setting('jit') AS jit

-- name: analyze_all
-- Fresh planner statistics after seeding or adding indexes.
ANALYZE

-- name: vacuum_analyze
-- Set visibility-map bits (index-only scans) and statistics after a bulk load.
VACUUM (ANALYZE)

-- name: floor_users
-- The floor: one sequential pass over users.
SELECT count(*) FROM users

-- name: floor_purchases
-- The floor: one sequential pass over purchases.
SELECT count(*) FROM purchases

-- name: floor_quota_log
-- The floor: one sequential pass over quota_log.
SELECT count(*) FROM quota_log

-- name: floor_video_jobs
-- The floor: one sequential pass over video_jobs.
SELECT count(*) FROM video_jobs

-- name: floor_error_log
-- The floor: one sequential pass over error_log.
SELECT count(*) FROM error_log

-- name: floor_rate_limit_log
-- The floor: one sequential pass over rate_limit_log.
SELECT count(*) FROM rate_limit_log

-- name: floor_idempotency_keys
-- The floor: one sequential pass over idempotency_keys.
SELECT count(*) FROM idempotency_keys

-- name: floor_admin_actions
-- The floor: one sequential pass over admin_actions.
SELECT count(*) FROM admin_actions

-- name: floor_models
-- The floor: one sequential pass over models.
SELECT count(*) FROM models

-- name: floor_products
-- The floor: one sequential pass over products.
SELECT count(*) FROM products
