-- Durable outbox and Telegram chat state (schema opsbench).

-- name: enqueue
-- Add one message to the outbox; returns its id.
-- :param created_at timestamptz        when it was produced
-- :param kind text = text              text, photo or document
-- :param body text                     HTML text, or the caption
-- :param payload_b64 text = null       photo/document bytes, base64
-- :param payload_path text = null      or a file path read at send time
-- :param filename text = null          document file name
-- :param silent bool = false           deliver without a notification sound
-- :param source text = null            who produced it (alerts, report)
-- :param incident_id int = null         the incident message this row sends, edits or replies to
-- :param reply_to int = null            a Telegram message id to reply to (a command)
-- :param reply_markup text = null       inline keyboard, JSON
-- :param callback_query_id text = null  the button press an 'answer' row answers
-- :param lane text = chat               chat (in order) or answer (button answers, not queued behind the chat)
-- :param destination text = main        the route it goes out on (ops/alerting/channels.py)
INSERT INTO opsbench.outbox (created_at, kind, body, payload, payload_path, filename, silent, source, next_attempt_at,
                             incident_id, reply_to, reply_markup, callback_query_id, lane, destination)
VALUES (CAST(:created_at AS timestamptz), CAST(:kind AS text), CAST(:body AS text),
        decode(CAST(:payload_b64 AS text), 'base64'), CAST(:payload_path AS text), CAST(:filename AS text),
        CAST(:silent AS boolean), CAST(:source AS text), CAST(:created_at AS timestamptz),
        CAST(:incident_id AS bigint), CAST(:reply_to AS bigint), CAST(:reply_markup AS jsonb),
        CAST(:callback_query_id AS text), CAST(:lane AS text), CAST(:destination AS text))
RETURNING id

-- name: try_sender_lock
-- Take the transaction-scoped sender lock of one destination; false while another drain is sending to it.
-- :param destination text = main        the route
SELECT pg_try_advisory_xact_lock(7302415, hashtext(CAST(:destination AS text))) AS locked

-- name: head
-- The oldest pending message of a destination's chat lane, locked for this transaction (skipped if another
-- holds it), with the incident message it edits or replies to.
-- :param destination text = main        the route
SELECT o.id, o.created_at, o.kind, o.body, o.payload, o.payload_path, o.filename, o.silent, o.source, o.attempts,
       o.next_attempt_at, o.backlog_noticed, o.incident_id, o.reply_to, o.reply_markup,
       i.chat_id AS incident_chat_id, i.message_id AS incident_message_id
FROM opsbench.outbox o
LEFT JOIN opsbench.incidents i ON i.id = o.incident_id
WHERE o.status = 'pending' AND o.lane = 'chat' AND o.destination = CAST(:destination AS text)
ORDER BY o.id
LIMIT 1
FOR UPDATE OF o SKIP LOCKED

