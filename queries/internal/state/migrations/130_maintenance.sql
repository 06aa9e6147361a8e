-- Maintenance windows (ops/alerting/maintenance.py): recurring on days of the week in a zone, or one-off.
-- While one is in force the alerts it names (or, naming none, every alert below critical) are held like
-- a silence; when an occurrence ends, one summary lists what fired and cleared inside it.
CREATE TABLE IF NOT EXISTS opsbench.maintenance_windows (
    id               bigserial PRIMARY KEY,
    spec             text NOT NULL,              -- the founder's words, as given
    days             int[] NOT NULL DEFAULT '{}', -- ISO weekdays 0=Mon..6=Sun of a recurring window
    start_minute     int NOT NULL DEFAULT 0,     -- local minutes from midnight (recurring)
    end_minute       int NOT NULL DEFAULT 0,
    zone             text NOT NULL,
    starts_at        timestamptz,                -- a one-off window (NULL: recurring)
    ends_at          timestamptz,
    patterns         text[] NOT NULL DEFAULT '{}',
    reason           text NOT NULL,
    created_by       text,
    created_at       timestamptz NOT NULL,
    cancelled_at     timestamptz,
    summarised_until timestamptz NOT NULL        -- occurrences that ended up to here have had their summary
);
