-- Metric probes over the backend: what the daemon checks every few minutes.
--
-- Every query takes `now` (default: the server's now()) so a job with an
-- injected clock, a test or a look back at an incident sees the same window.
-- Windows are half-open [now - span, now).


-- name: job_outcomes
-- Finished video jobs and failures per provider in a window, plus an '*' row for all providers.
-- :param span interval = 1h        window length (15min, 1h, ...)
-- :param now timestamptz = null    end of the window; default now
--
-- A job counts when it finished (completed_at) inside the window. The extra
-- created_at bound lets the created_at index narrow the scan: generation jobs
-- finish within a day, and one that does not is a stuck job, not an outcome.
WITH w AS (
    SELECT COALESCE(CAST(:now AS timestamptz), now()) AS until,
           COALESCE(CAST(:now AS timestamptz), now()) - CAST(:span AS interval) AS since
)
SELECT COALESCE(j.provider, '*')                        AS provider,
       count(*)                                          AS finished,
       count(*) FILTER (WHERE j.status = 'failed')       AS failed
FROM video_jobs j, w
WHERE j.created_at >= w.since - interval '1 day'
  AND j.created_at < w.until
  AND j.completed_at >= w.since
  AND j.completed_at < w.until
  AND j.status IN ('completed', 'failed')
GROUP BY ROLLUP (j.provider)
ORDER BY (j.provider IS NULL) DESC, j.provider


-- name: stuck_jobs
-- Jobs still pending or processing longer than a threshold, oldest first (ids for the founder to look at).
-- :param older_than interval = 30min   how long a job may stay unfinished
-- :param now timestamptz = null        the moment to judge at; default now
--
-- "Unfinished at `now`" also covers a job that finished only after `now`, so a
-- look back (the backtest) sees the job as it was then; generation jobs finish
-- within a day, which bounds that part of the scan.
SELECT j.id                                                                               AS job_id,
       j.user_id,
       j.provider,
       CASE WHEN j.completed_at IS NULL THEN j.status
            WHEN j.started_at <= COALESCE(CAST(:now AS timestamptz), now()) THEN 'processing'
            ELSE 'pending' END                                                            AS status,
       j.created_at,
       j.started_at,
       round(CAST(EXTRACT(epoch FROM COALESCE(CAST(:now AS timestamptz), now()) - j.created_at) / 60 AS numeric), 1)
                                                                                          AS age_minutes
FROM video_jobs j
WHERE j.created_at < COALESCE(CAST(:now AS timestamptz), now()) - CAST(:older_than AS interval)
  AND (j.status IN ('pending', 'processing')
       OR (j.status IN ('completed', 'failed')
           AND j.created_at >= COALESCE(CAST(:now AS timestamptz), now()) - interval '1 day'
           AND j.completed_at > COALESCE(CAST(:now AS timestamptz), now())))
ORDER BY j.created_at, j.id


-- name: negative_balances
-- Users whose credit balance is below zero, most negative first.
-- :param now timestamptz = null    the moment to judge at; default now
--
-- For a look back (the backtest) a user counts when the balance is below zero
-- now and already was at `now`: the stored balance less the ledger changes
-- after `now`. (Rebuilding every past balance from the ledger alone would
-- also flag users whose purchase row landed after the jobs it paid for.)
-- For the live probe nothing is later than now, so this is the stored balance.
-- Who is below zero is the reconciliation check's definition (queries/checks/negative_balances.sql),
-- pasted here; this query adds only the look-back.
WITH below_zero AS (
-- include: checks/negative_balances
), neg AS (
    SELECT b.user_id AS id, b.credits_remaining, b.created_at
    FROM below_zero b
    WHERE b.created_at <= COALESCE(CAST(:now AS timestamptz), now())
), later AS (
    SELECT q.user_id, sum(q.change) AS change
    FROM quota_log q
    JOIN neg ON neg.id = q.user_id
    WHERE q.created_at > COALESCE(CAST(:now AS timestamptz), now())
    GROUP BY q.user_id
)
SELECT n.id AS user_id, CAST(n.credits_remaining - COALESCE(l.change, 0) AS int) AS credits_remaining, n.created_at
FROM neg n
LEFT JOIN later l ON l.user_id = n.id
WHERE n.credits_remaining - COALESCE(l.change, 0) < 0
ORDER BY 2, n.id


-- name: last_purchase
-- The latest production purchase at or before `now` (NULL when there is none).
-- :param now timestamptz = null   the moment to look back from; default now
SELECT max(purchased_at) AS last_purchased_at,
       count(*)          AS purchases
FROM purchases
WHERE environment = 'Production'
  AND purchased_at <= COALESCE(CAST(:now AS timestamptz), now())


-- name: purchase_rate_by_hour_of_week
-- Production purchases per hour for each local hour of the week over the last weeks: the baseline for "purchases stopped".
-- :param weeks int = 8             weeks of history
-- :param tz tz = REPORT_TZ               zone whose hours of the week are compared
-- :param now timestamptz = null    end of the history (the current hour is excluded); default now
--
-- Columns:
--   hour_of_week     0 = Monday 00:00-01:00 local ... 167 = Sunday 23:00
--   hours            how many such hours the history holds (up to `weeks`)
--   mean_per_hour    mean purchases in that hour
--   median_per_hour  median purchases in that hour
--   trimmed_per_hour mean after dropping the busiest week's hour (robust to one promotion)
-- Hours before the first production purchase are not history (the app did not sell yet);
-- hours with no purchase count as zero, which is the point.
WITH b AS (
    SELECT date_trunc('hour', COALESCE(CAST(:now AS timestamptz), now()), CAST(:tz AS text)) AS end_hour
), first_sale AS (
    SELECT date_trunc('hour', min(purchased_at), CAST(:tz AS text)) AS first_hour
    FROM purchases WHERE environment = 'Production'
), hours AS (
    SELECT h
    FROM b, first_sale f,
         generate_series(GREATEST(b.end_hour - make_interval(weeks => CAST(:weeks AS int)), f.first_hour),
                         b.end_hour - interval '1 hour', interval '1 hour') AS h
), counts AS (
    SELECT date_trunc('hour', p.purchased_at, CAST(:tz AS text)) AS h, count(*) AS n
    FROM purchases p, b
    WHERE p.environment = 'Production'
      AND p.purchased_at >= b.end_hour - make_interval(weeks => CAST(:weeks AS int))
      AND p.purchased_at < b.end_hour
    GROUP BY 1
), per_hour AS (
    SELECT CAST((EXTRACT(isodow FROM h.h AT TIME ZONE CAST(:tz AS text)) - 1) * 24
                + EXTRACT(hour FROM h.h AT TIME ZONE CAST(:tz AS text)) AS int) AS hour_of_week,
           COALESCE(c.n, 0) AS n
    FROM hours h LEFT JOIN counts c ON c.h = h.h
)
SELECT hour_of_week,
       count(*)                                                              AS hours,
       CAST(avg(n) AS float8)                                                AS mean_per_hour,
       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS float8)       AS median_per_hour,
       CASE WHEN count(*) > 1 THEN CAST(sum(n) - max(n) AS float8) / (count(*) - 1)
            ELSE CAST(avg(n) AS float8) END                                  AS trimmed_per_hour
