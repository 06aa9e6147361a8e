-- Production money per App Store transaction: the one definition (revenue.*, and the revenue the
-- rollups store). Needs the CTE `win` (tz, lo, hi); defines revenue_rows, one row per sale dated by
-- its purchase (refund = false) and one per refund dated by its refund (refund = true), each with
-- day (local day in tz), currency, product_id, user_id, price, credits and purchased_at of the
-- transaction's first copy:
--   * money only from environment = 'Production' ('Sandbox' rows are TestFlight and App Review
--     purchases: no money changed hands);
--   * each transaction counts once: the backend sometimes records a transaction_id twice (known
--     fault); the row with the lowest id is the canonical one (NOT EXISTS an earlier copy, answered
--     by idx_purchases_transaction_id);
--   * a refund belongs to the transaction, whichever copy carries it (the backend sometimes records
--     the App Store's REFUND on a later copy only): it counts once, at the earliest refunded_at of
--     any copy, for the price/currency/product of the first copy;
--   * cash basis: gross is dated by purchased_at, a refund by refunded_at (it lowers the day the
--     money went back, not the day of sale).
revenue_rows AS (
    SELECT false AS refund, (p.purchased_at AT TIME ZONE w.tz)::date AS day,
           p.currency, p.product_id, p.user_id, p.price, p.credits, p.purchased_at
    FROM win w
    JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
    WHERE p.environment = 'Production'
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
    UNION ALL
    -- r: the copy carrying the transaction's first refund; p: its first copy (price, currency, product)
    SELECT true AS refund, (r.refunded_at AT TIME ZONE w.tz)::date AS day,
           p.currency, p.product_id, p.user_id, p.price, p.credits, p.purchased_at
    FROM win w
    JOIN purchases r ON r.refunded_at >= w.lo AND r.refunded_at < w.hi
    JOIN purchases p ON p.transaction_id = r.transaction_id
    WHERE p.environment = 'Production'
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id)
      AND NOT EXISTS (SELECT 1 FROM purchases e WHERE e.transaction_id = r.transaction_id
                        AND e.refunded_at IS NOT NULL AND (e.refunded_at, e.id) < (r.refunded_at, r.id))
)
