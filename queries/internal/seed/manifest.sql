-- Demo data generator, step 5 of 5: statistics and the manifest.
--
-- The manifest's fault counts come from the generator's own record of what it
-- planted (gen_faults), never from the reconciliation queries it is meant to test.

-- name: analyze
-- Fresh statistics so the first queries get good plans.
ANALYZE users, models, products, purchases, quota_log, video_jobs, error_log, rate_limit_log, idempotency_keys,
        admin_actions

-- name: totals
-- Row counts and the time window.
SELECT p.seed, p.anchor, p.start_at, p.end_at,
       (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM users WHERE is_admin) AS admins,
       (SELECT count(*) FROM models) AS models,
       (SELECT count(*) FROM products) AS products,
       (SELECT count(*) FROM purchases) AS purchases,
       (SELECT count(*) FROM purchases WHERE environment = 'Sandbox') AS sandbox_purchases,
       (SELECT count(*) FROM purchases WHERE refunded_at IS NOT NULL) AS refunded_purchases,
       (SELECT count(*) FROM quota_log) AS ledger_rows,
       (SELECT count(*) FROM video_jobs) AS video_jobs,
       (SELECT count(*) FROM video_jobs WHERE status = 'failed') AS failed_jobs,
       (SELECT count(*) FROM error_log) AS error_log_rows,
       (SELECT count(*) FROM rate_limit_log) AS rate_limit_rows,
       (SELECT count(*) FROM idempotency_keys) AS idempotency_keys,
       (SELECT count(*) FROM admin_actions) AS admin_actions
FROM seed_params p

-- name: faults
-- Planted fault counts by kind, with the ids involved.
SELECT kind, count(*) AS n,
       array_agg(user_id::text ORDER BY user_id) FILTER (WHERE user_id IS NOT NULL) AS user_ids,
       array_agg(job_id::text ORDER BY job_id) FILTER (WHERE job_id IS NOT NULL) AS job_ids,
       array_agg(transaction_id ORDER BY transaction_id) FILTER (WHERE transaction_id IS NOT NULL) AS transaction_ids
FROM gen_faults
GROUP BY kind
ORDER BY kind

-- name: missing_job_ledger_rows
-- Ledger rows that point at the deleted jobs (what ledger_missing_jobs must report).
SELECT count(*) AS n FROM quota_log
WHERE job_id IN (SELECT job_id FROM gen_faults WHERE kind = 'ledger_missing_job')

-- name: spike
-- The failure spike: provider, UTC day, failures it added, and that day's totals for the provider.
SELECT p.spike_provider AS provider, (p.spike_start AT TIME ZONE 'UTC')::date AS local_date,
       s.spike_extra_failures AS extra_failures,
       count(j.id) AS jobs,
       count(j.id) FILTER (WHERE j.status = 'failed') AS failed
FROM seed_params p
CROSS JOIN gen_stats s
LEFT JOIN video_jobs j ON j.provider = p.spike_provider
                      AND j.created_at >= p.spike_start AND j.created_at < p.spike_start + interval '1 day'
GROUP BY p.spike_provider, p.spike_start, s.spike_extra_failures

-- name: unfinished
-- Stuck and in-flight jobs: count, ids and ages in minutes at the anchor.
SELECT f.kind, count(*) AS n,
       array_agg(j.id::text ORDER BY j.created_at) AS job_ids,
       array_agg(DISTINCT j.status) AS statuses,
       floor(min(extract(epoch FROM p.anchor - j.created_at)) / 60)::int AS min_age_minutes,
       ceil(max(extract(epoch FROM p.anchor - j.created_at)) / 60)::int AS max_age_minutes
FROM gen_faults f
JOIN video_jobs j ON j.id = f.job_id
CROSS JOIN seed_params p
WHERE f.kind IN ('stuck_job', 'inflight_job')
GROUP BY f.kind

-- name: retention
-- Rows the cleanup jobs should remove, counted at the anchor (every row is >= 2 h from its boundary).
SELECT (SELECT count(*) FROM rate_limit_log WHERE created_at < p.anchor - interval '7 days') AS rate_limit_older_than_7_days,
       (SELECT count(*) FROM idempotency_keys WHERE expires_at < p.anchor) AS expired_idempotency_keys,
       (SELECT count(*) FROM error_log WHERE created_at < p.anchor - interval '90 days') AS error_log_older_than_90_days
FROM seed_params p