FROM per_hour
GROUP BY hour_of_week
ORDER BY hour_of_week


-- name: usage_by_user
-- Video jobs created per user in a window, busiest first.
-- :param span interval = 1h        window length
-- :param now timestamptz = null    end of the window; default now
SELECT j.user_id, count(*) AS jobs
FROM video_jobs j
WHERE j.created_at >= COALESCE(CAST(:now AS timestamptz), now()) - CAST(:span AS interval)
  AND j.created_at < COALESCE(CAST(:now AS timestamptz), now())
GROUP BY j.user_id
ORDER BY jobs DESC, j.user_id


-- name: usage_by_ip
-- Rate-limited requests logged per client IP in a window (all actions), busiest first.
-- :param span interval = 1h        window length
-- :param now timestamptz = null    end of the window; default now
SELECT host(r.ip_address) AS ip, count(*) AS requests, count(DISTINCT r.user_id) AS users
FROM rate_limit_log r
WHERE r.created_at >= COALESCE(CAST(:now AS timestamptz), now()) - CAST(:span AS interval)
  AND r.created_at < COALESCE(CAST(:now AS timestamptz), now())
GROUP BY r.ip_address
ORDER BY requests DESC, ip


-- name: rate_limit_usage
-- Requests per IP for one action within that action's rate-limit window, busiest first.
-- :param action text               rate-limited action, e.g. video_generation
-- :param span interval = 1h        the limiter's window
-- :param min_requests int = 1      only IPs with at least this many requests
-- :param now timestamptz = null    end of the window; default now
SELECT host(r.ip_address) AS ip, r.action, count(*) AS requests, count(DISTINCT r.user_id) AS users,
       max(r.created_at) AS last_at
FROM rate_limit_log r
WHERE r.action = :action
  AND r.created_at >= COALESCE(CAST(:now AS timestamptz), now()) - CAST(:span AS interval)
  AND r.created_at < COALESCE(CAST(:now AS timestamptz), now())
GROUP BY r.ip_address, r.action
HAVING count(*) >= :min_requests
ORDER BY requests DESC, ip
