-- Channels as plugins: every outbox row names its destination, the route it goes out on
-- ('main': the chat, Telegram or the console; 'email': the email channel; see
-- ops/alerting/channels.py). Each destination is drained in order on its own, so one
-- channel that is down holds only its own rows. Rows from before this migration were
-- all for the chat. Idempotent.
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS destination text NOT NULL DEFAULT 'main';
CREATE INDEX IF NOT EXISTS outbox_destination_pending_idx
    ON opsbench.outbox (destination, lane, id) WHERE status = 'pending';

-- A destination that refuses every message (SMTP login refused, every recipient refused), as
-- ops/alerting/channel.py's BaseChannel remembers it: reported once, probed again every few
-- minutes, cleared by the next delivery. (Telegram chats keep theirs in opsbench.telegram_chats.)
CREATE TABLE IF NOT EXISTS opsbench.destination_holds (
    channel_key text PRIMARY KEY,          -- the channel's key, e.g. email:ops@example.com
    reason      text NOT NULL,             -- redacted
    held_at     timestamptz NOT NULL,      -- the first refusal
    checked_at  timestamptz NOT NULL       -- the latest
);
