-- Demo data generator, step 2 of 5: purchases, jobs, ledger and logs for the
-- users with index in [lo, hi). ops/data/seed.py runs this file once per chunk so
-- the large scale (1M users) never builds one giant intermediate result.

-- name: clear_purchases
-- Empty the per-chunk scratch tables.
TRUNCATE gen_purchases

-- name: clear_jobs
-- Empty the per-chunk scratch tables.
TRUNCATE gen_jobs

-- name: purchases_plan
-- Purchases: product mix, 4 % TestFlight (Sandbox), 3 % of production refunded 1-14 days later.
-- :param lo int   first user index of the chunk
-- :param hi int   one past the last user index
INSERT INTO gen_purchases (user_idx, k, user_id, transaction_id, product_id, credits, price, environment,
                           purchased_at, refunded_at)
SELECT x.user_idx, x.k, x.user_id, x.transaction_id, pr.id, pr.credits, pr.price, x.environment, x.purchased_at,
       CASE WHEN x.environment = 'Production' AND x.r_refund < 0.03
             AND x.purchased_at + (1 + 13 * x.r_refund_delay) * interval '1 day' < x.end_at
            THEN x.purchased_at + (1 + 13 * x.r_refund_delay) * interval '1 day' END
FROM (
    SELECT u.idx AS user_idx, k, u.id AS user_id,
           '2000' || lpad((u.idx::bigint * 32 + k)::text, 12, '0') AS transaction_id,  -- k <= 20: unique
           width_bucket(pg_temp.rnd2(p.seed, 'product', u.idx, k), p.product_cuts) AS product_n,
           CASE WHEN pg_temp.rnd2(p.seed, 'sandbox', u.idx, k) < 0.04 THEN 'Sandbox' ELSE 'Production' END AS environment,
           -- exponential delay after signup; purchases that would fall after the window never happened
           u.created_at + (-ln(1.0 - pg_temp.rnd2(p.seed, 'purchased_at', u.idx, k))) * u.tau_days * interval '1 day'
               + interval '2 minutes' * pg_temp.rnd2(p.seed, 'purchase_delay', u.idx, k) AS purchased_at,
           pg_temp.rnd2(p.seed, 'refund', u.idx, k) AS r_refund,
           pg_temp.rnd2(p.seed, 'refund_delay', u.idx, k) AS r_refund_delay,
           p.end_at
    FROM seed_params p
    JOIN gen_users u ON u.idx >= CAST(:lo AS int) AND u.idx < CAST(:hi AS int) AND u.n_purchases > 0
    CROSS JOIN LATERAL generate_series(1, u.n_purchases) AS k
) x
JOIN gen_products pr ON pr.n = x.product_n
CROSS JOIN seed_params p
WHERE x.purchased_at < x.end_at
  -- the planted purchase gap: these purchases never happened (so the credit budget below never had them)
  AND NOT (x.purchased_at >= p.gap_start AND x.purchased_at < p.gap_end)

-- name: purchases_insert
-- The backend's purchases (created_at: receipt verified two seconds later).
INSERT INTO purchases (transaction_id, user_id, product_id, credits, price, currency, environment,
                       purchased_at, refunded_at, created_at)
SELECT transaction_id, user_id, product_id, credits, price, 'USD', environment, purchased_at, refunded_at,
       purchased_at + interval '2 seconds'
FROM gen_purchases
ORDER BY purchased_at, transaction_id

-- name: jobs_plan
-- Jobs: activity decays after signup (none after the window), busier weekends, provider failure rates, the spike
-- (every job fails for its first two hours, then 35 % more of them for the rest of the day),
-- and a credit budget (signup bonus + kept purchases) so no healthy balance goes negative.
-- :param lo int   first user index of the chunk
-- :param hi int   one past the last user index
INSERT INTO gen_jobs (user_idx, k, id, user_id, model_id, provider, failed, spiked, credits_used, error_code,
                      prompt, idempotency_key, created_at, started_at, completed_at)
