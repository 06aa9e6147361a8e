-- A report's charts as one Telegram album (sendMediaGroup): the payload holds every photo
-- (ops/alerting/outbox.py pack_album), the body the album's caption.
ALTER TABLE opsbench.outbox DROP CONSTRAINT IF EXISTS outbox_kind_check;
ALTER TABLE opsbench.outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('text', 'photo', 'document', 'media_group'));
