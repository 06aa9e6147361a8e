-- When each alert rule was last evaluated (by any job), so the alert manager
-- can tell "the root-cause check has not run since this dependent alert
-- started" from "the root cause is fine". Idempotent.
CREATE TABLE IF NOT EXISTS opsbench.rule_evaluations (
    rule         text PRIMARY KEY,
    last_eval_at timestamptz NOT NULL,
    source       text NOT NULL
);
