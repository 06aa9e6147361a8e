-- The daemon's bookkeeping: one row per job run, one row per daemon process.
-- Idempotent: every statement can run again on a database that has it.

-- Every run of every job, including runs that never started (skipped).
-- status: running while in flight; ok / failed / timeout / skipped when done.
CREATE TABLE IF NOT EXISTS opsbench.job_runs (
    run_id       uuid PRIMARY KEY,
    job          text NOT NULL,
    trigger      text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'catch_up', 'manual')),
    status       text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'timeout', 'skipped')),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    duration_s   double precision,
    summary      text NOT NULL DEFAULT '',
    error        text,
    metrics      jsonb NOT NULL DEFAULT '{}'::jsonb,
    findings     integer NOT NULL DEFAULT 0,
    leader       text NOT NULL,           -- the daemon instance (or `manual`) that ran it
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX IF NOT EXISTS job_runs_job_started_idx ON opsbench.job_runs (job, started_at DESC);
CREATE INDEX IF NOT EXISTS job_runs_running_idx ON opsbench.job_runs (leader) WHERE status = 'running';

-- Each daemon process says it is alive here every few seconds, and whether it leads.
CREATE TABLE IF NOT EXISTS opsbench.daemon_instances (
    instance     text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    version      text NOT NULL,
    environment  text NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    is_leader    boolean NOT NULL DEFAULT false,
    leader_since timestamptz,
    stopped_at   timestamptz
);
CREATE INDEX IF NOT EXISTS daemon_instances_seen_idx ON opsbench.daemon_instances (last_seen DESC);
