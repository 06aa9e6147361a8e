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
-- include: credits_sold,
per_credit AS (
    SELECT d.day,
           sum(sum(m.price)) OVER (ORDER BY d.day) / NULLIF(sum(sum(m.credits)) OVER (ORDER BY d.day), 0) AS price
    FROM win w
    CROSS JOIN LATERAL generate_series(-1, w.last_day - w.first_day) AS i
    CROSS JOIN LATERAL (SELECT w.first_day + i AS day) d
    LEFT JOIN credits_sold m ON m.day = d.day
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
    FROM win w
    -- a job's debit is written when it is created and its refund later: bounding the ledger by time (an hour
    -- of slack for a debit written just before the job row) reads the window's rows, not the whole ledger
    JOIN quota_log q ON q.created_at >= w.lo - interval '1 hour'
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
-- include: credits_sold,
per_credit AS (
    SELECT g.day,
           sum(sum(s.price)) OVER (ORDER BY g.day) / NULLIF(sum(sum(s.credits)) OVER (ORDER BY g.day), 0) AS price
    FROM grid g
    LEFT JOIN credits_sold s ON s.day = g.day
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
    SELECT b.*, h.n, b.created_at + h.n * interval '1 day' AS at,
           b.created_at + h.n * interval '1 day' <= w.as_of AS reached
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
                 THEN CAST(sum(unspent) FILTER (WHERE n = 30) AS numeric) / sum(credits) FILTER (WHERE n = 30)
            END AS float8) AS unspent_30,
       CAST(CASE WHEN bool_and(reached) FILTER (WHERE n = 60)
                 THEN CAST(sum(unspent) FILTER (WHERE n = 60) AS numeric) / sum(credits) FILTER (WHERE n = 60)
            END AS float8) AS unspent_60,
       CAST(CASE WHEN bool_and(reached) FILTER (WHERE n = 90)
                 THEN CAST(sum(unspent) FILTER (WHERE n = 90) AS numeric) / sum(credits) FILTER (WHERE n = 90)
            END AS float8) AS unspent_90
FROM unspent
GROUP BY cohort_week
ORDER BY cohort_week


