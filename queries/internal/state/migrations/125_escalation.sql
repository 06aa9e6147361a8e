-- Escalation: when a critical alert that nobody acked was sent again as a new, ringing
-- message (ops/alerting/manager.py escalate). A JSON array of timestamps, cleared when a
-- new episode starts. Idempotent.
ALTER TABLE opsbench.alerts ADD COLUMN IF NOT EXISTS escalated jsonb NOT NULL DEFAULT '[]'::jsonb;
