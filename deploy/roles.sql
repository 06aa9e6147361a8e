-- The three roles opsbench connects as, with exactly the privileges it needs.
--
-- Run once, in the backend's database, as a role that may create roles:
-- ADMIN_URL is the DSN of such an admin role (on Supabase, the postgres user's
-- direct connection string). Keep the passwords in shell variables first, so
-- they can go into the DSNs afterwards (hex: nothing to escape in a URL):
--
--   RO_PW=$(openssl rand -hex 24) MAINT_PW=$(openssl rand -hex 24) STATE_PW=$(openssl rand -hex 24)
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -v ro_password="$RO_PW" -v maint_password="$MAINT_PW" -v state_password="$STATE_PW" \
--        -f deploy/roles.sql
--
-- then, in the same shell, write them into the DSNs (HOST, PORT and DB as in
-- ADMIN_URL; the unquoted EOF lets the shell fill in the passwords) and check
-- with `opsbench doctor`:
--
--   cat >> .env <<EOF                 # or /etc/opsbench/env under systemd
--   DATABASE_URL=postgresql://opsbench_ro:$RO_PW@HOST:PORT/DB
--   MAINTENANCE_DATABASE_URL=postgresql://opsbench_maint:$MAINT_PW@HOST:PORT/DB
--   OPSBENCH_STATE_URL=postgresql://opsbench_state:$STATE_PW@HOST:PORT/DB
--   EOF
--
-- The backend's tables are those of queries/schema.sql in schema public. If
-- the backend names them differently, add `-v compat=1` here (no grant on the
-- tables), then apply your edited deploy/compat_views.sql, which grants the
-- same privileges on its views.
--
-- Row level security (Supabase turns it on for every table): a role without
-- BYPASSRLS and without a policy reads zero rows, with no error. A GRANT does not
-- help, and on PostgreSQL 15 only a superuser may give a role BYPASSRLS. So when
-- any of the tables has row security on, or this role does not own them all
-- (GRANT by a non-owner grants nothing: "WARNING: no privileges were granted"),
-- this script creates the views of deploy/compat_views.sql instead, owned by the
-- role running it: a view reads its tables with its owner's privileges and row
-- security, and Supabase's postgres has BYPASSRLS and may read the tables.
-- At the end it checks that every role can do what opsbench needs and fails,
-- naming the table and its owner, when something took no effect. All in one
-- transaction: a failed run leaves nothing behind and can simply be run again.

\set ON_ERROR_STOP 1
BEGIN;

-- analytics (DATABASE_URL): SELECT on the nine tables the queries read
-- (queries/internal/tools/doctor.sql, analytics_privileges) and nothing else;
-- pg_monitor lets the postgres probe see other roles' sessions.
CREATE ROLE opsbench_ro LOGIN PASSWORD :'ro_password';
GRANT pg_monitor TO opsbench_ro;

-- maintenance (MAINTENANCE_DATABASE_URL): cleanup deletes old rows from three
-- tables (jobs/cleanup.py) and reads video_jobs to report stuck jobs.
CREATE ROLE opsbench_maint LOGIN PASSWORD :'maint_password';

-- state (OPSBENCH_STATE_URL): owns schema opsbench (job runs, alerts, outbox,
-- silences, probe samples, rollups), whose tables the daemon creates on
-- first start; no privilege on the backend's tables.
CREATE ROLE opsbench_state LOGIN PASSWORD :'state_password';

-- CONNECT: PUBLIC usually has it already; granting it again as a role that does
-- not own the database only prints "no privileges were granted", so only when lacking.
SELECT NOT has_database_privilege('opsbench_ro', current_database(), 'CONNECT') AS need_connect \gset
\if :need_connect
GRANT CONNECT ON DATABASE :"DBNAME" TO opsbench_ro, opsbench_maint, opsbench_state;
\endif

-- CREATE SCHEMA ... AUTHORIZATION needs the creating role to be a member of
-- (PostgreSQL 16+: able to SET ROLE to) the owner. A CREATEROLE role that is no
-- superuser (Supabase's postgres) is not, even for a role it just created (16+
-- grants it ADMIN only), so it joins for this one statement and leaves again.
GRANT opsbench_state TO CURRENT_USER;
CREATE SCHEMA IF NOT EXISTS opsbench AUTHORIZATION opsbench_state;
REVOKE opsbench_state FROM CURRENT_USER;

-- Which path works here: plain grants on the tables need no row security on them
-- and a role that may grant (superuser or owner of every table); otherwise views.
SELECT count(*) FILTER (WHERE c.relrowsecurity) > 0
       OR NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
          AND count(*) FILTER (WHERE NOT pg_has_role(current_user, c.relowner, 'USAGE')) > 0 AS use_views
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND c.relname IN ('admin_actions', 'error_log', 'idempotency_keys', 'models', 'products', 'purchases',
                    'quota_log', 'rate_limit_log', 'users', 'video_jobs') \gset

\if :{?compat}
-- grants come with your edited compat_views.sql, applied after this script
\elif :use_views
\echo 'row level security is on, or the tables belong to another role: opsbench reads through views (deploy/compat_views.sql) owned by' :USER
\ir compat_views.sql
\else
GRANT USAGE ON SCHEMA public TO opsbench_ro, opsbench_maint;
GRANT SELECT ON public.admin_actions, public.error_log, public.models, public.products, public.purchases,
                public.quota_log, public.rate_limit_log, public.users, public.video_jobs TO opsbench_ro;
