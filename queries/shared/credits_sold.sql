-- Credits sold and their price, by local day: the one definition of "the price per credit sold"
-- (economics.margin and economics.liability value credits with it). Needs the CTE `win` (hi, currency,
-- tz, first_day); defines
--   canon        each production transaction once (its first copy, as revenue.* counts it), in the
--                window's currency, with the earliest refund of any copy;
--   credits_sold price and credits in (a sale) and out (its refund) by local day; everything before the
--                window lands on the day before it, so a running sum from there is the average price of
--                what is held sold and not refunded by each day's end.
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
credits_sold AS (
    SELECT greatest((c.purchased_at AT TIME ZONE w.tz)::date, w.first_day - 1) AS day, c.price, c.credits
    FROM canon c, win w
    UNION ALL
    SELECT greatest((c.refunded_at AT TIME ZONE w.tz)::date, w.first_day - 1), -c.price, -c.credits
    FROM canon c, win w
    WHERE c.refunded_at < w.hi
)
