-- Fencing between daemons: a leader that lost its lock must not run jobs
-- alongside the new one. Idempotent.

-- The heartbeat on the state server's own clock (daemons on two machines may
-- disagree about the time); a new leader reads liveness from it.
ALTER TABLE opsbench.daemon_instances ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;

-- The current leader term. A new leader claims it before it looks for runs
-- still going; a daemon starts a run only while the term is its own (the run
-- row is inserted under a share lock on this row), so a deposed leader that
-- has not noticed yet cannot start one after the new leader has looked.
CREATE TABLE IF NOT EXISTS opsbench.leader_term (
    id       smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    instance text NOT NULL,
    term     bigint NOT NULL,
    since    timestamptz NOT NULL
);
