-- Unit economics: what each model earns after its provider's cost (issue 28).
--
-- Rules shared by the queries in this file:
--   * Credits are valued at the SOLD PRICE PER CREDIT: the average price per
--     purchased credit (sum of price / sum of credits) over every production
--     purchase in `currency` made by the end of the day and not refunded by
--     then, with revenue.sql's transaction rules (each transaction_id once, its
--     first copy; a refund on any copy refunds the transaction). Average, not
--     FIFO by user: a credit carries no label of the pack it came from once it
--     is in a balance, and the average is what an accountant's weighted-average
--     inventory method gives; it moves slowly and needs no per-user replay.
--     Every credit charged is valued at it, including credits that came from a
--     signup bonus (the issue's definition: the revenue those credits represent).
--   * Credits charged net of refunds come from the ledger (quota_log): a job's
--     video_generation debits less its generation_refund credits, whenever
--     the refund was written. The job's day is its creation's local day in `tz`.
--   * Only finished jobs (completed, failed) count; a pending job has no cost yet.
--   * Provider cost comes from the founder's file (OPSBENCH_PROVIDER_COSTS,
--     ops/core/costs.py): a completed job costs the price of the row covering
--     its creation's UTC day; a failed job costs it only where failed_billed.
--     No file: provider_cost and the margins are NULL and cost_note says
--     "provider costs not configured", never a pretended cost of zero.
--   * These read the raw tables (no rollups yet).


