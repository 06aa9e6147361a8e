-- description: Models that lost money over the last 7 days: their provider cost exceeds the revenue of the credits they charged.
-- severity: warning
-- offender: model, provider
-- :param costs costs = PROVIDER_COSTS   the provider price list (OPSBENCH_PROVIDER_COSTS); none: no rows
--
-- The last 7 days end at the newest finished job (on a live backend, about now;
-- a demo or a backend that went quiet is judged on its last week of jobs).
-- Credits charged net of refunds are valued at the sold price per credit: the
-- average price per credit of the production purchases in the costs file's
-- currency bought by the window's end and not refunded (each transaction once),
-- one price for the week (queries/economics.sql `margin` moves it day by day, so
-- its daily margins add up to a figure a few cents away). Without a costs file
-- nothing can be judged and the check returns no rows; jobs of a model the file
-- does not price are left out (no cost is known, never a cost of zero).
WITH cfg AS (
    SELECT CAST(:costs AS jsonb) AS costs
),
win AS (
    SELECT max(j.created_at) - interval '7 days' AS lo, max(j.created_at) AS hi,
           upper(COALESCE(cfg.costs->>'currency', 'USD')) AS currency, cfg.costs
    FROM cfg, video_jobs j
    WHERE cfg.costs IS NOT NULL AND j.status IN ('completed', 'failed')
    GROUP BY cfg.costs
),
rules AS (
    SELECT r->>'model' AS model, r->>'provider' AS provider, CAST(r->>'per_generation' AS numeric) AS price,
           CAST(r->>'failed_billed' AS boolean) AS failed_billed,
           CAST(r->>'from' AS date) AS from_day, CAST(r->>'until' AS date) AS until_day
    FROM win w, jsonb_array_elements(w.costs->'rows') AS r
),
sold AS (
    SELECT sum(p.price) / NULLIF(sum(p.credits), 0) AS per_credit
    FROM win w
    JOIN purchases p ON p.purchased_at <= w.hi
    WHERE p.environment = 'Production' AND p.currency = w.currency
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
      AND NOT EXISTS (SELECT 1 FROM purchases r WHERE r.transaction_id = p.transaction_id AND r.refunded_at <= w.hi)
),
jobs AS (
    SELECT j.id, m.name AS model, j.provider, j.status, r.price, r.failed_billed
    FROM win w
    JOIN video_jobs j ON j.created_at > w.lo AND j.created_at <= w.hi
    JOIN models m ON m.id = j.model_id
    JOIN rules r ON r.model = m.name AND r.provider = j.provider
                AND (r.from_day IS NULL OR r.from_day <= (j.created_at AT TIME ZONE 'UTC')::date)
                AND (r.until_day IS NULL OR (j.created_at AT TIME ZONE 'UTC')::date < r.until_day)
    WHERE j.status IN ('completed', 'failed')
),
per_model AS (
    SELECT j.model, j.provider, count(*) AS jobs,
           COALESCE(sum(c.net), 0) AS credits,
           sum(CASE WHEN j.status = 'completed' OR j.failed_billed THEN j.price ELSE 0 END) AS provider_cost
    FROM jobs j
    LEFT JOIN (SELECT q.job_id, -sum(q.change) AS net FROM quota_log q
               WHERE q.job_id IN (SELECT id FROM jobs) AND q.reason IN ('video_generation', 'generation_refund')
               GROUP BY q.job_id) c ON c.job_id = j.id
    GROUP BY j.model, j.provider
)
SELECT m.model, m.provider, m.jobs, m.credits,
       round(m.credits * s.per_credit, 2) AS revenue,
       round(m.provider_cost, 2) AS provider_cost,
       round(m.credits * s.per_credit - m.provider_cost, 2) AS margin,
       round((m.credits * s.per_credit - m.provider_cost) / m.jobs, 4) AS margin_per_generation
FROM per_model m
CROSS JOIN sold s
WHERE m.credits * s.per_credit - m.provider_cost < 0
ORDER BY m.credits * s.per_credit - m.provider_cost, m.model, m.provider