-- name: cohorts
-- Per signup week and week since signup: cumulative net revenue, proceeds and generation cost per user, and the payback week.
-- :param start date                 first local signup day (inclusive)
-- :param end date                   last local signup day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the weeks are cut in (weeks start on Monday)
-- :param weeks int = 12             weeks since signup to show
-- :param currency text = USD        currency of the money (other currencies are left out)
-- :param commission commission = COMMISSION  the store's commission (OPSBENCH_COMMISSION); none: proceeds NULL
-- :param costs costs = PROVIDER_COSTS  provider price list (OPSBENCH_PROVIDER_COSTS); none: cost NULL
-- :param as_of timestamptz = null   the moment the data ends (default: the newest ledger row)
--
-- A cohort is the users (not admins) who signed up in one local week. A user's week n since signup is
-- [signup + 7n days, signup + 7(n+1) days). Money follows revenue.sql's rules (production, each transaction
-- once, a refund on any copy, dated when the money went back); proceeds follow the commission file as there.
-- Generation cost is the provider cost of the cohort's finished jobs (as in `margin`). Only weeks every user
-- of the cohort has lived through by as_of are shown.
--
-- Columns:
--   cohort_week            Monday of the signup week
--   users                  users in the cohort
--   week                   weeks since signup (0 = the first seven days)
--   net_per_user           cumulative gross - refunds, per user of the cohort
--   proceeds_per_user      cumulative proceeds per user; NULL without a commission file
--   cost_per_user          cumulative provider cost of their generations per user; NULL without a costs file
--                          (or when a model they used has no price)
--   payback_week           the first week cumulative proceeds reach the cumulative cost; NULL if not (yet)
WITH win AS NOT MATERIALIZED (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           CAST(:tz AS text)                                                        AS tz,
           CAST(:weeks AS int)                                                      AS weeks,
           upper(CAST(:currency AS text))                                           AS currency,
           CAST(:commission AS jsonb)                                               AS commission,
           CAST(:costs AS jsonb)                                                    AS costs,
           COALESCE(CAST(:as_of AS timestamptz), (SELECT max(created_at) FROM quota_log)) AS as_of
),
members AS (
    SELECT u.id, u.created_at AS signup, date_trunc('week', u.created_at AT TIME ZONE w.tz)::date AS cohort_week
    FROM win w
    JOIN users u ON u.created_at >= w.lo AND u.created_at < w.hi
    WHERE NOT u.is_admin
),
cohorts AS (
    SELECT cohort_week, count(*) AS users, max(signup) AS last_signup FROM members GROUP BY cohort_week
),
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM win w, jsonb_array_elements(COALESCE(w.commission->'rules', '[]'::jsonb)) AS r
),
bought AS (
    SELECT m.cohort_week, m.signup, p.purchased_at, rf.refunded_at, p.price,
           p.price * (1 - COALESCE(CAST(w.commission->'tax'->>p.currency AS numeric), 0))
                   * (1 - COALESCE(k.rate, CAST(w.commission->>'default' AS numeric))) AS proceeds
    FROM win w
    JOIN members m ON true
    JOIN purchases p ON p.user_id = m.id AND p.purchased_at <= w.as_of
    LEFT JOIN LATERAL (SELECT min(r.refunded_at) AS refunded_at FROM purchases r
                       WHERE r.transaction_id = p.transaction_id AND r.refunded_at IS NOT NULL) rf ON true
    LEFT JOIN LATERAL (
        SELECT x.rate FROM rules x
        WHERE (x.product_id IS NULL OR x.product_id = p.product_id)
          AND (x.from_day IS NULL OR x.from_day <= (p.purchased_at AT TIME ZONE w.tz)::date)
          AND (x.until_day IS NULL OR (p.purchased_at AT TIME ZONE w.tz)::date < x.until_day)
        ORDER BY x.product_id IS NOT NULL DESC, (x.from_day IS NOT NULL OR x.until_day IS NOT NULL) DESC
        LIMIT 1
    ) k ON true
    WHERE p.environment = 'Production'
      AND p.currency = w.currency
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
),
money AS (
    SELECT cohort_week, floor(extract(epoch FROM purchased_at - signup) / 604800)::int AS week,
           price AS net, proceeds
    FROM bought
    UNION ALL
    SELECT b.cohort_week, floor(extract(epoch FROM b.refunded_at - b.signup) / 604800)::int, -b.price, -b.proceeds
    FROM bought b, win w
    WHERE b.refunded_at <= w.as_of
),
cost_rules AS (
    SELECT r->>'model' AS model, r->>'provider' AS provider, CAST(r->>'per_generation' AS numeric) AS price,
           CAST(r->>'failed_billed' AS boolean) AS failed_billed,
           CAST(r->>'from' AS date) AS from_day, CAST(r->>'until' AS date) AS until_day
    FROM win w, jsonb_array_elements(COALESCE(w.costs->'rows', '[]'::jsonb)) AS r
),
spend AS (
    SELECT m.cohort_week, floor(extract(epoch FROM j.created_at - m.signup) / 604800)::int AS week,
           r.price IS NOT NULL AS priced,
           CASE WHEN j.status = 'completed' OR r.failed_billed THEN r.price ELSE 0 END AS cost
    FROM win w
    JOIN members m ON true
    JOIN video_jobs j ON j.user_id = m.id AND j.created_at <= w.as_of AND j.status IN ('completed', 'failed')
    JOIN models md ON md.id = j.model_id
    LEFT JOIN cost_rules r ON r.model = md.name AND r.provider = j.provider
                          AND (r.from_day IS NULL OR r.from_day <= (j.created_at AT TIME ZONE 'UTC')::date)
                          AND (r.until_day IS NULL OR (j.created_at AT TIME ZONE 'UTC')::date < r.until_day)
),
grid AS (
    SELECT c.cohort_week, c.users, n AS week
    FROM cohorts c
    CROSS JOIN win w
    CROSS JOIN LATERAL generate_series(0, w.weeks - 1) AS n
    WHERE c.last_signup + (n + 1) * interval '7 days' <= w.as_of
),
money_w AS (
    SELECT cohort_week, week, sum(net) AS net, sum(proceeds) AS proceeds FROM money GROUP BY 1, 2
),
spend_w AS (
    SELECT cohort_week, week, sum(cost) AS cost, bool_and(priced) AS priced FROM spend GROUP BY 1, 2
),
weekly AS (
    SELECT g.cohort_week, g.users, g.week, COALESCE(mw.net, 0) AS net, COALESCE(mw.proceeds, 0) AS proceeds,
           COALESCE(sw.cost, 0) AS cost, COALESCE(sw.priced, true) AS priced_week
    FROM grid g
    LEFT JOIN money_w mw ON mw.cohort_week = g.cohort_week AND mw.week = g.week
    LEFT JOIN spend_w sw ON sw.cohort_week = g.cohort_week AND sw.week = g.week
),
running AS (
    SELECT wk.cohort_week, wk.users, wk.week,
           sum(wk.net) OVER c / wk.users AS net_per_user,
           CASE WHEN w.commission IS NOT NULL THEN sum(wk.proceeds) OVER c / wk.users END AS proceeds_per_user,
           CASE WHEN w.costs IS NOT NULL
                     AND upper(COALESCE(w.costs->>'currency', 'USD')) = w.currency
                     AND bool_and(wk.priced_week) OVER c
                THEN sum(wk.cost) OVER c / wk.users END AS cost_per_user
    FROM weekly wk
    CROSS JOIN win w
    WINDOW c AS (PARTITION BY wk.cohort_week ORDER BY wk.week)
)
SELECT cohort_week, users, week,
       CAST(net_per_user AS float8) AS net_per_user,
       CAST(proceeds_per_user AS float8) AS proceeds_per_user,
       CAST(cost_per_user AS float8) AS cost_per_user,
       min(week) FILTER (WHERE proceeds_per_user >= cost_per_user) OVER (PARTITION BY cohort_week) AS payback_week
FROM running
ORDER BY cohort_week, week
