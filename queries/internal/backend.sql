-- The backend's identity, read on the analytics connection (ops/data/backend.py).

-- name: identity
-- The cluster's system identifier (unique per initdb) and the database name.
-- pg_control_system() may be refused to a role without pg_monitor: the
-- server's address and port then stand in for the cluster.
SELECT CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
            THEN (SELECT CAST(system_identifier AS text) FROM pg_control_system())
            ELSE 'addr:' || COALESCE(host(inet_server_addr()), 'local') || ':'
                 || COALESCE(CAST(inet_server_port() AS text), '')
       END AS system_identifier,
       current_database() AS database
