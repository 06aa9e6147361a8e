-- The session settings opsbench needs, carried by each transaction rather than by the
-- connection's startup `options` (which a pooler may refuse or drop, and which a pooled
-- server session shared by other clients does not keep): ops/data/session.py runs
-- `apply_local` first in every transaction; doctor reads `effective` the same way.

-- name: apply_local
-- This transaction's settings (is_local: they end with it). transaction_read_only makes the
-- transaction already begun read-only; default_transaction_read_only makes SHOW say so.
-- :param statement_timeout text   e.g. 60000 (ms)
-- :param lock_timeout text = null  e.g. 5000 (ms); null keeps the server's
-- :param read_only bool           make the transaction read-only
SELECT set_config('statement_timeout', :statement_timeout, true),
       set_config('idle_in_transaction_session_timeout', '600000', true),
       CASE WHEN CAST(:lock_timeout AS text) IS NOT NULL
            THEN set_config('lock_timeout', CAST(:lock_timeout AS text), true) END,
       CASE WHEN :read_only THEN set_config('transaction_read_only', 'on', true) END,
       CASE WHEN :read_only THEN set_config('default_transaction_read_only', 'on', true) END

-- name: effective
-- The settings a transaction of this connection runs with, as the app runs them (doctor).
SELECT current_setting('default_transaction_read_only') AS default_read_only,
       current_setting('transaction_read_only') AS read_only,
       current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout

-- name: role_settings
-- What ALTER ROLE ... SET gives this role's every session (in this database or all), for doctor's advice.
SELECT COALESCE(array_agg(cfg), '{}') AS settings
  FROM pg_db_role_setting s
  JOIN pg_roles r ON r.oid = s.setrole
  CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
 WHERE r.rolname = current_user
   AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))

-- name: replica_status
-- Whether this server is a standby (a read replica) and how far its replay is behind: 0 when it has
-- replayed all it received, else the age of the last transaction replayed (null on a primary).
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
            THEN 0.0
            ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0.0)
       END AS lag_s,
       pg_last_xact_replay_timestamp() AS replayed_at

-- name: apply_session
-- A whole session's statement_timeout (the leader's lock connection, in autocommit: no transaction to
-- carry it), for when a pooler refused the `options` that set it.
-- :param statement_timeout text   e.g. 5000 (ms)
SELECT set_config('statement_timeout', :statement_timeout, false)