-- MATERIALIZED: each candidate's draws are computed once; inlined, PostgreSQL evaluated the created_at
-- expression (a hash and a logarithm) again for every filter, sort key and spike test that names it.
-- Only the draws the budget needs are made for every candidate; the rest (error code, duration, queue,
-- prompt) only for the jobs kept (about half), in `drawn`.
WITH cand AS MATERIALIZED (
    SELECT u.idx AS user_idx, k, u.id AS user_id,
           -- activity decays after signup with the user's own time scale; later candidates are cut below
           u.created_at + (-ln(1.0 - pg_temp.rnd2(p.seed, 'job_at', u.idx, k))) * u.tau_days * interval '1 day'
               AS created_at,
           CASE WHEN pg_temp.rnd2(p.seed, 'job_fav', u.idx, k) < 0.7 THEN u.fav_model
                ELSE width_bucket(pg_temp.rnd2(p.seed, 'job_model', u.idx, k), p.model_cuts) END AS model_n,
           pg_temp.rnd2(p.seed, 'job_dow', u.idx, k) AS r_dow,
           pg_temp.rnd2(p.seed, 'job_fail', u.idx, k) AS r_fail,
           pg_temp.rnd2(p.seed, 'job_spike', u.idx, k) AS r_spike
    FROM seed_params p
    JOIN gen_users u ON u.idx >= CAST(:lo AS int) AND u.idx < CAST(:hi AS int)
    CROSS JOIN LATERAL generate_series(1, u.n_cand) AS k
), shaped AS (
    SELECT c.*, m.id AS model_id, m.provider, m.cost, m.base_secs,
           c.r_fail < m.fail_rate AS base_failed,
           c.r_fail >= m.fail_rate AND m.provider = p.spike_provider
               AND c.created_at >= p.spike_start AND c.created_at < p.spike_start + interval '1 day'
               AND (c.r_spike < 0.35 OR c.created_at < p.spike_outage_end) AS spiked
    FROM cand c
    JOIN gen_models m ON m.n = c.model_n
    CROSS JOIN seed_params p
    -- weekly seasonality: keep all weekend candidates, 90 % on Fridays, 80 % otherwise
    WHERE c.created_at < p.end_at
      AND c.r_dow < CASE extract(isodow FROM c.created_at AT TIME ZONE 'UTC')
                        WHEN 6 THEN 1.0 WHEN 7 THEN 1.0 WHEN 5 THEN 0.9 ELSE 0.8 END
), budget AS (
    SELECT u.idx AS user_idx,
           p.bonus + coalesce(sum(gp.credits) FILTER (WHERE gp.refunded_at IS NULL), 0) AS budget
    FROM seed_params p
    JOIN gen_users u ON u.idx >= CAST(:lo AS int) AND u.idx < CAST(:hi AS int)
    LEFT JOIN gen_purchases gp ON gp.user_idx = u.idx
    GROUP BY u.idx, p.bonus
), spent AS (
    -- a failed charged job is refunded, so only completed jobs spend the budget
    SELECT s.*, sum(CASE WHEN s.base_failed OR s.spiked THEN 0 ELSE s.cost END)
                    OVER (PARTITION BY s.user_idx ORDER BY s.created_at, s.k) AS spent
    FROM shaped s
), drawn AS MATERIALIZED (
    SELECT s.*, s.base_failed OR s.spiked AS failed,
           pg_temp.rnd2(p.seed, 'job_code', s.user_idx, s.k) AS r_code,
           pg_temp.rnd2(p.seed, 'job_duration', s.user_idx, s.k) AS r_dur,
           pg_temp.rnd2(p.seed, 'job_queue', s.user_idx, s.k) AS r_queue,
           pg_temp.rnd2(p.seed, 'job_prompt', s.user_idx, s.k) AS r_prompt
    FROM spent s
    JOIN budget b ON b.user_idx = s.user_idx
    CROSS JOIN seed_params p
    WHERE s.spent <= b.budget
), coded AS (
    SELECT d.*,
           CASE WHEN d.spiked THEN 'ERR_5002'
                WHEN d.base_failed THEN (ARRAY['ERR_5001', 'ERR_5002', 'ERR_5003', 'ERR_6001', 'ERR_6002', 'ERR_6003'])
                    [width_bucket(d.r_code, ARRAY[0, 0.45, 0.70, 0.85, 0.90, 0.95]::float8[])] END AS error_code
    FROM drawn d
), costed AS (
    SELECT c.*,
           -- ERR_5003: the provider rejects the prompt before anything is charged
           CASE WHEN c.error_code = 'ERR_5003' THEN 0 ELSE c.cost END AS credits_used,
           (1 + 14 * c.r_queue) * interval '1 second' AS queue,
           CASE WHEN NOT c.failed THEN c.base_secs * (0.5 + 2.0 * c.r_dur * c.r_dur)
                WHEN c.error_code = 'ERR_5001' THEN 300 + 30 * c.r_dur
                WHEN c.error_code = 'ERR_5003' THEN 1 + 2 * c.r_dur
                ELSE 5 + 40 * c.r_dur END * interval '1 second' AS duration
    FROM coded c
)
SELECT s.user_idx, s.k, pg_temp.uid(p.seed, 'job', s.user_idx, s.k), s.user_id, s.model_id, s.provider,
       s.failed, s.spiked, s.credits_used, s.error_code,
       (ARRAY['a corgi surfing at sunset', 'neon city in the rain, drone shot', 'paper boat on a river',
              'astronaut walking a dog on the moon', 'time-lapse of a blooming rose', 'a dragon over snowy mountains',
              'product shot of a sneaker, studio light', 'waves crashing on black sand', 'cat DJ at a party',
              'old film look, Istanbul ferry'])[1 + floor(s.r_prompt * 10)::int],
       'idem_' || left(md5(p.seed || '/idem/' || s.user_idx || '/' || s.k), 24),
       s.created_at, s.created_at + s.queue, s.created_at + s.queue + s.duration
