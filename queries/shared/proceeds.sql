-- What the store pays out for each row of revenue_rows: the one definition of the commission rule
-- lookup and the proceeds formula (ops/core/commission.py writes the JSON). Needs the CTEs `win`
-- (tz) and `revenue_rows` (shared/revenue_rows.sql) and the parameter :commission; defines cfg (j:
-- the commission JSON, NULL when none is configured), rules and priced_rows: revenue_rows with
--   proceeds = price * (1 - tax share of its currency) * (1 - the rate of the most specific rule
--              covering the purchase's local day: product and period > product > period > default),
-- negative for a refund (at the rate of its purchase), so sum(proceeds) is a group's net proceeds;
-- NULL when no commission file is configured (a query shows NULL then, never net at 0 %).
cfg AS (
    SELECT CAST(:commission AS jsonb) AS j
),
-- the file's override rules: a product, a period of purchase days, or both
rules AS (
    SELECT r->>'product' AS product_id, CAST(r->>'from' AS date) AS from_day,
           CAST(r->>'until' AS date) AS until_day, CAST(r->>'rate' AS numeric) AS rate
    FROM cfg, jsonb_array_elements(COALESCE(cfg.j->'rules', '[]'::jsonb)) AS r
),
priced_rows AS (
    SELECT e.*,
           CASE WHEN e.refund THEN -1 ELSE 1 END
           * e.price * (1 - COALESCE(CAST(cfg.j->'tax'->>e.currency AS numeric), 0))
                     * (1 - COALESCE(k.rate, CAST(cfg.j->>'default' AS numeric))) AS proceeds
    FROM revenue_rows e
    CROSS JOIN win w
    CROSS JOIN cfg
    LEFT JOIN LATERAL (
        SELECT x.rate FROM rules x
        WHERE (x.product_id IS NULL OR x.product_id = e.product_id)
          AND (x.from_day IS NULL OR x.from_day <= (e.purchased_at AT TIME ZONE w.tz)::date)
          AND (x.until_day IS NULL OR (e.purchased_at AT TIME ZONE w.tz)::date < x.until_day)
        ORDER BY x.product_id IS NOT NULL DESC, (x.from_day IS NOT NULL OR x.until_day IS NOT NULL) DESC
        LIMIT 1
    ) k ON true
)
