-- Revenue from App Store purchases.
--
-- Rules shared by every query in this file:
--   * Money only from environment = 'Production'. 'Sandbox' rows are TestFlight
--     and App Review purchases: no money changed hands.
--   * One currency per call (`currency`, default USD). Amounts in different
--     currencies are never added together; `currencies` shows what else exists.
--   * Each App Store transaction counts once. The backend sometimes records a
--     transaction_id twice (known fault); the row with the lowest id is the
--     canonical one, later copies are ignored (NOT EXISTS an earlier copy,
--     answered by idx_purchases_transaction_id).
--   * A refund belongs to the transaction, whichever copy carries it: the
--     backend sometimes records the App Store's REFUND on a later copy only.
--     A refund counts once per transaction, at the earliest refunded_at of any
--     of its copies, for the price/currency/product of its first copy.
--   * Days are local days in `tz`. The window [start, end] becomes the UTC
--     range [start 00:00 local, end + 1 day 00:00 local) so the indexes on
--     purchased_at / refunded_at are used; the indexed columns are never wrapped
--     in a function in a WHERE clause.
--     `win` is NOT MATERIALIZED: inlined, its bounds are expressions of the
--     parameters the planner can evaluate, so it estimates the window's rows
--     (a materialized CTE hides them and the plan reads purchases whole even
--     for one day; measured at `large`, see docs/performance.md).
--   * Gross is dated by purchased_at; refunds are dated by refunded_at (cash
--     basis: a refund lowers the day the money went back, not the day of sale).


-- name: daily
-- Daily production revenue in one currency: gross, refunds (by refund day), net, buyers, ARPPU, credits sold.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param currency text = USD  ISO currency to report; other currencies are left out, never converted
-- :param commission commission = COMMISSION  the store's commission (OPSBENCH_COMMISSION); none: proceeds NULL
--
-- Columns:
--   day                 local day in tz
--   currency            the currency every amount in the row is in
--   gross               sum of price of purchases made that day (including ones refunded later)
--   refunds             sum of price of purchases refunded that day, whenever they were bought
--   net                 gross - refunds (can be negative on a quiet day with refunds)
--   proceeds            what the store pays out: each purchase's price less its tax share and the store's
--                       commission on the rest, less the same for the purchases refunded that day (at the
--                       rate of their purchase); NULL when no commission file is configured
--   purchases           purchases made that day
--   refunded_purchases  purchases refunded that day
--   paying_users        distinct users with a purchase that day
--   arppu               gross / paying_users (float8), NULL when nobody paid
--   credits_sold        credits granted by that day's purchases
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           upper(CAST(:currency AS text))                                        AS currency
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
cfg AS (
    SELECT CAST(:commission AS jsonb) AS j
),
-- the file's override rules (ops/core/commission.py): a product, a period of purchase days, or both
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM cfg, jsonb_array_elements(COALESCE(cfg.j->'rules', '[]'::jsonb)) AS r
),
bought AS (
    SELECT (p.purchased_at AT TIME ZONE w.tz)::date AS day, p.user_id, p.price, p.credits,
           p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
                   * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric))) AS proceeds
    FROM win w
    JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    CROSS JOIN cfg
    -- the most specific rule covering the purchase's local day: product and period > product > period
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
refunded AS (
    SELECT (r.refunded_at AT TIME ZONE w.tz)::date AS day, p.price,
           p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
                   * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric))) AS proceeds
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency, product)
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN purchases p ON p.transaction_id = r.transaction_id
    CROSS JOIN cfg
    -- the most specific rule covering the purchase's local day: product and period > product > period
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
      AND NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
),
gross_by_day AS (
    SELECT day, sum(price) AS gross, count(*) AS purchases,
           count(DISTINCT user_id) AS paying_users, sum(credits) AS credits_sold, sum(proceeds) AS proceeds
    FROM bought GROUP BY day
),
refunds_by_day AS (
    SELECT day, sum(price) AS refunds, count(*) AS refunded_purchases, sum(proceeds) AS proceeds
    FROM refunded GROUP BY day
)
SELECT d.day,
       w.currency,
       COALESCE(g.gross, 0)                                  AS gross,
       COALESCE(r.refunds, 0)                                AS refunds,
       COALESCE(g.gross, 0) - COALESCE(r.refunds, 0)         AS net,
       CASE WHEN cfg.j IS NOT NULL
            THEN COALESCE(g.proceeds, 0) - COALESCE(r.proceeds, 0) END              AS proceeds,
       COALESCE(g.purchases, 0)                              AS purchases,
       COALESCE(r.refunded_purchases, 0)                     AS refunded_purchases,
       COALESCE(g.paying_users, 0)                           AS paying_users,
       CAST(g.gross AS float8) / NULLIF(g.paying_users, 0)   AS arppu,
       COALESCE(g.credits_sold, 0)                           AS credits_sold
FROM days d
CROSS JOIN win w
CROSS JOIN cfg
LEFT JOIN gross_by_day g ON g.day = d.day
LEFT JOIN refunds_by_day r ON r.day = d.day
ORDER BY d.day;