FROM costed s
CROSS JOIN seed_params p

-- name: jobs_insert
-- The backend's video_jobs.
INSERT INTO video_jobs (id, user_id, model_id, provider, status, credits_used, prompt, error_code, error_message,
                        idempotency_key, created_at, started_at, completed_at)
SELECT id, user_id, model_id, provider, CASE WHEN failed THEN 'failed' ELSE 'completed' END, credits_used, prompt,
       error_code,
       CASE error_code WHEN 'ERR_5001' THEN 'Provider timeout' WHEN 'ERR_5002' THEN 'Provider unavailable'
                       WHEN 'ERR_5003' THEN 'Provider rejected request' WHEN 'ERR_6001' THEN 'Database error'
                       WHEN 'ERR_6002' THEN 'Storage error' WHEN 'ERR_6003' THEN 'Internal server error' END,
       idempotency_key, created_at, started_at, completed_at
FROM gen_jobs
ORDER BY created_at, id

-- name: spike_count
-- Remember how many failures the spike added.
UPDATE gen_stats SET spike_extra_failures = spike_extra_failures + (SELECT count(*) FROM gen_jobs WHERE spiked)

-- name: ledger_insert
-- The credit ledger of the chunk: bonus, purchases, App Store refunds, charges, job refunds.
-- :param lo int   first user index of the chunk
-- :param hi int   one past the last user index
INSERT INTO quota_log (user_id, change, reason, transaction_id, job_id, created_at)
SELECT user_id, change, reason, transaction_id, job_id, created_at
FROM (
    SELECT u.id AS user_id, p.bonus AS change, 'signup_bonus' AS reason, NULL::text AS transaction_id,
           NULL::uuid AS job_id, u.created_at
    FROM gen_users u, seed_params p
    WHERE u.idx >= CAST(:lo AS int) AND u.idx < CAST(:hi AS int)
    UNION ALL
    SELECT user_id, credits, 'iap_purchase', transaction_id, NULL, purchased_at + interval '2 seconds'
    FROM gen_purchases
    UNION ALL
    SELECT user_id, -credits, 'iap_refund', transaction_id, NULL, refunded_at
    FROM gen_purchases WHERE refunded_at IS NOT NULL
    UNION ALL
    SELECT user_id, -credits_used, 'video_generation', NULL, id, created_at
    FROM gen_jobs WHERE credits_used > 0
    UNION ALL
    SELECT user_id, credits_used, 'generation_refund', NULL, id, completed_at
    FROM gen_jobs WHERE failed AND credits_used > 0
) l
ORDER BY created_at, user_id, reason, transaction_id, job_id