-- name: due_answers
-- Button answers due now, oldest first (their own lane: not behind the chat's queue).
-- :param now timestamptz                now
-- :param destination text = main        the route
SELECT id, body, callback_query_id, attempts
FROM opsbench.outbox
WHERE status = 'pending' AND lane = 'answer' AND destination = CAST(:destination AS text) AND next_attempt_at <= CAST(:now AS timestamptz)
ORDER BY id
LIMIT 20
FOR UPDATE SKIP LOCKED

-- name: incident_delivered
-- The outbox delivered an incident's message: edits and replies go to it from now on.
-- :param id int                         incident id
-- :param chat_id text                   chat it went to
-- :param message_id int                 its Telegram message id
UPDATE opsbench.incidents SET chat_id = CAST(:chat_id AS text), message_id = CAST(:message_id AS bigint)
WHERE id = CAST(:id AS bigint)

-- name: backlog
-- How many messages of a destination are pending and since when the oldest has waited.
-- :param destination text = main        the route
SELECT count(*) AS pending, min(created_at) AS oldest
FROM opsbench.outbox
WHERE status = 'pending' AND lane = 'chat' AND destination = CAST(:destination AS text)

-- name: mark_noticed
-- The backlog notice went out: no later drain repeats it for the messages of that destination now pending.
-- :param destination text = main        the route
UPDATE opsbench.outbox SET backlog_noticed = true
WHERE status = 'pending' AND NOT backlog_noticed AND destination = CAST(:destination AS text)

-- name: depth
-- Number of pending messages.
SELECT count(*) AS pending FROM opsbench.outbox WHERE status = 'pending'

-- name: mark_sent
-- Record a successful delivery.
-- :param id int                         outbox id
-- :param sent_at timestamptz            delivery time
-- :param channel text                   channel that delivered it
UPDATE opsbench.outbox
SET status = 'sent', sent_at = CAST(:sent_at AS timestamptz), channel = CAST(:channel AS text),
    attempts = attempts + 1
WHERE id = CAST(:id AS bigint)

-- name: mark_retry
-- Leave a message pending and say when to try again.
-- :param id int                         outbox id
-- :param next_attempt_at timestamptz    earliest next try
-- :param error text                     why this try failed (redacted)
UPDATE opsbench.outbox
SET attempts = attempts + 1, next_attempt_at = CAST(:next_attempt_at AS timestamptz),
    last_error = CAST(:error AS text)
WHERE id = CAST(:id AS bigint)

-- name: mark_failed
-- Give up on a message the destination will never accept (kept for inspection).
-- :param id int                         outbox id
-- :param error text                     why (redacted)
-- :param failed_at timestamptz          when
UPDATE opsbench.outbox
SET status = 'failed', attempts = attempts + 1, last_error = CAST(:error AS text),
    failed_at = CAST(:failed_at AS timestamptz)
WHERE id = CAST(:id AS bigint)

-- name: failed_count
-- How many messages were given up on (kept for inspection).
SELECT count(*) AS failed FROM opsbench.outbox WHERE status = 'failed' AND lane = 'chat'

-- name: failed_recent
-- The latest messages given up on, newest first.
-- :param limit int = 3                  how many
SELECT id, created_at, failed_at, kind, source, last_error, destination
FROM opsbench.outbox
WHERE status = 'failed' AND lane = 'chat'
ORDER BY id DESC
LIMIT CAST(:limit AS integer)

-- name: messages
-- Recent outbox rows, newest first, for the CLI and tests.
-- :param limit int = 50                 how many
SELECT id, created_at, kind, body, silent, source, status, attempts, next_attempt_at, last_error, sent_at, channel,
       destination
FROM opsbench.outbox
ORDER BY id DESC
LIMIT CAST(:limit AS integer)

-- name: chat
-- Stored state of a configured Telegram chat.
-- :param configured_chat_id text        TELEGRAM_CHAT_ID as configured
SELECT configured_chat_id, chat_id, migrated_at, blocked_reason, blocked_at, blocked_checked_at
FROM opsbench.telegram_chats
WHERE configured_chat_id = CAST(:configured_chat_id AS text)

-- name: blocked_chats
-- Chats (and other destinations) that refuse our messages, longest-blocked first.
SELECT configured_chat_id, chat_id, blocked_reason, blocked_at, blocked_checked_at
FROM (
    SELECT configured_chat_id, chat_id, blocked_reason, blocked_at, blocked_checked_at
    FROM opsbench.telegram_chats
    WHERE blocked_at IS NOT NULL
    UNION ALL
    SELECT channel_key, channel_key, reason, held_at, checked_at FROM opsbench.destination_holds
) b
ORDER BY blocked_at, configured_chat_id

-- name: hold
-- The stored refusal of a (non-Telegram) destination, if any.
-- :param key text                       the channel's key
SELECT channel_key, reason, held_at, checked_at FROM opsbench.destination_holds WHERE channel_key = CAST(:key AS text)

-- name: hold_set
-- Remember a refusal (held_at stays the first, checked_at the latest); returns whether it is new.
-- :param key text                       the channel's key
-- :param reason text                    why (redacted)
-- :param at timestamptz                 when
WITH before AS (SELECT 1 FROM opsbench.destination_holds WHERE channel_key = CAST(:key AS text))
INSERT INTO opsbench.destination_holds (channel_key, reason, held_at, checked_at)
VALUES (CAST(:key AS text), CAST(:reason AS text), CAST(:at AS timestamptz), CAST(:at AS timestamptz))
ON CONFLICT (channel_key) DO UPDATE SET reason = EXCLUDED.reason, checked_at = EXCLUDED.checked_at
RETURNING NOT EXISTS (SELECT 1 FROM before) AS newly_held

-- name: hold_clear
-- A delivery went through: the destination takes messages again.
-- :param key text                       the channel's key
DELETE FROM opsbench.destination_holds WHERE channel_key = CAST(:key AS text)

-- name: chat_migrated
-- Remember that a chat moved (group upgraded to supergroup).
-- :param configured_chat_id text        TELEGRAM_CHAT_ID as configured
-- :param chat_id text                   the new chat id
-- :param at timestamptz                 when it was noticed
INSERT INTO opsbench.telegram_chats (configured_chat_id, chat_id, migrated_at, updated_at)
VALUES (CAST(:configured_chat_id AS text), CAST(:chat_id AS text), CAST(:at AS timestamptz), CAST(:at AS timestamptz))
ON CONFLICT (configured_chat_id) DO UPDATE
SET chat_id = EXCLUDED.chat_id, migrated_at = EXCLUDED.migrated_at, updated_at = EXCLUDED.updated_at

-- name: chat_blocked
-- Mark a chat as refusing our messages (blocked_at stays the first refusal, blocked_checked_at
-- the latest); returns whether it was not blocked before.
-- :param configured_chat_id text        TELEGRAM_CHAT_ID as configured
-- :param chat_id text                   the chat id in use
-- :param reason text                    the Bot API's description (redacted)
-- :param at timestamptz                 when
WITH before AS (
    SELECT blocked_at FROM opsbench.telegram_chats WHERE configured_chat_id = CAST(:configured_chat_id AS text)
)
INSERT INTO opsbench.telegram_chats (configured_chat_id, chat_id, blocked_reason, blocked_at, blocked_checked_at,
                                     updated_at)
VALUES (CAST(:configured_chat_id AS text), CAST(:chat_id AS text), CAST(:reason AS text),
        CAST(:at AS timestamptz), CAST(:at AS timestamptz), CAST(:at AS timestamptz))
ON CONFLICT (configured_chat_id) DO UPDATE
SET blocked_reason = EXCLUDED.blocked_reason,
    blocked_at = COALESCE(opsbench.telegram_chats.blocked_at, EXCLUDED.blocked_at),
    blocked_checked_at = EXCLUDED.blocked_checked_at, updated_at = EXCLUDED.updated_at
RETURNING (SELECT count(*) FROM before WHERE blocked_at IS NOT NULL) = 0 AS newly_blocked

-- name: chat_unblocked
-- Clear the blocked mark after a successful delivery or test.
-- :param configured_chat_id text        TELEGRAM_CHAT_ID as configured
-- :param at timestamptz                 when
UPDATE opsbench.telegram_chats
SET blocked_reason = NULL, blocked_at = NULL, blocked_checked_at = NULL, updated_at = CAST(:at AS timestamptz)
WHERE configured_chat_id = CAST(:configured_chat_id AS text) AND blocked_at IS NOT NULL
