-- Incident messages, their buttons, the getUpdates offset and the Telegram action audit (schema opsbench).

-- name: create
-- A new incident message for the alerts that fired together; returns its id.
-- :param created_at timestamptz         when
-- :param keys text                      JSON array of alert keys
-- :param episodes text                  JSON object key -> started_at
-- :param body text                      the message as first sent
INSERT INTO opsbench.incidents (created_at, keys, episodes, body)
VALUES (CAST(:created_at AS timestamptz), CAST(:keys AS jsonb), CAST(:episodes AS jsonb), CAST(:body AS text))
RETURNING id

-- name: set_body
-- The chat's rendering of the incident's first message (edits re-use it).
-- :param id int                         incident id
-- :param body text                      the message as first sent
UPDATE opsbench.incidents SET body = CAST(:body AS text) WHERE id = CAST(:id AS bigint)

-- name: add_button
-- One button of an incident message.
-- :param token text                     callback_data
-- :param incident_id int                incident
-- :param action text                    ack, s1h, s4h, s9, resolve or details
-- :param created_at timestamptz         when
INSERT INTO opsbench.telegram_buttons (token, incident_id, action, created_at)
VALUES (CAST(:token AS text), CAST(:incident_id AS bigint), CAST(:action AS text), CAST(:created_at AS timestamptz))

-- name: buttons
-- The buttons of an incident message: action, token, and who used a one-time one.
-- :param incident_id int                incident
SELECT action, token, used_by, used_at FROM opsbench.telegram_buttons WHERE incident_id = CAST(:incident_id AS bigint)

-- name: get
-- One incident, locked for the caller's transaction.
-- :param id int                         incident id
SELECT id, created_at, keys, episodes, body, chat_id, message_id, acked_by, acked_at, silence_ids, closed_at
FROM opsbench.incidents WHERE id = CAST(:id AS bigint)
FOR UPDATE

-- name: button
-- A pressed button with its incident, both locked (a second press waits, then sees the first's effect).
-- :param token text                     callback_data
SELECT b.token, b.action, b.used_at, b.used_by, i.id AS incident_id, i.chat_id, i.message_id, i.keys, i.episodes,
       i.acked_by, i.acked_at, i.closed_at
FROM opsbench.telegram_buttons b JOIN opsbench.incidents i ON i.id = b.incident_id
WHERE b.token = CAST(:token AS text)
FOR UPDATE OF b, i

-- name: use_button
-- Mark a one-time button used.
-- :param token text                     callback_data
-- :param at timestamptz                 when
-- :param by text                        who
UPDATE opsbench.telegram_buttons SET used_at = CAST(:at AS timestamptz), used_by = CAST(:by AS text)
WHERE token = CAST(:token AS text)

-- name: alerts_of
-- The current rows of an incident's alerts.
-- :param keys text                      JSON array of alert keys
SELECT key, rule, severity, state, summary, details, evidence, evidence_count, command, source, started_at,
       fired_at, resolved_at, acked_by, acked_at, incident_id, held_reason, escalated
FROM opsbench.alerts
WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, key

-- name: ack
-- Acknowledge an incident and its open alerts of the same episode (repeats stop).
-- :param id int                         incident id
-- :param by text                        who
-- :param at timestamptz                 when
WITH i AS (
    UPDATE opsbench.incidents SET acked_by = CAST(:by AS text), acked_at = CAST(:at AS timestamptz)
    WHERE id = CAST(:id AS bigint) RETURNING id
)
UPDATE opsbench.alerts a SET acked_by = CAST(:by AS text), acked_at = CAST(:at AS timestamptz)
FROM i WHERE a.incident_id = i.id AND a.state IN ('pending', 'firing')
RETURNING a.key

-- name: ack_key
-- Acknowledge one open alert by key (/ack KEY); returns it with its incident.
-- :param key text                       alert key
-- :param by text                        who
-- :param at timestamptz                 when
UPDATE opsbench.alerts SET acked_by = CAST(:by AS text), acked_at = CAST(:at AS timestamptz)
WHERE key = CAST(:key AS text) AND state IN ('pending', 'firing')
RETURNING key, incident_id

-- name: add_silences
-- Remember the silences a button created for an incident.
-- :param id int                         incident id
-- :param silence_ids text               JSON array of silence ids
UPDATE opsbench.incidents SET silence_ids = silence_ids || CAST(:silence_ids AS jsonb)
WHERE id = CAST(:id AS bigint)

-- name: silences_of
-- Silences in force that a button of this incident created.
-- :param id int                         incident id
-- :param at timestamptz                 now
SELECT s.id, s.pattern, s.ends_at, s.created_by
FROM opsbench.silences s, opsbench.incidents i
WHERE i.id = CAST(:id AS bigint) AND s.id IN (SELECT CAST(jsonb_array_elements_text(i.silence_ids) AS bigint))
  AND s.cancelled_at IS NULL AND s.ends_at > CAST(:at AS timestamptz)
ORDER BY s.id

-- name: close
-- Every alert of the incident is over: no more buttons but Details.
-- :param id int                         incident id
-- :param at timestamptz                 when
UPDATE opsbench.incidents SET closed_at = CAST(:at AS timestamptz) WHERE id = CAST(:id AS bigint) AND closed_at IS NULL

-- name: offset
-- The stored getUpdates offset for one bot, locked (one update is acted on at a time).
-- :param bot text                       the bot's id
-- :param at timestamptz                 now (for a first row)
INSERT INTO opsbench.telegram_updates (bot, next_offset, updated_at)
VALUES (CAST(:bot AS text), 0, CAST(:at AS timestamptz))
ON CONFLICT (bot) DO UPDATE SET bot = EXCLUDED.bot
RETURNING next_offset

-- name: advance
-- Move the offset past an update (in the transaction that acted on it).
-- :param bot text                       the bot's id
-- :param next_offset int                update_id + 1
-- :param at timestamptz                 now
UPDATE opsbench.telegram_updates
SET next_offset = GREATEST(next_offset, CAST(:next_offset AS bigint)), updated_at = CAST(:at AS timestamptz)
WHERE bot = CAST(:bot AS text)

-- name: peek_offset
-- The stored getUpdates offset, without a lock (to ask Telegram from there).
-- :param bot text                       the bot's id
SELECT next_offset FROM opsbench.telegram_updates WHERE bot = CAST(:bot AS text)

-- name: audit
-- Record one action from Telegram (also refusals).
-- :param at timestamptz                 when
-- :param update_id int                  the update
-- :param user_id int = null             who (Telegram user id)
-- :param user_name text = null          their @username or name
-- :param chat_id text = null            where
-- :param message_id int = null          from which message
-- :param action text                    what
-- :param target text = null             on what (incident, alert key, silence id)
-- :param outcome text                   done, refused, stale, unknown, ignored, failed
-- :param detail text = null             more
INSERT INTO opsbench.telegram_actions (at, update_id, user_id, user_name, chat_id, message_id, action, target,
                                       outcome, detail)
VALUES (CAST(:at AS timestamptz), CAST(:update_id AS bigint), CAST(:user_id AS bigint), CAST(:user_name AS text),
        CAST(:chat_id AS text), CAST(:message_id AS bigint), CAST(:action AS text), CAST(:target AS text),
        CAST(:outcome AS text), CAST(:detail AS text))

-- name: recent_actions
-- Latest actions from Telegram, newest first.
-- :param limit int = 10                 how many
SELECT id, at, update_id, user_id, user_name, chat_id, message_id, action, target, outcome, detail
FROM opsbench.telegram_actions
ORDER BY at DESC, id DESC
LIMIT CAST(:limit AS integer)
