-- Privilege look-ups for ops/workbench/doctor.py (`opsbench doctor`). Not a query subject.
--
-- Tables are resolved on the connecting role's search path (to_regclass), so a
-- compatibility schema of views (README: "A backend with other names") is
-- checked the way the queries will see it. A table that does not resolve
-- reports table_exists = false and no privilege.


-- name: analytics_privileges
-- Every backend table the query modules read, and whether this role may SELECT it.
SELECT t.table_name,
       to_regclass(t.table_name) IS NOT NULL                                    AS table_exists,
       COALESCE(has_table_privilege(to_regclass(t.table_name), 'SELECT'), false) AS can_select
FROM (VALUES ('admin_actions'), ('error_log'), ('models'), ('products'), ('purchases'),
             ('quota_log'), ('rate_limit_log'), ('users'), ('video_jobs')) AS t (table_name)
ORDER BY t.table_name


-- name: session_role
-- The role this session runs as: the maintenance and state checks compare theirs with the
-- analytics session's, so the read-only role is never advised a write privilege (a DSN may name
-- no user: PGUSER or peer authentication chooses it).
SELECT current_user AS usr


-- name: maintenance_privileges
-- The tables cleanup deletes from (SELECT and DELETE) and the one it only reads (video_jobs: stuck jobs).
SELECT t.table_name,
       t.needs_delete,
       to_regclass(t.table_name) IS NOT NULL                                    AS table_exists,
       COALESCE(has_table_privilege(to_regclass(t.table_name), 'SELECT'), false) AS can_select,
       COALESCE(has_table_privilege(to_regclass(t.table_name), 'DELETE'), false) AS can_delete
FROM (VALUES ('rate_limit_log', true), ('idempotency_keys', true), ('error_log', true),
             ('video_jobs', false)) AS t (table_name, needs_delete)
ORDER BY t.needs_delete DESC, t.table_name


-- name: analytics_columns
-- Every column of those tables as queries/schema.sql defines it, and the type the
-- column has here (NULL: missing; the table itself missing: no rows). Types are
-- compared without modifiers, so numeric(12, 2) in a view is numeric.
SELECT e.table_name, e.column_name, e.expected_type,
       format_type(a.atttypid, NULL) AS actual_type
FROM (VALUES ('admin_actions', 'action_type', 'text'),
             ('admin_actions', 'admin_user_id', 'uuid'),
             ('admin_actions', 'amount', 'integer'),
             ('admin_actions', 'created_at', 'timestamp with time zone'),
             ('admin_actions', 'details', 'jsonb'),
             ('admin_actions', 'id', 'bigint'),
             ('admin_actions', 'reason', 'text'),
             ('admin_actions', 'target_model_id', 'uuid'),
             ('admin_actions', 'target_user_id', 'uuid'),
             ('error_log', 'created_at', 'timestamp with time zone'),
             ('error_log', 'endpoint', 'text'),
             ('error_log', 'error_code', 'text'),
             ('error_log', 'error_details', 'jsonb'),
             ('error_log', 'id', 'bigint'),
             ('error_log', 'request_data', 'jsonb'),
             ('error_log', 'user_id', 'uuid'),
             ('models', 'cost_per_generation', 'integer'),
             ('models', 'created_at', 'timestamp with time zone'),
             ('models', 'id', 'uuid'),
             ('models', 'is_active', 'boolean'),
             ('models', 'name', 'text'),
             ('models', 'provider', 'text'),
             ('products', 'credits', 'integer'),
             ('products', 'currency', 'text'),
             ('products', 'id', 'text'),
             ('products', 'is_active', 'boolean'),
             ('products', 'name', 'text'),
             ('products', 'price', 'numeric'),
             ('purchases', 'created_at', 'timestamp with time zone'),
             ('purchases', 'credits', 'integer'),
             ('purchases', 'currency', 'text'),
             ('purchases', 'environment', 'text'),
             ('purchases', 'id', 'bigint'),
             ('purchases', 'price', 'numeric'),
             ('purchases', 'product_id', 'text'),
             ('purchases', 'purchased_at', 'timestamp with time zone'),
             ('purchases', 'refunded_at', 'timestamp with time zone'),
             ('purchases', 'transaction_id', 'text'),
             ('purchases', 'user_id', 'uuid'),
             ('quota_log', 'change', 'integer'),
             ('quota_log', 'created_at', 'timestamp with time zone'),
             ('quota_log', 'id', 'bigint'),
             ('quota_log', 'job_id', 'uuid'),
             ('quota_log', 'reason', 'text'),
             ('quota_log', 'transaction_id', 'text'),
             ('quota_log', 'user_id', 'uuid'),
             ('rate_limit_log', 'action', 'text'),
             ('rate_limit_log', 'created_at', 'timestamp with time zone'),
             ('rate_limit_log', 'id', 'bigint'),
             ('rate_limit_log', 'ip_address', 'inet'),
             ('rate_limit_log', 'user_id', 'uuid'),
             ('users', 'created_at', 'timestamp with time zone'),
             ('users', 'credits_remaining', 'integer'),
             ('users', 'email', 'text'),
             ('users', 'id', 'uuid'),
             ('users', 'is_admin', 'boolean'),
             ('video_jobs', 'completed_at', 'timestamp with time zone'),
             ('video_jobs', 'created_at', 'timestamp with time zone'),
             ('video_jobs', 'credits_used', 'integer'),
             ('video_jobs', 'error_code', 'text'),
             ('video_jobs', 'error_message', 'text'),
             ('video_jobs', 'id', 'uuid'),
             ('video_jobs', 'idempotency_key', 'text'),
             ('video_jobs', 'model_id', 'uuid'),
             ('video_jobs', 'prompt', 'text'),
             ('video_jobs', 'provider', 'text'),
             ('video_jobs', 'started_at', 'timestamp with time zone'),
             ('video_jobs', 'status', 'text'),
             ('video_jobs', 'user_id', 'uuid')) AS e (table_name, column_name, expected_type)
LEFT JOIN pg_attribute a
       ON a.attrelid = to_regclass(e.table_name) AND a.attname = e.column_name
      AND a.attnum > 0 AND NOT a.attisdropped
WHERE to_regclass(e.table_name) IS NOT NULL
ORDER BY e.table_name, e.column_name


-- name: analytics_write_access
-- Whether the analytics role is a superuser, and the tables and views outside the
-- system schemas and the state schema (opsbench) it may INSERT, UPDATE, DELETE or
-- TRUNCATE. The session is read-only, but a role that can write is one SET away from it.
SELECT r.rolsuper AS is_superuser,
       ARRAY(SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'opsbench')
               AND n.nspname NOT LIKE 'pg\_%'
               AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
             ORDER BY 1) AS writable
FROM pg_roles r
WHERE r.rolname = current_user
