-- Which backend (analytics database) the state store's derived state describes.
-- One row at most; ops/data/backend.py compares it with the live backend, and
-- a different one makes opsbench forget the old backend's rollups and alerts.
-- Idempotent: every statement can run again on a database that has it.
CREATE TABLE IF NOT EXISTS opsbench.backend_identity (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    system_identifier text NOT NULL,
    database          text NOT NULL,
    recorded_at       timestamptz NOT NULL
);
