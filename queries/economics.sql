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
