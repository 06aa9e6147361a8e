-- Since when the state store describes its backend. Rows derived from a backend
-- (job runs, probe samples, cleanup and reconciliation history, alert events)
-- carry the time they were made; a store describes one backend at a time, so
-- every row older than `since` was derived from a backend before the current
-- one, and readers leave it out (opsbench.backend_since() below). A switch
-- (ops/alerting/rebind.py) sets `since` to its moment; a store that has only
-- ever described one backend keeps '-infinity'.
-- Idempotent: every statement can run again on a database that has it.
ALTER TABLE opsbench.backend_identity
    ADD COLUMN IF NOT EXISTS since timestamptz NOT NULL DEFAULT '-infinity';

CREATE OR REPLACE FUNCTION opsbench.backend_since() RETURNS timestamptz
    LANGUAGE sql STABLE
AS $$
    SELECT COALESCE((SELECT since FROM opsbench.backend_identity WHERE singleton), '-infinity'::timestamptz)
$$;
