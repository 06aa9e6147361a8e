-- The backtest (`opsbench backtest`): what it needs to know about the backend before it replays.


-- name: missing_tables
-- Backend tables the replayed metric probes and checks read that this database lacks (none: ready).
SELECT t AS missing
FROM unnest(ARRAY['users', 'purchases', 'quota_log', 'video_jobs', 'rate_limit_log']) AS t
WHERE to_regclass(t) IS NULL
ORDER BY t


-- name: scratch_databases
-- Scratch databases of earlier backtests on this server (normally none: each drops its own).
SELECT datname FROM pg_database WHERE datname LIKE 'opsbench\_backtest\_%' ORDER BY datname
