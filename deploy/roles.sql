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
-- CREATE SCHEMA ... AUTHORIZATION needs the creating role to be a member of
-- (PostgreSQL 16+: able to SET ROLE to) the owner. A CREATEROLE role that is no
-- superuser (Supabase's postgres) is not, even for a role it just created (16+
-- grants it ADMIN only), so it joins for this one statement and leaves again.
GRANT opsbench_state TO CURRENT_USER;
CREATE SCHEMA IF NOT EXISTS opsbench AUTHORIZATION opsbench_state;
REVOKE opsbench_state FROM CURRENT_USER;

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