-- name: margin
-- Per local day, model and provider: jobs, credits charged net of refunds, the revenue they represent, provider cost, gross margin.
-- :param start date                 first local day (inclusive)
-- :param end date                   last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param currency text = USD        currency of the sold price per credit (and of the provider costs)
-- :param costs costs = PROVIDER_COSTS  provider price list (OPSBENCH_PROVIDER_COSTS); none: costs NULL
--
-- Columns:
--   day                    local day in tz (of the job's creation)
--   model, provider        models.name and video_jobs.provider
--   jobs                   finished jobs (completed + failed)
--   failed                 of which failed
--   credits                credits charged net of refunds (ledger)
--   price_per_credit       sold price per credit at the end of the day (see above)
--   revenue                credits x price_per_credit
--   provider_cost          what the provider bills for these jobs; NULL: see cost_note
--   gross_margin           revenue - provider_cost
--   margin_per_generation  gross_margin / jobs
--   cost_note              NULL, or why there is no cost: "provider costs not configured",
--                          "no price for this model", "costs are in EUR"
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                     AS first_day,
           CAST(:end AS date)                                                       AS last_day,
           CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           upper(CAST(:currency AS text))                                           AS currency,
           CAST(:costs AS jsonb)                                                    AS costs
),
rules AS (
    SELECT r->>'model' AS model, r->>'provider' AS provider, CAST(r->>'per_generation' AS numeric) AS price,
           CAST(r->>'failed_billed' AS boolean) AS failed_billed,
           CAST(r->>'from' AS date) AS from_day, CAST(r->>'until' AS date) AS until_day
    FROM win w, jsonb_array_elements(COALESCE(w.costs->'rows', '[]'::jsonb)) AS r
),
-- each production transaction once (its first copy), with the earliest refund of any copy
canon AS (
    SELECT p.price, p.credits, p.purchased_at, rf.refunded_at
    FROM win w
    JOIN purchases p ON p.purchased_at < w.hi
    LEFT JOIN LATERAL (SELECT min(r.refunded_at) AS refunded_at FROM purchases r
                       WHERE r.transaction_id = p.transaction_id AND r.refunded_at IS NOT NULL) rf ON true
    WHERE p.environment = 'Production'
      AND p.currency = w.currency
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
),
-- price and credits in and out by local day; everything before the window lands on the day before it
moves AS (
    SELECT greatest((c.purchased_at AT TIME ZONE w.tz)::date, w.first_day - 1) AS day, c.price, c.credits
    FROM canon c, win w
    UNION ALL
    SELECT greatest((c.refunded_at AT TIME ZONE w.tz)::date, w.first_day - 1), -c.price, -c.credits
    FROM canon c, win w
    WHERE c.refunded_at < w.hi
),
per_credit AS (
    SELECT d.day,
           sum(sum(m.price)) OVER (ORDER BY d.day) / NULLIF(sum(sum(m.credits)) OVER (ORDER BY d.day), 0) AS price
    FROM win w
    CROSS JOIN LATERAL generate_series(-1, w.last_day - w.first_day) AS i
    CROSS JOIN LATERAL (SELECT w.first_day + i AS day) d
    LEFT JOIN moves m ON m.day = d.day
    GROUP BY d.day
),
jobs AS (
    SELECT j.id, (j.created_at AT TIME ZONE w.tz)::date AS day, (j.created_at AT TIME ZONE 'UTC')::date AS utc_day,
           m.name AS model, j.provider, j.status
    FROM win w
    JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    JOIN models m ON m.id = j.model_id
    WHERE j.status IN ('completed', 'failed')
),
charged AS (
    SELECT q.job_id, -sum(q.change) AS credits
    FROM quota_log q
    WHERE q.job_id IN (SELECT id FROM jobs)
      AND q.reason IN ('video_generation', 'generation_refund')
    GROUP BY q.job_id
),
priced AS (
    SELECT j.day, j.model, j.provider, j.status, COALESCE(c.credits, 0) AS credits, r.price IS NOT NULL AS has_price,
           CASE WHEN j.status = 'completed' OR r.failed_billed THEN r.price ELSE 0 END AS cost
    FROM jobs j
    LEFT JOIN charged c ON c.job_id = j.id
    LEFT JOIN rules r ON r.model = j.model AND r.provider = j.provider
                     AND (r.from_day IS NULL OR r.from_day <= j.utc_day)
                     AND (r.until_day IS NULL OR j.utc_day < r.until_day)
),
agg AS (
    SELECT x.day, x.model, x.provider, count(*) AS jobs, count(*) FILTER (WHERE x.status = 'failed') AS failed,
           sum(x.credits) AS credits, bool_and(x.has_price) AS priced, sum(x.cost) AS cost
    FROM priced x
    GROUP BY x.day, x.model, x.provider
),
costed AS (
    SELECT a.*, pc.price AS price_per_credit, a.credits * pc.price AS revenue,
           CASE WHEN w.costs IS NULL THEN 'provider costs not configured'
                WHEN upper(COALESCE(w.costs->>'currency', 'USD')) <> w.currency
                    THEN 'costs are in ' || upper(w.costs->>'currency')
                WHEN NOT a.priced THEN 'no price for this model' END AS cost_note
    FROM agg a
    CROSS JOIN win w
    LEFT JOIN per_credit pc ON pc.day = a.day
)
SELECT day, model, provider, jobs, failed, credits,
       CAST(price_per_credit AS float8) AS price_per_credit,
       CAST(revenue AS float8) AS revenue,
       CAST(CASE WHEN cost_note IS NULL THEN cost END AS float8) AS provider_cost,
       CAST(CASE WHEN cost_note IS NULL THEN revenue - cost END AS float8) AS gross_margin,
       CAST(CASE WHEN cost_note IS NULL THEN (revenue - cost) / jobs END AS float8) AS margin_per_generation,
       cost_note
FROM costed
ORDER BY day, model, provider


-- name: models
-- The backend's models with their provider and price in credits (the names a provider costs file uses).
SELECT name AS model, provider, cost_per_generation AS credits, is_active
FROM models
ORDER BY provider, name


