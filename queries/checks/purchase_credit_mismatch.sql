-- description: Transactions without exactly one iap_purchase ledger credit of the credits recorded with the purchase (and credits without a purchase).
-- severity: critical
-- offender: transaction_id, user_id
--
-- The expected amount is purchases.credits, what the product granted at the time of sale, not
-- today's catalogue: a price-list change must not flag every older purchase.
-- An iap_purchase credit with no transaction id at all is a credit without a purchase, one row per ledger row.
WITH bought AS (
    SELECT p.transaction_id,
           (array_agg(p.user_id ORDER BY p.id))[1] AS user_id,
           (array_agg(p.product_id ORDER BY p.id))[1] AS product_id,
           max(p.credits) AS expected_credits,
           min(p.purchased_at) AS purchased_at
    FROM purchases p
    GROUP BY p.transaction_id
), credited AS (
    SELECT transaction_id,
           (array_agg(user_id ORDER BY id))[1] AS user_id,
           count(*) AS credit_rows,
           sum(change)::bigint AS credited,
           min(created_at) AS credited_at
    FROM quota_log
    WHERE reason = 'iap_purchase' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), offending AS (
    SELECT coalesce(b.transaction_id, c.transaction_id) AS transaction_id,
           coalesce(b.user_id, c.user_id) AS user_id,
           b.product_id,
           b.purchased_at,
           b.expected_credits,
           coalesce(c.credit_rows, 0) AS credit_rows,
           coalesce(c.credited, 0) AS credited,
           CASE WHEN b.transaction_id IS NULL THEN 'credit_without_purchase'
                WHEN c.transaction_id IS NULL THEN 'missing_credit'
                WHEN c.credit_rows > 1 THEN 'multiple_credits'
                ELSE 'wrong_amount' END AS problem,
           coalesce(b.purchased_at, c.credited_at) AS sort_at
    FROM bought b
    FULL JOIN credited c ON c.transaction_id = b.transaction_id
    WHERE b.transaction_id IS NULL
       OR c.transaction_id IS NULL
       OR c.credit_rows <> 1
       OR c.credited <> b.expected_credits
    UNION ALL
    SELECT NULL, q.user_id, NULL, NULL, NULL, 1, q.change::bigint, 'credit_without_transaction_id', q.created_at
    FROM quota_log q
    WHERE q.reason = 'iap_purchase' AND q.transaction_id IS NULL
)
SELECT transaction_id, user_id, product_id, purchased_at, expected_credits, credit_rows, credited, problem
FROM offending
ORDER BY sort_at, transaction_id NULLS LAST
