-- Alert manager state (schema opsbench): alerts, their history, silences.

-- name: lock_rules
-- Current rows of the evaluated rules, locked until the evaluation commits.
-- :param rules text                     JSON array of rule names
SELECT key, rule, labels, source, severity, state, summary, details, evidence, evidence_count, command, requires,
       bad_streak, good_streak, started_at, fired_at, resolved_at, last_notified_at, held_reason, last_eval_at,
       incident_id, acked_by, acked_at
FROM opsbench.alerts
WHERE rule IN (SELECT jsonb_array_elements_text(CAST(:rules AS jsonb)))
ORDER BY key
FOR UPDATE

-- name: firing_keys
-- Key, rule and start of every firing alert (root causes for dependency suppression).
SELECT key, rule, started_at FROM opsbench.alerts WHERE state = 'firing'

-- name: upsert
-- Write one alert row.
-- :param key text                       rule plus labels
-- :param rule text                      rule name
-- :param labels text                    JSON object
-- :param source text                    job that evaluated it
-- :param severity text                  critical, warning or info
-- :param state text                     pending, firing, resolved or inactive
-- :param summary text                   one line
-- :param details text                   more text
-- :param evidence text                  JSON array of the first offending rows
-- :param evidence_count int = null      all offending rows
-- :param command text = null            opsbench command that reproduces it
-- :param requires text                  JSON array of dependency names
-- :param bad_streak int                 consecutive bad evaluations
-- :param good_streak int                consecutive good evaluations
-- :param started_at timestamptz = null  first bad evaluation of the episode
-- :param fired_at timestamptz = null    when it started firing
-- :param resolved_at timestamptz = null when it resolved
-- :param last_notified_at timestamptz = null  last firing/repeat message
-- :param held_reason text = null        silenced or suppressed
-- :param last_eval_at timestamptz       this evaluation
-- :param incident_id int = null         the incident message announcing this episode
-- :param acked_by text = null           who acknowledged this episode
-- :param acked_at timestamptz = null    when
INSERT INTO opsbench.alerts (key, rule, labels, source, severity, state, summary, details, evidence, evidence_count,
                             command, requires, bad_streak, good_streak, started_at, fired_at, resolved_at,
                             last_notified_at, held_reason, last_eval_at, incident_id, acked_by, acked_at)
VALUES (CAST(:key AS text), CAST(:rule AS text), CAST(:labels AS jsonb), CAST(:source AS text),
        CAST(:severity AS text), CAST(:state AS text), CAST(:summary AS text), CAST(:details AS text),
        CAST(:evidence AS jsonb), CAST(:evidence_count AS integer), CAST(:command AS text),
        ARRAY(SELECT jsonb_array_elements_text(CAST(:requires AS jsonb))),
        CAST(:bad_streak AS integer), CAST(:good_streak AS integer), CAST(:started_at AS timestamptz),
        CAST(:fired_at AS timestamptz), CAST(:resolved_at AS timestamptz), CAST(:last_notified_at AS timestamptz),
        CAST(:held_reason AS text), CAST(:last_eval_at AS timestamptz), CAST(:incident_id AS bigint),
        CAST(:acked_by AS text), CAST(:acked_at AS timestamptz))
ON CONFLICT (key) DO UPDATE SET
    rule = EXCLUDED.rule, labels = EXCLUDED.labels, source = EXCLUDED.source, severity = EXCLUDED.severity,
    state = EXCLUDED.state, summary = EXCLUDED.summary, details = EXCLUDED.details, evidence = EXCLUDED.evidence,
    evidence_count = EXCLUDED.evidence_count, command = EXCLUDED.command, requires = EXCLUDED.requires,
    bad_streak = EXCLUDED.bad_streak, good_streak = EXCLUDED.good_streak, started_at = EXCLUDED.started_at,
    fired_at = EXCLUDED.fired_at, resolved_at = EXCLUDED.resolved_at, last_notified_at = EXCLUDED.last_notified_at,
    held_reason = EXCLUDED.held_reason, last_eval_at = EXCLUDED.last_eval_at, incident_id = EXCLUDED.incident_id,
    acked_by = EXCLUDED.acked_by, acked_at = EXCLUDED.acked_at,
    -- escalations belong to an episode: a new one starts with none (only `escalate` adds them)
    escalated = CASE WHEN EXCLUDED.started_at IS DISTINCT FROM opsbench.alerts.started_at
                     THEN '[]'::jsonb ELSE opsbench.alerts.escalated END