-- name: liability
-- Per local day: purchased credits still unspent at the day's end and what they were sold for (deferred revenue).
-- :param start date                 first local day (inclusive)
-- :param end date                   last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param currency text = USD        currency of the sold price per credit
--
-- Purchased credits come from the ledger's reasons: iap_purchase grants them, iap_refund takes them back;
-- signup_bonus, admin_refund and admin_adjustment are free credits and never a liability. A user spends
-- free credits first (the conservative reading for an accountant: what is left is paid for), so a user's
-- outstanding purchased credits are min(balance, purchased credits net of App Store refunds), never below 0.
-- They are valued at the sold price per credit at the day's end (the average, see the file's header).
--
-- Columns:
--   day                    local day in tz
--   holders                users holding purchased credits at the day's end
--   outstanding_credits    purchased credits unspent at the day's end
--   price_per_credit       sold price per credit at the day's end
--   liability              outstanding_credits x price_per_credit
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                     AS first_day,
           CAST(:end AS date)                                                       AS last_day,
           CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           upper(CAST(:currency AS text))                                           AS currency
),
grid AS (
    SELECT w.first_day + i AS day FROM win w, generate_series(-1, w.last_day - w.first_day) AS i
),
payers AS (
    SELECT DISTINCT q.user_id FROM win w JOIN quota_log q ON q.created_at < w.hi WHERE q.reason = 'iap_purchase'
),
moves AS (
    SELECT q.user_id, greatest((q.created_at AT TIME ZONE w.tz)::date, w.first_day - 1) AS day,
           sum(q.change) AS balance,
           COALESCE(sum(q.change) FILTER (WHERE q.reason IN ('iap_purchase', 'iap_refund')), 0) AS paid
    FROM win w
    JOIN quota_log q ON q.created_at < w.hi
    WHERE q.user_id IN (SELECT user_id FROM payers)
    GROUP BY 1, 2
),
running AS (
    SELECT g.day, p.user_id,
           sum(COALESCE(m.balance, 0)) OVER (PARTITION BY p.user_id ORDER BY g.day) AS balance,
           sum(COALESCE(m.paid, 0)) OVER (PARTITION BY p.user_id ORDER BY g.day) AS paid
    FROM payers p
    CROSS JOIN grid g
    LEFT JOIN moves m ON m.user_id = p.user_id AND m.day = g.day
),
outstanding AS (
    SELECT day, count(*) FILTER (WHERE least(balance, paid) > 0) AS holders,
           COALESCE(sum(greatest(least(balance, paid), 0)), 0) AS credits
    FROM running
    GROUP BY day
),
canon AS (
    SELECT p.price, p.credits, p.purchased_at, rf.refunded_at
    FROM win w
    JOIN purchases p ON p.purchased_at < w.hi
    LEFT JOIN LATERAL (SELECT min(r.refunded_at) AS refunded_at FROM purchases r
                       WHERE r.transaction_id = p.transaction_id AND r.refunded_at IS NOT NULL) rf ON true
    WHERE p.environment = 'Production'
      AND p.currency = w.currency
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
),
sold AS (
    SELECT greatest((c.purchased_at AT TIME ZONE w.tz)::date, w.first_day - 1) AS day, c.price, c.credits
    FROM canon c, win w
    UNION ALL
    SELECT greatest((c.refunded_at AT TIME ZONE w.tz)::date, w.first_day - 1), -c.price, -c.credits
    FROM canon c, win w
    WHERE c.refunded_at < w.hi
),
per_credit AS (
    SELECT g.day,
           sum(sum(s.price)) OVER (ORDER BY g.day) / NULLIF(sum(sum(s.credits)) OVER (ORDER BY g.day), 0) AS price
    FROM grid g
    LEFT JOIN sold s ON s.day = g.day
    GROUP BY g.day
)
SELECT o.day, o.holders, o.credits AS outstanding_credits,
       CAST(pc.price AS float8) AS price_per_credit,
       CAST(o.credits * pc.price AS float8) AS liability
FROM outstanding o
JOIN per_credit pc ON pc.day = o.day
CROSS JOIN win w
WHERE o.day >= w.first_day
ORDER BY o.day


