-- Delivery problems made visible, and the backlog notice told once.
-- Idempotent: every statement can run again on a database that has it.

-- When a message was given up on (status 'failed'), for `opsbench alerts` and `status`.
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS failed_at timestamptz;

-- The "N messages were held for X" notice has been delivered for this pending
-- message's backlog: a later drain (time budget, a head that failed after the
-- notice went out) does not say it again.
ALTER TABLE opsbench.outbox ADD COLUMN IF NOT EXISTS backlog_noticed boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS outbox_failed_idx ON opsbench.outbox (id) WHERE status = 'failed';

-- blocked_at is when the chat started refusing (kept while it keeps refusing);
-- blocked_checked_at is the last time delivery was tried and refused.
ALTER TABLE opsbench.telegram_chats ADD COLUMN IF NOT EXISTS blocked_checked_at timestamptz;
UPDATE opsbench.telegram_chats SET blocked_checked_at = blocked_at
WHERE blocked_at IS NOT NULL AND blocked_checked_at IS NULL;
