-- The three roles opsbench connects as, with exactly the privileges it needs.
--
-- Run once, as a role that may create roles (on Supabase: the postgres user),
-- in the backend's database, with the passwords as psql variables:
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -v ro_password="$(openssl rand -hex 24)" \
--        -v maint_password="$(openssl rand -hex 24)" \
--        -v state_password="$(openssl rand -hex 24)" \
--        -f deploy/roles.sql
--
-- then put the same passwords into the DSNs (DATABASE_URL as opsbench_ro,
-- MAINTENANCE_DATABASE_URL as opsbench_maint, OPSBENCH_STATE_URL as
-- opsbench_state) and check with `opsbench doctor`.
--
-- The backend's tables are those of queries/schema.sql in schema public. If
-- the backend names them differently, add `-v compat=1` here (no grant on the
-- tables), then apply your edited deploy/compat_views.sql, which grants the
-- same privileges on its views.

-- analytics (DATABASE_URL): SELECT on the nine tables the queries read
-- (queries/tools/doctor.sql, analytics_privileges) and nothing else;
-- pg_monitor lets the postgres probe see other roles' sessions.
CREATE ROLE opsbench_ro LOGIN PASSWORD :'ro_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO opsbench_ro;
GRANT pg_monitor TO opsbench_ro;

-- maintenance (MAINTENANCE_DATABASE_URL): cleanup deletes old rows from three
-- tables (jobs/cleanup.py) and reads video_jobs to report stuck jobs.
CREATE ROLE opsbench_maint LOGIN PASSWORD :'maint_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO opsbench_maint;

\if :{?compat}
\else
GRANT USAGE ON SCHEMA public TO opsbench_ro, opsbench_maint;
GRANT SELECT ON public.admin_actions, public.error_log, public.models, public.products, public.purchases,
                public.quota_log, public.rate_limit_log, public.users, public.video_jobs TO opsbench_ro;
GRANT SELECT, DELETE ON public.rate_limit_log, public.idempotency_keys, public.error_log TO opsbench_maint;
GRANT SELECT ON public.video_jobs TO opsbench_maint;
\endif

-- state (OPSBENCH_STATE_URL): owns schema opsbench (job runs, alerts, outbox,
-- silences, probe samples, rollups), whose tables the daemon creates on
-- first start; no privilege on the backend's tables.
CREATE ROLE opsbench_state LOGIN PASSWORD :'state_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO opsbench_state;
CREATE SCHEMA IF NOT EXISTS opsbench AUTHORIZATION opsbench_state;
