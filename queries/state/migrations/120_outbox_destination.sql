-- Channels as plugins: every outbox row names its destination, the route it goes out on
-- ('main': the chat, Telegram or the console; 'email': the email channel; see
-- ops/alerting/channels.py). Each destination is drained in order on its own, so one
-- channel that is down holds only its own rows. Rows from before this migration were
-- all for the chat. Idempotent.
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS destination text NOT NULL DEFAULT 'main';
CREATE INDEX IF NOT EXISTS outbox_destination_pending_idx
    ON opsbench.outbox (destination, lane, id) WHERE status = 'pending';