GRANT SELECT, DELETE ON public.rate_limit_log, public.idempotency_keys, public.error_log TO opsbench_maint;
GRANT SELECT ON public.video_jobs TO opsbench_maint;
\endif

-- Session settings as role defaults, not only as the `options` that opsbench
-- sends when it connects: a pooler (PgBouncer, Supabase's) refuses or drops
-- `options`, and psql or a BI tool logging in as opsbench_ro sends none.
-- opsbench also sets them in each of its transactions (ops/data/session.py);
-- these make the server hold them for every session of the role.
ALTER ROLE opsbench_ro SET default_transaction_read_only = on;
ALTER ROLE opsbench_ro SET statement_timeout = '60s';
ALTER ROLE opsbench_maint SET statement_timeout = '60s';
ALTER ROLE opsbench_maint SET lock_timeout = '5s';
ALTER ROLE opsbench_state SET statement_timeout = '60s';

-- Verify what took effect, not what was asked: every privilege opsbench needs, on
-- the relation each role will read (the view when there is one), and that row
-- security hides nothing from whoever reads the table in the end (the role, or
-- the view's owner). Fails, naming the table and its owner, on the first problem.
\if :{?compat}
\else
DO $verify$
DECLARE
    problems text[] := '{}';
    r record;
BEGIN
    FOR r IN
        WITH need (role, tbl, privs) AS (
            VALUES ('opsbench_ro', 'admin_actions', 'SELECT'), ('opsbench_ro', 'error_log', 'SELECT'),
                   ('opsbench_ro', 'models', 'SELECT'), ('opsbench_ro', 'products', 'SELECT'),
                   ('opsbench_ro', 'purchases', 'SELECT'), ('opsbench_ro', 'quota_log', 'SELECT'),
                   ('opsbench_ro', 'rate_limit_log', 'SELECT'), ('opsbench_ro', 'users', 'SELECT'),
                   ('opsbench_ro', 'video_jobs', 'SELECT'),
                   ('opsbench_maint', 'rate_limit_log', 'SELECT, DELETE'),
                   ('opsbench_maint', 'idempotency_keys', 'SELECT, DELETE'),
                   ('opsbench_maint', 'error_log', 'SELECT, DELETE'), ('opsbench_maint', 'video_jobs', 'SELECT')
        ), rel AS (
            SELECT need.*, COALESCE(to_regclass('opsbench_compat.' || tbl), to_regclass('public.' || tbl)) AS r,
                   to_regclass('public.' || tbl) AS base
            FROM need
        )
        SELECT rel.role, rel.tbl, rel.privs, rel.r, rel.base, c.relkind,
               bc.relowner::regrole::text AS owner, bc.relrowsecurity AS rls, bc.relforcerowsecurity AS force_rls,
               c.relowner::regrole::text AS view_owner,
               (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE oid = c.relowner) AS view_owner_bypasses,
               (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = rel.role) AS role_bypasses
        FROM rel
        LEFT JOIN pg_class c ON c.oid = rel.r
        LEFT JOIN pg_class bc ON bc.oid = rel.base
    LOOP
        IF r.r IS NULL OR r.base IS NULL THEN
            problems := problems || format('table public.%s does not exist here (wrong database? see queries/schema.sql)', r.tbl);
        ELSIF NOT has_table_privilege(r.role, r.r, r.privs) THEN
            problems := problems || format('%s lacks %s on %s (the table is owned by %s: run this script as %s, '
                                           'or have %s GRANT %s ON public.%s TO %s WITH GRANT OPTION first)',
                                           r.role, r.privs, r.r::regclass, r.owner, r.owner, r.owner, r.privs,
                                           r.tbl, current_user);
        ELSIF r.relkind = 'v' AND NOT has_table_privilege(r.view_owner, r.base, r.privs) THEN
            problems := problems || format('the view %s reads public.%s as its owner %s, which lacks %s on it '
                                           '(the table is owned by %s: have %s GRANT %s ON public.%s TO %s)',
                                           r.r::regclass, r.tbl, r.view_owner, r.privs, r.owner, r.owner, r.privs,
                                           r.tbl, r.view_owner);
        ELSIF r.relkind = 'v' AND r.rls AND NOT r.view_owner_bypasses
              AND NOT (pg_has_role(r.view_owner, r.owner, 'USAGE') AND NOT r.force_rls) THEN
            problems := problems || format('row level security on public.%s (owned by %s) hides its rows from %s, '
                                           'which owns the view %s and has no BYPASSRLS: run this script as a role '
                                           'with BYPASSRLS (Supabase: postgres) or as %s',
                                           r.tbl, r.owner, r.view_owner, r.r::regclass, r.owner);
        ELSIF r.relkind <> 'v' AND r.rls AND NOT r.role_bypasses THEN
            problems := problems || format('row level security on public.%s (owned by %s) hides its rows from %s',
                                           r.tbl, r.owner, r.role);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'opsbench' AND nspowner = 'opsbench_state'::regrole) THEN
        problems := problems || 'schema opsbench exists but is not owned by opsbench_state'::text;
    END IF;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'deploy/roles.sql: %', problems[1] ||
            CASE WHEN cardinality(problems) > 1 THEN format(' (and %s more, below)', cardinality(problems) - 1) ELSE '' END
            USING DETAIL = array_to_string(problems, E'\n');
    END IF;
END
$verify$;
\endif

COMMIT;
