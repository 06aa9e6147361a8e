-- Probe samples, reconciliation counts and cleanup volumes: the history the
-- operations notebook draws (uptime, latency, trends, what cleanup removed).
-- Idempotent: every statement can run again on a database that has it.

-- One row per probe per run: HTTP endpoints and the backend PostgreSQL probe.
CREATE TABLE IF NOT EXISTS opsbench.probe_samples (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    job_id        text NOT NULL,
    run_id        text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('http', 'postgres')),
    probe         text NOT NULL,            -- the probe's configured name
    ok            boolean NOT NULL,         -- reachable and every expectation met
    status_code   integer,                  -- HTTP status; NULL without a response
    latency_ms    double precision,         -- NULL when nothing answered
    tls_days_left double precision,         -- HTTPS only, when the certificate was read
    error         text                      -- why it was not ok (redacted, short)
);
CREATE INDEX IF NOT EXISTS probe_samples_probe_at_idx ON opsbench.probe_samples (probe, at DESC);
CREATE INDEX IF NOT EXISTS probe_samples_at_idx ON opsbench.probe_samples (at DESC);

-- One row per reconciliation check per run: counts over time show drift trends.
CREATE TABLE IF NOT EXISTS opsbench.reconciliation_counts (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    job_id     text NOT NULL,
    run_id     text NOT NULL,
    check_name text NOT NULL,
    rows_found bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS reconciliation_counts_check_at_idx
    ON opsbench.reconciliation_counts (check_name, at DESC);

-- One row per table per cleanup run, dry runs included (flagged).
CREATE TABLE IF NOT EXISTS opsbench.cleanup_runs (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    job_id      text NOT NULL,
    run_id      text NOT NULL,
    table_name  text NOT NULL,
    cutoff      timestamptz NOT NULL,     -- rows older than this were eligible
    candidates  bigint NOT NULL,          -- eligible rows when the run started
    table_rows  bigint NOT NULL,          -- rows in the table when the run started
    deleted     bigint NOT NULL,          -- rows actually removed (0 in a dry run)
    batches     integer NOT NULL,
    dry_run     boolean NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('done', 'capped', 'dry_run', 'refused', 'failed')),
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cleanup_runs_at_idx ON opsbench.cleanup_runs (at DESC);
