-- Alert manager, silences, the durable outbox and per-chat Telegram state.
-- Idempotent: every statement can run again on a database that has it.

-- One row per alert key (rule plus labels). The row carries the lifecycle
-- state and the counters that decide transitions, so the daemon can restart
-- at any point and carry on where it was.
CREATE TABLE IF NOT EXISTS opsbench.alerts (
    key              text PRIMARY KEY,
    rule             text NOT NULL,
    labels           jsonb NOT NULL DEFAULT '{}'::jsonb,
    source           text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    state            text NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive')),
    summary          text NOT NULL DEFAULT '',
    details          text NOT NULL DEFAULT '',
    evidence         jsonb NOT NULL DEFAULT '[]'::jsonb,
    evidence_count   integer,
    command          text,
    requires         text[] NOT NULL DEFAULT '{}',
    bad_streak       integer NOT NULL DEFAULT 0,
    good_streak      integer NOT NULL DEFAULT 0,
    started_at       timestamptz,          -- first bad evaluation of the current episode
    fired_at         timestamptz,
    resolved_at      timestamptz,
    last_notified_at timestamptz,          -- NULL while firing = nobody has been told yet
    held_reason      text,                 -- 'silenced' / 'suppressed' while held back
    last_eval_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_rule_idx ON opsbench.alerts (rule);
CREATE INDEX IF NOT EXISTS alerts_firing_idx ON opsbench.alerts (state) WHERE state = 'firing';

-- History: every transition and every notification decision.
CREATE TABLE IF NOT EXISTS opsbench.alert_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    key        text NOT NULL,
    rule       text NOT NULL,
    severity   text NOT NULL,
    kind       text NOT NULL,   -- pending firing repeat resolved cleared silenced suppressed
    summary    text NOT NULL DEFAULT '',
    outbox_id  bigint,
    note       text
);
CREATE INDEX IF NOT EXISTS alert_events_at_idx ON opsbench.alert_events (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS alert_events_key_idx ON opsbench.alert_events (key, at DESC);

-- Silences: an fnmatch-style pattern over alert keys (and rule names).
CREATE TABLE IF NOT EXISTS opsbench.silences (
    id           bigserial PRIMARY KEY,
    pattern      text NOT NULL,
    reason       text NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    cancelled_at timestamptz,
    CHECK (ends_at > starts_at)
);

-- The outbox: written in the same transaction as the state change that
-- caused it, drained in id order by one sender at a time.
CREATE TABLE IF NOT EXISTS opsbench.outbox (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    kind            text NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'photo', 'document')),
    body            text NOT NULL DEFAULT '',   -- HTML message, or the caption of a photo/document
    payload         bytea,                      -- photo/document bytes ...
    payload_path    text,                       -- ... or a file to read at send time
    filename        text,
    silent          boolean NOT NULL DEFAULT false,
    source          text,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    sent_at         timestamptz,
    channel         text,
    CHECK (kind = 'text' OR payload IS NOT NULL OR payload_path IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON opsbench.outbox (id) WHERE status = 'pending';

-- Telegram destination state keyed by the configured chat id: where it
-- moved to (group upgraded to supergroup) and whether it refuses us.
CREATE TABLE IF NOT EXISTS opsbench.telegram_chats (
    configured_chat_id text PRIMARY KEY,
    chat_id            text NOT NULL,
    migrated_at        timestamptz,
    blocked_reason     text,
    blocked_at         timestamptz,
    updated_at         timestamptz NOT NULL
);
