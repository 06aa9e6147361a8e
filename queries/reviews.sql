-- The weekly maintenance review ("review admin actions", "analyze error
-- patterns"). Windows are half-open [until - 7 days, until) and the
-- baseline is the `weeks` weeks before that.


-- name: admin_actions
-- Admin actions in a window, grouped by who did what (with a flag when the actor is not an admin).
-- :param since timestamptz         start of the window (inclusive)
-- :param until timestamptz = null  end of the window (exclusive); default now
SELECT a.admin_user_id,
       COALESCE(u.is_admin, false)              AS actor_is_admin,
       a.action_type,
       count(*)                                 AS actions,
       COALESCE(sum(a.amount), 0)               AS credits,
       count(DISTINCT a.target_user_id)         AS target_users,
       count(DISTINCT a.target_model_id)        AS target_models,
       min(a.created_at)                        AS first_at,
       max(a.created_at)                        AS last_at,
       (array_agg(a.reason ORDER BY a.created_at DESC))[1] AS last_reason
FROM admin_actions a
LEFT JOIN users u ON u.id = a.admin_user_id
WHERE a.created_at >= CAST(:since AS timestamptz)
  AND a.created_at < COALESCE(CAST(:until AS timestamptz), now())
GROUP BY a.admin_user_id, u.is_admin, a.action_type
ORDER BY actions DESC, a.admin_user_id, a.action_type


-- name: error_codes
-- Error codes in the review window against the weeks before, from error_log and failed video jobs.
-- :param since timestamptz         start of the review window (inclusive)
-- :param until timestamptz = null  end of the review window (exclusive); default now
-- :param weeks int = 4             weeks of baseline before `since`
--
-- Columns: source (error_log | video_jobs), code, recent, baseline (counts), and
-- recent_total / baseline_total (all codes of that source) for the shares.
WITH w AS (
    SELECT CAST(:since AS timestamptz)                                              AS since,
           COALESCE(CAST(:until AS timestamptz), now())                             AS until,
           CAST(:since AS timestamptz) - make_interval(weeks => CAST(:weeks AS int)) AS base_since
), events AS (
    SELECT 'error_log' AS source, e.error_code AS code, e.created_at AS at
    FROM error_log e, w
    WHERE e.created_at >= w.base_since AND e.created_at < w.until
    UNION ALL
    SELECT 'video_jobs', COALESCE(j.error_code, 'unknown'), j.created_at
    FROM video_jobs j, w
    WHERE j.status = 'failed' AND j.created_at >= w.base_since AND j.created_at < w.until
), per_code AS (
    SELECT ev.source, ev.code,
           count(*) FILTER (WHERE ev.at >= w.since) AS recent,
           count(*) FILTER (WHERE ev.at < w.since)  AS baseline
    FROM events ev, w
    GROUP BY ev.source, ev.code
)
SELECT source, code, recent, baseline,
       sum(recent) OVER (PARTITION BY source)   AS recent_total,
       sum(baseline) OVER (PARTITION BY source) AS baseline_total
FROM per_code
ORDER BY source, recent DESC, code
