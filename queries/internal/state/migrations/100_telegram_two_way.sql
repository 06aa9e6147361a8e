-- Two-way Telegram: one message per incident (edited in place), buttons that
-- act on it, commands, the getUpdates offset, and an audit of every action.
-- Idempotent: every statement can run again on a database that has it.

-- One Telegram message per incident: the alerts that fired together. The
-- message id is filled in when the outbox delivers it; edits and replies
-- find it here at send time (the outbox sends in order, so it is there).
CREATE TABLE IF NOT EXISTS opsbench.incidents (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    keys        jsonb NOT NULL,              -- the alert keys in the message
    episodes    jsonb NOT NULL,              -- key -> started_at of the episode the message is about
    body        text NOT NULL,               -- the message as first sent (HTML), re-used by edits
    chat_id     text,
    message_id  bigint,
    acked_by    text,
    acked_at    timestamptz,
    silence_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
    closed_at   timestamptz                  -- every alert in it resolved or closed
);
CREATE INDEX IF NOT EXISTS incidents_open_idx ON opsbench.incidents (id) WHERE closed_at IS NULL;

ALTER TABLE opsbench.alerts ADD COLUMN IF NOT EXISTS incident_id bigint;
ALTER TABLE opsbench.alerts ADD COLUMN IF NOT EXISTS acked_by text;
ALTER TABLE opsbench.alerts ADD COLUMN IF NOT EXISTS acked_at timestamptz;

-- Buttons: callback_data is a short random token; the action and the incident
-- live here, so a forged token finds nothing and a used one cannot act twice.
CREATE TABLE IF NOT EXISTS opsbench.telegram_buttons (
    token       text PRIMARY KEY,
    incident_id bigint NOT NULL,
    action      text NOT NULL,
    created_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     text
);
CREATE INDEX IF NOT EXISTS telegram_buttons_incident_idx ON opsbench.telegram_buttons (incident_id);

-- Outbox rows that edit or reply to an incident message, answer a button, or
-- reply to a command; callback answers go in their own lane (not behind the
-- chat's queue, so a press is answered while the chat is throttled).
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS incident_id bigint;
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS reply_to bigint;
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS reply_markup jsonb;
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS callback_query_id text;
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS lane text NOT NULL DEFAULT 'chat';
ALTER TABLE opsbench.outbox DROP CONSTRAINT IF EXISTS outbox_kind_check;
ALTER TABLE opsbench.outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('text', 'photo', 'document', 'media_group', 'edit', 'reply', 'answer'));
ALTER TABLE opsbench.outbox DROP CONSTRAINT IF EXISTS outbox_check;
ALTER TABLE opsbench.outbox ADD CONSTRAINT outbox_check
    CHECK (kind NOT IN ('photo', 'document', 'media_group') OR payload IS NOT NULL OR payload_path IS NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_answer_idx ON opsbench.outbox (id) WHERE status = 'pending' AND lane = 'answer';

-- The getUpdates offset (one row per bot): an update is acted on in the same
-- transaction that moves the offset past it, so a restart or a failover to
-- the other daemon neither repeats nor skips one.
CREATE TABLE IF NOT EXISTS opsbench.telegram_updates (
    bot         text PRIMARY KEY,
    next_offset bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL
);

-- Who did what from Telegram (also refusals), for `opsbench alerts`.
CREATE TABLE IF NOT EXISTS opsbench.telegram_actions (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    update_id   bigint NOT NULL,
    user_id     bigint,
    user_name   text,
    chat_id     text,
    message_id  bigint,
    action      text NOT NULL,
    target      text,
    outcome     text NOT NULL,      -- done | refused | stale | unknown | ignored | failed
    detail      text
);
CREATE INDEX IF NOT EXISTS telegram_actions_at_idx ON opsbench.telegram_actions (at DESC, id DESC);
