-- Revenue from App Store purchases.
--
-- Rules shared by every query in this file, each written once in queries/shared/:
--   * what money there is, per transaction: shared/revenue_rows.sql (Production only, each
--     transaction once, a refund once per transaction at its earliest refunded_at, gross
--     dated by purchased_at and refunds by refunded_at: cash basis); the rollups store the
--     same rows (rollups.revenue_days);
--   * proceeds (the commission rule lookup and the payout formula): shared/proceeds.sql;
--   * a group's sums (gross, refunds, buyers, credits, proceeds): shared/revenue_sums.sql;
--   * the window: shared/local_days.sql (local days in `tz` as a UTC range, so the indexes
--     on purchased_at / refunded_at are used).
--   * One currency per call (`currency`, default USD). Amounts in different
--     currencies are never added together; `currencies` shows what else exists.


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
WITH
-- include: local_days,
-- include: revenue_rows,
-- include: proceeds,
by_day AS (
    SELECT day,
-- include: revenue_sums
    FROM priced_rows
    WHERE currency = upper(CAST(:currency AS text))
    GROUP BY day
),
revenue AS (
    SELECT d.day, upper(CAST(:currency AS text)) AS currency, g.gross, g.refunds,
           CASE WHEN cfg.j IS NOT NULL THEN COALESCE(g.proceeds, 0) END AS proceeds,
           g.purchases, g.refunded_purchases, g.paying_users, g.credits_sold
    FROM days d
    CROSS JOIN cfg
    LEFT JOIN by_day g ON g.day = d.day
)
-- include: revenue_columns
;


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
WITH
-- include: local_days,
-- include: revenue_rows,
-- include: proceeds,
total AS (
    SELECT
-- include: revenue_sums
    FROM priced_rows
    WHERE currency = upper(CAST(:currency AS text))
)
SELECT w.first_day,
       w.last_day,
       upper(CAST(:currency AS text))                                                AS currency,
       COALESCE(t.gross, 0)                                 AS gross,
       COALESCE(t.refunds, 0)                               AS refunds,
       COALESCE(t.gross, 0) - COALESCE(t.refunds, 0)        AS net,
       CASE WHEN cfg.j IS NOT NULL THEN COALESCE(t.proceeds, 0) END AS proceeds,
       t.purchases,
       t.refunded_purchases,
       t.paying_users,
       CAST(t.gross AS float8) / NULLIF(t.paying_users, 0)  AS arppu,
       COALESCE(t.credits_sold, 0)                          AS credits_sold
FROM win w, cfg, total t;


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
WITH
-- include: local_days,
-- include: revenue_rows,
-- include: proceeds,
by_product AS (
    SELECT day, product_id,
-- include: revenue_sums
    FROM priced_rows
    WHERE currency = upper(CAST(:currency AS text))
    GROUP BY day, product_id
),
-- every catalogue product, plus any product id sold but missing from the catalogue
product_list AS (
    SELECT id AS product_id, name AS product_name FROM products
    UNION
    SELECT product_id, NULL FROM by_product WHERE purchases > 0 AND product_id NOT IN (SELECT id FROM products)
)
SELECT d.day,
       pl.product_id,
       pl.product_name,
       upper(CAST(:currency AS text))                                          AS currency,
       COALESCE(b.gross, 0)                           AS gross,
       COALESCE(b.refunds, 0)                         AS refunds,
       COALESCE(b.gross, 0) - COALESCE(b.refunds, 0)  AS net,
       COALESCE(b.purchases, 0)                       AS purchases,
       COALESCE(b.refunded_purchases, 0)              AS refunded_purchases,
       COALESCE(b.paying_users, 0)                    AS paying_users,
       COALESCE(b.credits_sold, 0)                    AS credits_sold,
       CASE WHEN cfg.j IS NOT NULL THEN COALESCE(b.proceeds, 0) END AS proceeds
FROM days d
CROSS JOIN product_list pl
CROSS JOIN cfg
LEFT JOIN by_product b ON b.day = d.day AND b.product_id = pl.product_id
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
WITH
-- include: local_days
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
WITH
-- include: local_days,
-- include: revenue_rows,
-- include: proceeds,
by_currency AS (
    SELECT currency,
-- include: revenue_sums
    FROM priced_rows
    GROUP BY currency
)
SELECT b.currency,
       COALESCE(b.gross, 0)                                   AS gross,
       COALESCE(b.refunds, 0)                                 AS refunds,
       COALESCE(b.gross, 0) - COALESCE(b.refunds, 0)          AS net,
       COALESCE(b.purchases, 0)                               AS purchases,
       COALESCE(b.paying_users, 0)                            AS paying_users,
       CASE WHEN cfg.j IS NOT NULL THEN COALESCE(b.proceeds, 0) END AS proceeds
FROM by_currency b
CROSS JOIN cfg
ORDER BY COALESCE(b.gross, 0) DESC, 1