-- name: add_event
-- Append one history row.
-- :param at timestamptz                 when
-- :param key text                       alert key
-- :param rule text                      rule name
-- :param severity text                  severity then
-- :param kind text                      pending firing repeat resolved cleared silenced suppressed
-- :param summary text                   summary then
-- :param outbox_id int = null           message it caused
-- :param note text = null               extra (silence id, root cause)
INSERT INTO opsbench.alert_events (at, key, rule, severity, kind, summary, outbox_id, note)
VALUES (CAST(:at AS timestamptz), CAST(:key AS text), CAST(:rule AS text), CAST(:severity AS text),
        CAST(:kind AS text), CAST(:summary AS text), CAST(:outbox_id AS bigint), CAST(:note AS text))

-- name: firing
-- Alerts firing now, most severe first.
SELECT key, rule, severity, summary, source, started_at, fired_at, last_notified_at, held_reason, evidence_count,
       command, acked_by, acked_at, incident_id
FROM opsbench.alerts
WHERE state = 'firing'
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, fired_at, key

-- name: recent
-- Latest alert history, newest first.
-- :param limit int = 20                 how many events
SELECT id, at, key, rule, severity, kind, summary, outbox_id, note
FROM opsbench.alert_events
ORDER BY at DESC, id DESC
LIMIT CAST(:limit AS integer)

-- name: active_silences
-- Silences in force at a moment.
-- :param at timestamptz                 the moment
SELECT id, pattern, reason, created_by, created_at, starts_at, ends_at
FROM opsbench.silences
WHERE cancelled_at IS NULL AND starts_at <= CAST(:at AS timestamptz) AND ends_at > CAST(:at AS timestamptz)
ORDER BY id

-- name: add_silence
-- Create a silence; returns its id.
-- :param pattern text                   fnmatch-style pattern over alert keys
-- :param reason text                    why
-- :param created_by text = null         who
-- :param starts_at timestamptz          from
-- :param ends_at timestamptz            until
INSERT INTO opsbench.silences (pattern, reason, created_by, created_at, starts_at, ends_at)
VALUES (CAST(:pattern AS text), CAST(:reason AS text), CAST(:created_by AS text), CAST(:starts_at AS timestamptz),
        CAST(:starts_at AS timestamptz), CAST(:ends_at AS timestamptz))
RETURNING id

-- name: cancel_silence
-- End a silence now; returns the row when it was in force.
-- :param id int                         silence id
-- :param at timestamptz                 now
UPDATE opsbench.silences
SET cancelled_at = CAST(:at AS timestamptz)
WHERE id = CAST(:id AS bigint) AND cancelled_at IS NULL AND ends_at > CAST(:at AS timestamptz)
RETURNING id, pattern

-- name: root_keys
-- Key, rule and state of every pending or firing alert (root causes for dependency holds).
SELECT key, rule, state FROM opsbench.alerts WHERE state IN ('pending', 'firing')

-- name: mark_evaluated
-- Note that these rules were evaluated now (by source).
-- :param rules text                     JSON array of rule names
-- :param at timestamptz                 this evaluation
-- :param source text                    the job that evaluated them
INSERT INTO opsbench.rule_evaluations (rule, last_eval_at, source)
SELECT r, CAST(:at AS timestamptz), CAST(:source AS text)
  FROM jsonb_array_elements_text(CAST(:rules AS jsonb)) AS r
 ORDER BY r
ON CONFLICT (rule) DO UPDATE
   SET last_eval_at = GREATEST(opsbench.rule_evaluations.last_eval_at, EXCLUDED.last_eval_at),
       source = EXCLUDED.source

-- name: rule_evaluations
-- When the named rules were last evaluated.
-- :param rules text                     JSON array of rule names
SELECT rule, last_eval_at FROM opsbench.rule_evaluations
 WHERE rule IN (SELECT jsonb_array_elements_text(CAST(:rules AS jsonb)))

