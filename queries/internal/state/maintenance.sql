-- Maintenance windows: stored schedules (ops/alerting/maintenance.py computes their occurrences).


-- name: add
-- Store a window.
-- :param spec text                      the founder's words
-- :param days text                      JSON array of ISO weekdays (recurring), [] for one-off
-- :param start_minute int               local start (recurring)
-- :param end_minute int                 local end (recurring)
-- :param zone text                      the zone of the local times
-- :param starts_at timestamptz = null   one-off start
-- :param ends_at timestamptz = null     one-off end
-- :param patterns text                  JSON array of alert key/rule patterns ([]: every alert below critical)
-- :param reason text                    why
-- :param created_by text = null         who
-- :param at timestamptz                 now
INSERT INTO opsbench.maintenance_windows (spec, days, start_minute, end_minute, zone, starts_at, ends_at, patterns,
                                          reason, created_by, created_at, summarised_until)
VALUES (CAST(:spec AS text),
        ARRAY(SELECT CAST(jsonb_array_elements_text(CAST(:days AS jsonb)) AS int)),
        CAST(:start_minute AS int), CAST(:end_minute AS int), CAST(:zone AS text),
        CAST(:starts_at AS timestamptz), CAST(:ends_at AS timestamptz),
        ARRAY(SELECT jsonb_array_elements_text(CAST(:patterns AS jsonb))),
        CAST(:reason AS text), CAST(:created_by AS text), CAST(:at AS timestamptz), CAST(:at AS timestamptz))
RETURNING id


-- name: active
-- Windows not cancelled (a one-off window that ended stays until its summary is out).
SELECT id, spec, days, start_minute, end_minute, zone, starts_at, ends_at, patterns, reason, created_by,
       created_at, summarised_until
  FROM opsbench.maintenance_windows
 WHERE cancelled_at IS NULL
   AND (ends_at IS NULL OR ends_at > summarised_until)
 ORDER BY id


-- name: cancel
-- End a window now (no summary for an occurrence cut short).
-- :param id int                         the window
-- :param at timestamptz                 now
UPDATE opsbench.maintenance_windows SET cancelled_at = CAST(:at AS timestamptz)
 WHERE id = CAST(:id AS bigint) AND cancelled_at IS NULL
RETURNING id


-- name: summarised
-- Occurrences of a window that ended up to `until` have had their summary.
-- :param id int                         the window
-- :param until timestamptz              the end of the last summarised occurrence
UPDATE opsbench.maintenance_windows SET summarised_until = GREATEST(summarised_until, CAST(:until AS timestamptz))
 WHERE id = CAST(:id AS bigint)


-- name: events_between
-- What happened to alerts inside one occurrence: fired, held by this window, resolved, cleared.
-- :param since timestamptz              the occurrence's start
-- :param until timestamptz              its end
SELECT at, key, rule, severity, kind, summary, note
  FROM opsbench.alert_events
 WHERE at >= CAST(:since AS timestamptz) AND at < CAST(:until AS timestamptz)
   AND kind IN ('firing', 'silenced', 'resolved', 'cleared', 'closed')
 ORDER BY at, id