-- name: incidents
-- The planted incidents a backtest must page for, each with the moment it began (and ended, when it did).
--   failure_spike      the spike provider fails every job from UTC midnight for two hours, then a third
--   stuck_jobs         the oldest planted stuck job is overdue: older than the longest healthy job took
--   negative_balance   the double-spend race's charge puts the balance below zero
--   purchases_stopped  no purchase in [start, end) (a broken paywall)
--   abuse              one address hammers video generation for an hour
SELECT kind, start_at, end_at, detail
FROM (
    SELECT 1 AS n, 'failure_spike' AS kind, p.spike_start AS start_at, p.spike_start + interval '1 day' AS end_at,
           jsonb_build_object('provider', p.spike_provider, 'outage_end', p.spike_outage_end) AS detail
    FROM seed_params p
    UNION ALL
    SELECT 2, 'stuck_jobs', min(j.created_at) + (SELECT max(h.completed_at - h.created_at) FROM video_jobs h
                                                  WHERE h.status IN ('completed', 'failed')),
           NULL, jsonb_build_object('jobs', count(*))
    FROM gen_faults f JOIN video_jobs j ON j.id = f.job_id
    WHERE f.kind = 'stuck_job'
    UNION ALL
    SELECT 3, 'negative_balance', j.created_at, NULL, jsonb_build_object('user_id', f.user_id)
    FROM gen_faults f JOIN video_jobs j ON j.id = f.job_id
    WHERE f.kind = 'negative_balance'
    UNION ALL
    SELECT 4, 'purchases_stopped', p.gap_start, p.gap_end, '{}'::jsonb FROM seed_params p
    UNION ALL
    SELECT 5, 'abuse', p.abuse_start, p.abuse_end, jsonb_build_object('ip', host(p.abuse_ip), 'requests', count(*))
    FROM seed_params p JOIN rate_limit_log r ON r.ip_address = p.abuse_ip
    GROUP BY p.abuse_start, p.abuse_end, p.abuse_ip
) i
ORDER BY n

-- name: refund_on_duplicate
-- The refund recorded only on a later copy of a transaction: what revenue must count once, on its day.
SELECT c.transaction_id, c.id AS first_copy_id, r.id AS refund_copy_id, c.price AS amount, c.currency,
       c.product_id, c.environment, c.purchased_at, r.refunded_at,
       (r.refunded_at AT TIME ZONE 'UTC')::date AS utc_date
FROM gen_faults f
JOIN purchases c ON c.transaction_id = f.transaction_id
JOIN purchases r ON r.transaction_id = f.transaction_id AND r.refunded_at IS NOT NULL
WHERE f.kind = 'refund_on_duplicate'
  AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = c.transaction_id AND d.id < c.id)

-- name: economics_jobs
-- Finished jobs per UTC day, model, provider and status, with the credits the ledger charged them net of
-- refunds: what the manifest's margin figures are built from (ops/data/seed.py prices them).
-- :param days date[]   UTC days
SELECT (j.created_at AT TIME ZONE 'UTC')::date AS day, m.name AS model, j.provider, j.status,
       count(*) AS jobs, COALESCE(sum(l.net), 0) AS credits
FROM video_jobs j
JOIN models m ON m.id = j.model_id
-- per job through idx_quota_log_job_id: three days' jobs, not the whole ledger (large has tens of millions of rows)
LEFT JOIN LATERAL (SELECT -sum(q.change) AS net FROM quota_log q
                   WHERE q.job_id = j.id AND q.reason IN ('video_generation', 'generation_refund')) l ON true
WHERE j.status IN ('completed', 'failed')
  AND j.created_at >= (SELECT min(d) FROM unnest(CAST(:days AS date[])) AS d)::timestamp AT TIME ZONE 'UTC'
  AND (j.created_at AT TIME ZONE 'UTC')::date = ANY (CAST(:days AS date[]))
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4

-- name: economics_sold
-- USD sold (price, credits) of production transactions bought by the end of each UTC day and not refunded
-- (on any copy) by then; each transaction once, its first copy.
-- :param days date[]   UTC days
SELECT d AS day, sum(p.price) AS price, sum(p.credits) AS credits
FROM unnest(CAST(:days AS date[])) AS d
JOIN purchases p ON p.purchased_at < (d + 1)::timestamp AT TIME ZONE 'UTC'
WHERE p.environment = 'Production' AND p.currency = 'USD'
  AND p.id = (SELECT min(c.id) FROM purchases c WHERE c.transaction_id = p.transaction_id)
  AND NOT EXISTS (SELECT 1 FROM purchases r WHERE r.transaction_id = p.transaction_id
                  AND r.refunded_at < (d + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY d
ORDER BY d

-- name: economics_held
-- Purchased credits still held at a moment (exclusive): per buyer min(balance, purchased net of App Store
-- refunds), at least 0, summed; and how many buyers hold some.
-- :param at timestamptz   the moment
SELECT COALESCE(sum(greatest(least(balance, paid), 0)), 0) AS credits,
       count(*) FILTER (WHERE least(balance, paid) > 0) AS holders
FROM (SELECT user_id, sum(change) AS balance,
             sum(CASE WHEN reason IN ('iap_purchase', 'iap_refund') THEN change ELSE 0 END) AS paid
      FROM quota_log
      WHERE created_at < CAST(:at AS timestamptz)
      GROUP BY user_id
      HAVING bool_or(reason = 'iap_purchase')) u

-- name: economics_cohort_ledger
-- Every ledger row of the users who bought credits in [lo, hi), oldest first: the manifest replays them in
-- Python for the breakage of that purchase week.
-- :param lo timestamptz   first moment (inclusive)
-- :param hi timestamptz   end (exclusive)
SELECT q.user_id::text AS user_id, q.id, q.change, q.reason, q.created_at
FROM quota_log q
WHERE q.user_id IN (SELECT user_id FROM quota_log WHERE reason = 'iap_purchase'
                    AND created_at >= CAST(:lo AS timestamptz) AND created_at < CAST(:hi AS timestamptz))
ORDER BY q.user_id, q.created_at, q.id