-- name: awaiting_root_cause
-- Firing alerts held until their root-cause check runs, other than the given keys; rows another
-- evaluation holds are skipped (it will see them).
-- :param keys text                      JSON array of keys to leave out
SELECT key, rule, labels, source, severity, state, summary, details, evidence, evidence_count, command, requires,
       bad_streak, good_streak, started_at, fired_at, resolved_at, last_notified_at, held_reason, last_eval_at,
       incident_id, acked_by, acked_at
FROM opsbench.alerts
WHERE state = 'firing' AND held_reason = 'awaiting'
  AND key NOT IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))
ORDER BY key
FOR UPDATE SKIP LOCKED

-- name: state_changes
-- How many times one alert fired or resolved since a moment (flapping detection).
-- :param key text                       alert key
-- :param since timestamptz              start of the window
SELECT count(*) AS changes
FROM opsbench.alert_events
WHERE key = CAST(:key AS text) AND kind IN ('firing', 'resolved') AND at >= CAST(:since AS timestamptz)

-- name: held_behind
-- Firing alerts held back ('suppressed') whose `requires` names this rule or key: what an
-- outage kept quiet, listed when its root cause resolves.
-- :param rule text                      the root cause's rule
-- :param key text                       the root cause's key
SELECT key FROM opsbench.alerts
WHERE state = 'firing' AND held_reason = 'suppressed'
  AND (CAST(:rule AS text) = ANY (requires) OR CAST(:key AS text) = ANY (requires))
ORDER BY key

-- name: close_open
-- Close pending/firing alerts without a RESOLVED page (backend changed, check removed, by hand),
-- one 'closed' history row each with the note. keys NULL: every open alert; else only those keys.
-- :param keys text = null               JSON array of alert keys, or null for all
-- :param note text                      why
-- :param at timestamptz                 when
WITH closed AS (
    UPDATE opsbench.alerts
    SET state = 'resolved', resolved_at = CAST(:at AS timestamptz), bad_streak = 0, good_streak = 0,
        held_reason = NULL, last_eval_at = CAST(:at AS timestamptz)
    WHERE state IN ('pending', 'firing')
      AND (CAST(:keys AS jsonb) IS NULL OR key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb))))
    RETURNING key, rule, severity, summary, source
), ev AS (
    INSERT INTO opsbench.alert_events (at, key, rule, severity, kind, summary, note)
    SELECT CAST(:at AS timestamptz), key, rule, severity, 'closed', summary, CAST(:note AS text) FROM closed
)
SELECT key, rule, severity, summary, source FROM closed ORDER BY key

-- name: open_by_source
-- Pending or firing alerts with the job that raised them, and how many successful runs of that job
-- started after the alert's rule was last evaluated (by any job): a rule its job keeps running
-- without evaluating is a check that is gone (ops/daemon/removed_checks.py).
SELECT a.key, a.rule, a.labels, a.source, a.state,
       (SELECT count(*) FROM opsbench.job_runs r
         WHERE r.job = a.source AND r.status = 'ok'
           AND r.started_at > COALESCE(e.last_eval_at, a.last_eval_at, a.started_at)) AS runs_without_rule
  FROM opsbench.alerts a
  LEFT JOIN opsbench.rule_evaluations e ON e.rule = a.rule
 WHERE a.state IN ('pending', 'firing')
 ORDER BY a.key

-- name: escalation_candidates
-- Critical alerts firing, announced in an incident, not acked, not held, escalated fewer than twice;
-- locked (skipped if an evaluation holds them: it is newer).
SELECT key, rule, severity, summary, details, source, evidence, evidence_count, command, started_at, fired_at,
       last_notified_at, incident_id, escalated
FROM opsbench.alerts
WHERE state = 'firing' AND severity = 'critical' AND acked_at IS NULL AND held_reason IS NULL
  AND incident_id IS NOT NULL AND last_notified_at IS NOT NULL AND jsonb_array_length(escalated) < 2
ORDER BY key
FOR UPDATE SKIP LOCKED

-- name: mark_escalated
-- Record one escalation of an alert.
-- :param key text                       alert key
-- :param at timestamptz                 when
UPDATE opsbench.alerts SET escalated = escalated || to_jsonb(CAST(:at AS timestamptz))
WHERE key = CAST(:key AS text)