-- name: breakage
-- Per purchase cohort (local week of the purchase): the share of its purchased credits still unspent 30, 60 and 90 days later.
-- :param start date                 first local day of the purchases (inclusive)
-- :param end date                   last local day of the purchases (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the weeks are cut in (weeks start on Monday)
-- :param as_of timestamptz = null   the moment the data ends (default: the newest ledger row)
--
-- Purchases are the ledger's iap_purchase rows. Within a user's purchased credits the oldest are spent
-- first (FIFO by purchase), after the free ones (see `liability`); an App Store refund takes purchased
-- credits back like a spend. So a purchase of c credits, with A purchased credits granted before it,
-- has min(c, max(0, A + c - gone)) unspent at time T, where gone = purchased credits granted by T less
-- the user's purchased credits still held at T (min(balance, purchased net of refunds), at least 0).
-- A horizon a purchase of the cohort has not reached by as_of leaves that share NULL (never a guess).
--
-- Columns:
--   cohort_week        Monday of the purchases' local week
--   purchases, credits purchases (ledger rows) and the credits they granted
--   unspent_30/60/90   share of the cohort's credits unspent 30/60/90 days after each purchase
WITH win AS NOT MATERIALIZED (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           CAST(:tz AS text)                                                        AS tz,
           COALESCE(CAST(:as_of AS timestamptz), (SELECT max(created_at) FROM quota_log)) AS as_of
),
bought AS (
    SELECT q.id, q.user_id, q.change AS credits, q.created_at,
           date_trunc('week', q.created_at AT TIME ZONE w.tz)::date AS cohort_week,
           (SELECT COALESCE(sum(e.change), 0) FROM quota_log e
            WHERE e.user_id = q.user_id AND e.reason = 'iap_purchase'
              AND (e.created_at, e.id) < (q.created_at, q.id)) AS before
    FROM win w
    JOIN quota_log q ON q.created_at >= w.lo AND q.created_at < w.hi
    WHERE q.reason = 'iap_purchase' AND q.change > 0
),
horizons AS (
    SELECT b.*, h.n, b.created_at + h.n * interval '1 day' AS at, b.created_at + h.n * interval '1 day' <= w.as_of AS reached
    FROM bought b CROSS JOIN win w CROSS JOIN (VALUES (30), (60), (90)) AS h (n)
),
held AS (
    SELECT h.*, s.granted, greatest(least(s.balance, s.paid), 0) AS still
    FROM horizons h
    CROSS JOIN LATERAL (
        SELECT COALESCE(sum(e.change), 0) AS balance,
               COALESCE(sum(e.change) FILTER (WHERE e.reason IN ('iap_purchase', 'iap_refund')), 0) AS paid,
               COALESCE(sum(e.change) FILTER (WHERE e.reason = 'iap_purchase'), 0) AS granted
        FROM quota_log e
        WHERE e.user_id = h.user_id AND e.created_at <= h.at
    ) s
),
unspent AS (
    SELECT cohort_week, id, n, credits, reached,
           least(credits, greatest(0, before + credits - (granted - still))) AS unspent
    FROM held
)
SELECT cohort_week, count(*) / 3 AS purchases, sum(credits) / 3 AS credits,
       CAST(CASE WHEN bool_and(reached) FILTER (WHERE n = 30)
                 THEN CAST(sum(unspent) FILTER (WHERE n = 30) AS numeric) / sum(credits) FILTER (WHERE n = 30) END AS float8) AS unspent_30,
       CAST(CASE WHEN bool_and(reached) FILTER (WHERE n = 60)
                 THEN CAST(sum(unspent) FILTER (WHERE n = 60) AS numeric) / sum(credits) FILTER (WHERE n = 60) END AS float8) AS unspent_60,
       CAST(CASE WHEN bool_and(reached) FILTER (WHERE n = 90)
                 THEN CAST(sum(unspent) FILTER (WHERE n = 90) AS numeric) / sum(credits) FILTER (WHERE n = 90) END AS float8) AS unspent_90
FROM unspent
GROUP BY cohort_week
ORDER BY cohort_week