-- name: summary
-- Production revenue over the whole window in one currency; paying users are distinct over the window.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param currency text = USD  ISO currency to report; other currencies are left out, never converted
--
-- :param commission commission = COMMISSION  the store's commission (OPSBENCH_COMMISSION); none: proceeds NULL
--
-- One row. Columns as in `daily`, over [start, end]:
--   first_day, last_day  the window
--   paying_users         distinct buyers over the window (not a sum of daily buyers)
--   arppu                gross / paying_users (float8), NULL when nobody paid
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           upper(CAST(:currency AS text))                                        AS currency
),
cfg AS (
    SELECT CAST(:commission AS jsonb) AS j
),
-- the file's override rules (ops/core/commission.py): a product, a period of purchase days, or both
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM cfg, jsonb_array_elements(COALESCE(cfg.j->'rules', '[]'::jsonb)) AS r
),
bought AS (
    SELECT count(*) AS purchases, sum(p.price) AS gross,
           count(DISTINCT p.user_id) AS paying_users, sum(p.credits) AS credits_sold,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
                   * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    FROM win w
    JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    CROSS JOIN cfg
    -- the most specific rule covering the purchase's local day: product and period > product > period
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
refunded AS (
    SELECT count(*) AS refunded_purchases, sum(p.price) AS refunds,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
                   * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency, product)
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN purchases p ON p.transaction_id = r.transaction_id
    CROSS JOIN cfg
    -- the most specific rule covering the purchase's local day: product and period > product > period
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
      AND NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
)
SELECT w.first_day,
       w.last_day,
       w.currency,
       COALESCE(b.gross, 0)                                 AS gross,
       COALESCE(r.refunds, 0)                               AS refunds,
       COALESCE(b.gross, 0) - COALESCE(r.refunds, 0)        AS net,
       CASE WHEN cfg.j IS NOT NULL
            THEN COALESCE(b.proceeds, 0) - COALESCE(r.proceeds, 0) END              AS proceeds,
       b.purchases,
       r.refunded_purchases,
       b.paying_users,
       CAST(b.gross AS float8) / NULLIF(b.paying_users, 0)  AS arppu,
       COALESCE(b.credits_sold, 0)                          AS credits_sold
FROM win w, cfg, bought b, refunded r;


-- name: by_product
-- Daily production revenue per product in one currency (every day x every product, zeros included).
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param currency text = USD  ISO currency to report; other currencies are left out, never converted
-- :param commission commission = COMMISSION  the store's commission (OPSBENCH_COMMISSION); none: proceeds NULL
--
-- Columns:
--   day, product_id, product_name, currency
--   gross, refunds, net      as in `daily`, for this product (refunds on the refund day)
--   purchases                purchases of this product made that day
--   refunded_purchases       purchases of this product refunded that day
--   paying_users             distinct buyers of this product that day
--   credits_sold             credits granted by these purchases
--   proceeds                 as in `daily`, for this product (NULL when no commission file is configured)
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:start AS date)                                                  AS first_day,
           CAST(:end AS date)                                                    AS last_day,
           CAST(:tz AS text)                                                     AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi,
           upper(CAST(:currency AS text))                                        AS currency
),
days AS (
    SELECT w.first_day + i AS day
    FROM win w, generate_series(0, w.last_day - w.first_day) AS i
),
cfg AS (
    SELECT CAST(:commission AS jsonb) AS j
),
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM cfg, jsonb_array_elements(COALESCE(cfg.j->'rules', '[]'::jsonb)) AS r
),
bought AS (
    SELECT (p.purchased_at AT TIME ZONE w.tz)::date AS day, p.product_id,
           count(*) AS purchases, sum(p.price) AS gross,
           count(DISTINCT p.user_id) AS paying_users, sum(p.credits) AS credits_sold,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
               * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    FROM win w
    JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    CROSS JOIN cfg
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
    GROUP BY 1, 2
),
refunded AS (
    SELECT (r.refunded_at AT TIME ZONE w.tz)::date AS day, p.product_id,
           count(*) AS refunded_purchases, sum(p.price) AS refunds,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
               * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency, product)
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN purchases p ON p.transaction_id = r.transaction_id
    CROSS JOIN cfg
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
      AND NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
    GROUP BY 1, 2
),
-- every catalogue product, plus any product id sold but missing from the catalogue
product_list AS (
    SELECT id AS product_id, name AS product_name FROM products
    UNION
    SELECT product_id, NULL FROM bought WHERE product_id NOT IN (SELECT id FROM products)
)
SELECT d.day,
       pl.product_id,
       pl.product_name,
       w.currency,
       COALESCE(b.gross, 0)                           AS gross,
       COALESCE(r.refunds, 0)                         AS refunds,
       COALESCE(b.gross, 0) - COALESCE(r.refunds, 0)  AS net,
       COALESCE(b.purchases, 0)                       AS purchases,
       COALESCE(r.refunded_purchases, 0)              AS refunded_purchases,
       COALESCE(b.paying_users, 0)                    AS paying_users,
       COALESCE(b.credits_sold, 0)                    AS credits_sold,
       CASE WHEN cfg.j IS NOT NULL
            THEN COALESCE(b.proceeds, 0) - COALESCE(r.proceeds, 0) END AS proceeds
