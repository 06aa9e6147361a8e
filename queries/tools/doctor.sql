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
