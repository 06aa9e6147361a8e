-- What the connected role can see of the backend's tables: ops/data/visibility.py runs this once
-- per engine (and `opsbench doctor` once per connection). Not a query subject.
--
-- Row level security hides rows without an error: a role that is no superuser, lacks BYPASSRLS,
-- does not own the table (or the table FORCEs row security) and has no policy that applies to
-- it sees zero rows. A view reads its tables as the view's owner (unless security_invoker), so
-- for a view (deploy/compat_views.sql) the reader whose row security counts is that owner.


-- name: table_visibility
-- One row per (table the queries read, base table behind it): the table as resolved on this
-- role's search path, whether this role may SELECT it, the base table's owner and row security,
-- the role row security applies to (this role, or a view's owner) and whether it bypasses it,
-- the permissive SELECT policies that apply to that reader and whether one of them is USING (true)
-- with no restrictive policy narrowing it, and the planner's estimate of the rows there
-- (probe below: whether this role sees any row at all).
-- :param tables text[]     table names as the queries write them (resolved on the search path)
WITH wanted AS (
    SELECT w.name, to_regclass(w.name) AS rel
    FROM unnest(CAST(:tables AS text[])) AS w (name)
), resolved AS (
    SELECT w.name, w.rel, c.relkind,
           COALESCE(has_table_privilege(w.rel, 'SELECT'), false) AS can_select,
           -- who reads the base tables: this role for a table or a security_invoker view, else the view's owner
           CASE WHEN c.relkind = 'v' AND NOT COALESCE('security_invoker=true' = ANY (c.reloptions)
                                                      OR 'security_invoker=on' = ANY (c.reloptions), false)
                THEN c.relowner
                ELSE (SELECT oid FROM pg_roles WHERE rolname = current_user) END AS reader
    FROM wanted w
    LEFT JOIN pg_class c ON c.oid = w.rel
), based AS (
    -- a table is its own base; a view's bases are the tables its rewrite rule reads
    SELECT r.*, r.rel AS base
    FROM resolved r
    WHERE r.relkind IS DISTINCT FROM 'v'
    UNION ALL
    SELECT r.*, d.refobjid AS base
    FROM resolved r
    JOIN pg_rewrite rw ON rw.ev_class = r.rel
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.rel
    JOIN pg_class bc ON bc.oid = d.refobjid AND bc.relkind IN ('r', 'p')
    WHERE r.relkind = 'v'
    GROUP BY r.name, r.rel, r.relkind, r.can_select, r.reader, d.refobjid
)
SELECT b.name                                                   AS table_name,
       b.rel IS NOT NULL                                        AS table_exists,
       b.relkind = 'v'                                          AS is_view,
       rn.nspname                                               AS rel_schema,
       rc.relname                                               AS rel_name,
       b.can_select,
       CASE WHEN b.base IS NOT NULL THEN b.base::regclass::text END AS base_table,
       o.rolname                                                AS owner,
       COALESCE(bc.relrowsecurity, false)                       AS rls,
       COALESCE(bc.relforcerowsecurity, false)                  AS force_rls,
       rd.rolname                                               AS reader,
       COALESCE(rd.rolsuper OR rd.rolbypassrls, false)          AS reader_bypasses,
       COALESCE(pg_has_role(rd.oid, bc.relowner, 'USAGE'), false) AS reader_owns,
       COALESCE(has_table_privilege(rd.oid, b.base, 'SELECT'), false) AS reader_can_select,
       ARRAY(SELECT p.polname::text
             FROM pg_policy p
             WHERE p.polrelid = b.base AND p.polpermissive AND p.polcmd IN ('r', '*')
               AND (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr (oid)
                                                         WHERE pg_has_role(rd.oid, pr.oid, 'USAGE')))
             ORDER BY 1)                                        AS policies,
       EXISTS (SELECT 1
               FROM pg_policy p
               WHERE p.polrelid = b.base AND p.polpermissive AND p.polcmd IN ('r', '*')
                 AND pg_get_expr(p.polqual, p.polrelid) = 'true'
                 AND (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr (oid)
                                                           WHERE pg_has_role(rd.oid, pr.oid, 'USAGE'))))
       AND NOT EXISTS (SELECT 1
                       FROM pg_policy p
                       WHERE p.polrelid = b.base AND NOT p.polpermissive AND p.polcmd IN ('r', '*')
                         AND (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr (oid)
                                                                   WHERE pg_has_role(rd.oid, pr.oid, 'USAGE'))))
                                                                AS open_policy,
       GREATEST(COALESCE(bc.reltuples, -1), COALESCE(s.n_live_tup, -1))::bigint AS estimated_rows
FROM based b
LEFT JOIN pg_class rc ON rc.oid = b.rel
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_class bc ON bc.oid = b.base
LEFT JOIN pg_roles o ON o.oid = bc.relowner
LEFT JOIN pg_roles rd ON rd.oid = b.reader
LEFT JOIN pg_stat_all_tables s ON s.relid = b.base
ORDER BY b.name, base_table


-- name: probe
-- Whether this role sees any row of one relation: cheap (EXISTS stops at the first row) and run
-- as this role, through the view when it is one, so it sees what the queries will see.
-- ops/data/visibility.py fills in {name} (a literal) and {relation} (schema.table, quoted, as the
-- catalog query resolved it) with psycopg.sql, and joins one per table with UNION ALL: one statement.
SELECT {name} AS table_name, EXISTS (SELECT 1 FROM {relation}) AS sees_rows


-- name: session_role
-- The role the checks are about.
SELECT current_user AS usr