FROM days d
CROSS JOIN product_list pl
CROSS JOIN win w
CROSS JOIN cfg
LEFT JOIN bought b   ON b.day = d.day AND b.product_id = pl.product_id
LEFT JOIN refunded r ON r.day = d.day AND r.product_id = pl.product_id
ORDER BY d.day, pl.product_id;


-- name: currencies
-- Currencies purchases were made in over the window, production and sandbox counted apart, so no currency goes unseen.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
--
-- Columns (each transaction once):
--   currency
--   purchases            production purchases made in the window
--   gross                their summed price, in this currency
--   paying_users         distinct production buyers
--   sandbox_purchases    TestFlight / App Review purchases (no money)
WITH win AS NOT MATERIALIZED (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT p.currency,
       count(*) FILTER (WHERE p.environment = 'Production')                    AS purchases,
       COALESCE(sum(p.price) FILTER (WHERE p.environment = 'Production'), 0)   AS gross,
       count(DISTINCT p.user_id) FILTER (WHERE p.environment = 'Production')   AS paying_users,
       count(*) FILTER (WHERE p.environment = 'Sandbox')                       AS sandbox_purchases
FROM win w
JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
WHERE NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
GROUP BY p.currency
ORDER BY purchases DESC, p.currency;

-- name: by_currency
-- Production revenue over the window per currency present (one row each, largest gross first): the digest
-- shows every currency on its own line rather than letting non-default ones vanish.
-- :param start date           first local day (inclusive)
-- :param end date             last local day (inclusive)
-- :param tz tz = REPORT_TZ          IANA zone the days are cut in
-- :param commission commission = COMMISSION  the store's commission (OPSBENCH_COMMISSION); none: proceeds NULL
--
-- Columns: currency, gross (numeric), refunds (numeric), net (numeric), purchases (bigint), paying_users (bigint),
-- proceeds (numeric, as in `daily`; NULL when no commission file is configured; last, so the columns before
-- keep their places).
WITH win AS NOT MATERIALIZED (
    SELECT CAST(:tz AS text)                                                        AS tz,
           CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
),
first_rows AS NOT MATERIALIZED (
    SELECT p.*
    FROM purchases p
    WHERE p.environment = 'Production'
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
),
cfg AS (
    SELECT CAST(:commission AS jsonb) AS j
),
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM cfg, jsonb_array_elements(COALESCE(cfg.j->'rules', '[]'::jsonb)) AS r
),
-- each first copy's proceeds (see `daily`), computed where it is read
bought AS (
    SELECT p.currency, count(*) AS purchases, sum(p.price) AS gross, count(DISTINCT p.user_id) AS paying_users,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
               * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    FROM win w JOIN first_rows p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    CROSS JOIN cfg
    LEFT JOIN LATERAL (
        SELECT x.rate FROM rules x
        WHERE (x.product_id IS NULL OR x.product_id = p.product_id)
          AND (x.from_day IS NULL OR x.from_day <= (p.purchased_at AT TIME ZONE w.tz)::date)
          AND (x.until_day IS NULL OR (p.purchased_at AT TIME ZONE w.tz)::date < x.until_day)
        ORDER BY x.product_id IS NOT NULL DESC, (x.from_day IS NOT NULL OR x.until_day IS NOT NULL) DESC
        LIMIT 1
    ) k ON true
    GROUP BY p.currency
),
refunded AS (
    SELECT p.currency, sum(p.price) AS refunds,
           sum(p.price * (1 - COALESCE(CAST(cfg.j->'tax'->>p.currency AS numeric), 0))
               * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric)))) AS proceeds
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency)
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN first_rows p ON p.transaction_id = r.transaction_id
    CROSS JOIN cfg
    LEFT JOIN LATERAL (
        SELECT x.rate FROM rules x
        WHERE (x.product_id IS NULL OR x.product_id = p.product_id)
          AND (x.from_day IS NULL OR x.from_day <= (p.purchased_at AT TIME ZONE w.tz)::date)
          AND (x.until_day IS NULL OR (p.purchased_at AT TIME ZONE w.tz)::date < x.until_day)
        ORDER BY x.product_id IS NOT NULL DESC, (x.from_day IS NOT NULL OR x.until_day IS NOT NULL) DESC
        LIMIT 1
    ) k ON true
    WHERE NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
    GROUP BY p.currency
)
SELECT COALESCE(b.currency, r.currency)                       AS currency,
       COALESCE(b.gross, 0)                                   AS gross,
       COALESCE(r.refunds, 0)                                 AS refunds,
       COALESCE(b.gross, 0) - COALESCE(r.refunds, 0)          AS net,
       COALESCE(b.purchases, 0)                               AS purchases,
       COALESCE(b.paying_users, 0)                            AS paying_users,
       CASE WHEN (SELECT j FROM cfg) IS NOT NULL
            THEN COALESCE(b.proceeds, 0) - COALESCE(r.proceeds, 0) END AS proceeds
FROM bought b FULL JOIN refunded r ON r.currency = b.currency
ORDER BY COALESCE(b.gross, 0) DESC, 1