-- name: errors_insert
-- error_log: every failed job (generate-video) plus client errors (4xxx) spread over each user's life.
-- Rows within two hours of the 90-day cleanup boundary are left out so the count of old rows is stable.
-- :param lo int   first user index of the chunk
-- :param hi int   one past the last user index
INSERT INTO error_log (user_id, error_code, endpoint, request_data, error_details, created_at)
SELECT e.user_id, e.error_code, e.endpoint, e.request_data, e.error_details, e.created_at
FROM (
    SELECT j.user_id, j.error_code, 'generate-video' AS endpoint,
           jsonb_build_object('model_id', j.model_id, 'job_id', j.id) AS request_data,
           jsonb_build_object('provider', j.provider,
                              'status', CASE WHEN j.error_code LIKE 'ERR_5%' THEN 502 ELSE 500 END) AS error_details,
           j.completed_at AS created_at
    FROM gen_jobs j
    WHERE j.failed
    UNION ALL
    SELECT CASE WHEN x.code = 'ERR_4005' THEN NULL ELSE x.user_id END, x.code,
           CASE x.code WHEN 'ERR_4005' THEN 'user-profile' WHEN 'ERR_4004' THEN 'generate-video'
                       WHEN 'ERR_4002' THEN 'get-models' ELSE 'generate-video' END,
           jsonb_build_object('n', x.k), jsonb_build_object('status', CASE WHEN x.code = 'ERR_4005' THEN 401 ELSE 400 END),
           x.created_at
    FROM (
        SELECT u.id AS user_id, k,
               (ARRAY['ERR_4001', 'ERR_4003', 'ERR_4004', 'ERR_4005', 'ERR_4002'])
                   [width_bucket(pg_temp.rnd2(p.seed, 'err_code', u.idx, k), ARRAY[0, 0.40, 0.65, 0.85, 0.95]::float8[])] AS code,
               u.created_at + (p.end_at - u.created_at) * pg_temp.rnd2(p.seed, 'err_at', u.idx, k) AS created_at
        FROM seed_params p
        JOIN gen_users u ON u.idx >= CAST(:lo AS int) AND u.idx < CAST(:hi AS int)
        CROSS JOIN LATERAL generate_series(1, floor(-ln(1.0 - pg_temp.rnd(p.seed, 'n_errors', u.idx)) * 0.6)::int) AS k
    ) x
) e
CROSS JOIN seed_params p
WHERE e.created_at NOT BETWEEN p.anchor - interval '90 days' - interval '2 hours'
                           AND p.anchor - interval '90 days' + interval '2 hours'
ORDER BY e.created_at, e.user_id, e.error_code

-- name: rate_limits_insert
-- rate_limit_log: one row per job and purchase in the last 7 days, plus days 7-12 that a stalled
-- cleanup left behind; nothing within two hours of the 7-day boundary.
-- :param lo int   first user index of the chunk
-- :param hi int   one past the last user index
INSERT INTO rate_limit_log (ip_address, action, user_id, created_at)
SELECT u.ip, x.action, x.user_id, x.created_at
FROM (
    SELECT user_idx, user_id, 'video_generation' AS action, created_at FROM gen_jobs
    UNION ALL
    SELECT user_idx, user_id, 'credit_purchase', purchased_at FROM gen_purchases
) x
JOIN gen_users u ON u.idx = x.user_idx
CROSS JOIN seed_params p
WHERE x.created_at >= p.anchor - interval '7 days' + interval '2 hours'
   OR (x.created_at >= p.anchor - interval '12 days' AND x.created_at <= p.anchor - interval '7 days' - interval '2 hours')
ORDER BY x.created_at, x.user_id, x.action

-- name: idempotency_insert
-- idempotency_keys (24 h expiry) for jobs of the last 22 hours, plus days-old keys a stalled
-- cleanup left behind (created 26 h - 10 days ago, so expired at least 2 h before the anchor).
INSERT INTO idempotency_keys (key, user_id, endpoint, job_id, response, created_at, expires_at)
SELECT j.idempotency_key, j.user_id, 'generate-video', j.id,
       jsonb_build_object('job_id', j.id, 'status', 'pending'), j.created_at, j.created_at + interval '24 hours'
FROM gen_jobs j
CROSS JOIN seed_params p
WHERE j.created_at >= p.anchor - interval '22 hours'
   OR (j.created_at >= p.anchor - interval '10 days' AND j.created_at <= p.anchor - interval '26 hours')
ORDER BY j.created_at, j.idempotency_key
