-- Cleanup of the backend's expiring rows, used by jobs/cleanup.py through the
-- MAINTENANCE connection only (the analytics role is read-only and cannot run these).
--
-- Per table: how many rows are eligible, how many the table holds (for the
-- "implausible share" guard), and one batch delete by primary key. A batch is
-- its own short transaction; `set_timeouts` runs first in each so a row lock
-- held elsewhere ends the batch after lock_timeout instead of queueing behind it.
-- The delete repeats the age predicate outside the id list: if a row changed
-- between choosing the batch and deleting it, PostgreSQL rechecks the
-- predicate on the new version, so a row inside retention is never removed.


-- name: set_timeouts
-- Transaction-local lock and statement timeouts for the batch that follows.
-- :param lock_timeout text        e.g. 2000ms
-- :param statement_timeout text   e.g. 30000ms
SELECT set_config('lock_timeout', :lock_timeout, true)           AS lock_timeout,
       set_config('statement_timeout', :statement_timeout, true) AS statement_timeout


-- name: rate_limit_log_eligible
-- Rate-limit rows created before the cutoff (kept 7 days).
-- :param cutoff timestamptz   rows with created_at before this are eligible
SELECT count(*) AS eligible, min(created_at) AS oldest, max(created_at) AS newest
FROM rate_limit_log
WHERE created_at < CAST(:cutoff AS timestamptz)


-- name: rate_limit_log_rows
-- Rows in rate_limit_log now (the denominator of the guard's share).
SELECT count(*) AS table_rows FROM rate_limit_log


-- name: rate_limit_log_delete_batch
-- Delete one batch of eligible rate_limit_log rows, lowest primary key first.
-- :param cutoff timestamptz   rows with created_at before this are eligible
-- :param batch_size int       rows at most in this batch
DELETE FROM rate_limit_log
WHERE id IN (SELECT id FROM rate_limit_log
             WHERE created_at < CAST(:cutoff AS timestamptz)
             ORDER BY id
             LIMIT :batch_size)
  AND created_at < CAST(:cutoff AS timestamptz)


-- name: error_log_eligible
-- Error-log rows created before the cutoff (retention, default 90 days).
-- :param cutoff timestamptz   rows with created_at before this are eligible
SELECT count(*) AS eligible, min(created_at) AS oldest, max(created_at) AS newest
FROM error_log
WHERE created_at < CAST(:cutoff AS timestamptz)


-- name: error_log_rows
-- Rows in error_log now (the denominator of the guard's share).
SELECT count(*) AS table_rows FROM error_log


-- name: error_log_delete_batch
-- Delete one batch of eligible error_log rows, lowest primary key first.
-- :param cutoff timestamptz   rows with created_at before this are eligible
-- :param batch_size int       rows at most in this batch
DELETE FROM error_log
WHERE id IN (SELECT id FROM error_log
             WHERE created_at < CAST(:cutoff AS timestamptz)
             ORDER BY id
             LIMIT :batch_size)
  AND created_at < CAST(:cutoff AS timestamptz)


-- name: idempotency_keys_eligible
-- Idempotency keys that expired before the cutoff.
-- :param cutoff timestamptz   rows with expires_at before this are eligible
SELECT count(*) AS eligible, min(expires_at) AS oldest, max(expires_at) AS newest
FROM idempotency_keys
WHERE expires_at < CAST(:cutoff AS timestamptz)


-- name: idempotency_keys_rows
-- Rows in idempotency_keys now (the denominator of the guard's share).
SELECT count(*) AS table_rows FROM idempotency_keys


-- name: idempotency_keys_delete_batch
-- Delete one batch of eligible idempotency_keys rows, lowest primary key first.
-- :param cutoff timestamptz   rows with expires_at before this are eligible
-- :param batch_size int       rows at most in this batch
DELETE FROM idempotency_keys
WHERE key IN (SELECT key FROM idempotency_keys
             WHERE expires_at < CAST(:cutoff AS timestamptz)
             ORDER BY key
             LIMIT :batch_size)
  AND expires_at < CAST(:cutoff AS timestamptz)

