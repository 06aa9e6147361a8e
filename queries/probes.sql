-- PostgreSQL health probe of the backend database, over the server's own
-- statistics views (pg_stat_activity, pg_settings, recovery functions).
--
-- These measure the server as it is at this instant, so they use the server's
-- clock_timestamp() rather than an injected "now": a session's age is the
-- difference of two server timestamps and only the server can say it.
-- Sessions are those of the database connected to (current_database()): on a
-- shared cluster the neighbours' long queries are not this backend's problem.
-- The probe's own session (pg_backend_pid()) is never counted as a problem.
--
-- The probing role needs pg_monitor (or just pg_read_all_stats) to read other
-- roles' sessions: without it their state and query are NULL and the
-- application's long queries and idle transactions are silently missed.
-- `stats_visibility` tells: GRANT pg_monitor TO <probing role>;


-- name: ping
-- Round trip of a trivial statement: the database answers.
SELECT 1 AS ok


-- name: connections
-- Client connections in use across the server against max_connections (minus reserved slots).
-- Without pg_read_all_stats another role's session shows backend_type NULL (with
-- its user and database still named); those count too, or a plain role would
-- see a server full of the application's connections as nearly empty.
SELECT
    (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend'
        OR (backend_type IS NULL AND usename IS NOT NULL AND datname IS NOT NULL))              AS in_use,
    CAST(current_setting('max_connections') AS int)                                           AS max_connections,
    CAST(current_setting('superuser_reserved_connections') AS int)                            AS reserved,
    CAST(current_setting('max_connections') AS int)
        - CAST(current_setting('superuser_reserved_connections') AS int)                      AS usable


-- name: long_queries
-- Statements running longer than a threshold in this database, longest first.
-- :param min_seconds float = 60   report statements running at least this long
-- :param limit int = 20           rows to return
SELECT pid,
       usename                                                           AS username,
       application_name,
       EXTRACT(epoch FROM clock_timestamp() - query_start)               AS running_s,
       wait_event_type,
       left(query, 200)                                                  AS query
FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND state = 'active'
  AND pid <> pg_backend_pid()
  AND query_start < clock_timestamp() - make_interval(secs => CAST(:min_seconds AS float8))
ORDER BY query_start
LIMIT :limit


-- name: idle_in_transaction
-- Sessions idle inside an open transaction longer than a threshold (they hold locks and block vacuum).
-- :param min_seconds float = 60   report sessions idle in transaction at least this long
-- :param limit int = 20           rows to return
SELECT pid,
       usename                                                           AS username,
       application_name,
       state,
       EXTRACT(epoch FROM clock_timestamp() - state_change)              AS idle_s,
       EXTRACT(epoch FROM clock_timestamp() - xact_start)                AS transaction_s,
       left(query, 200)                                                  AS last_query
FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND pid <> pg_backend_pid()
  AND state_change < clock_timestamp() - make_interval(secs => CAST(:min_seconds AS float8))
ORDER BY state_change
LIMIT :limit


-- name: replication
-- Whether this server is a replica and, if so, how far its replay lags (seconds; NULL on a primary).
-- A replica with no writes on the primary looks "behind" by the time since the last write,
-- so lag is reported as 0 when everything received has been replayed.
SELECT pg_is_in_recovery() AS is_replica,
       CASE
           WHEN NOT pg_is_in_recovery() THEN NULL
           WHEN pg_last_wal_receive_lsn() IS NOT NULL
                AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
           ELSE EXTRACT(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END AS lag_s


-- name: stats_visibility
-- Whether this role can read other roles' sessions: without pg_read_all_stats (pg_monitor) their state and query are NULL.
-- pg_stat_activity shows another role's session to a role without
-- pg_read_all_stats (which pg_monitor grants) with only pid, user and database:
-- state, query, timings and even backend_type are NULL, so long_queries and
-- idle_in_transaction cannot see it. hidden_sessions counts such sessions in
-- this database right now (background processes have no user or database).
SELECT current_user                                               AS role,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')   AS reads_all_stats,
       (SELECT count(*)
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND usename IS NOT NULL
          AND backend_type IS NULL
          AND pid <> pg_backend_pid())                            AS hidden_sessions
