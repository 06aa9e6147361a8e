-- description: App Store refunds without an iap_refund debit of the credited amount, and iap_refund debits without a refunded purchase.
-- severity: critical
-- offender: transaction_id, user_id
--
-- When the App Store refunds a purchase (purchases.refunded_at), the ledger takes
-- back what the purchase credited: iap_refund rows for the transaction adding up to
-- minus its iap_purchase credits. `problem` says which way it is broken:
--   missing_debit                 refunded, credited, and nothing taken back
--   wrong_amount                  taken back, but not exactly what was credited
--   debit_without_refund          a debit for a transaction the App Store did not refund (or never sold)
--   debit_without_transaction_id  a debit that names no transaction, one row per ledger row
WITH sold AS (
    SELECT transaction_id,
           (array_agg(user_id ORDER BY id))[1] AS user_id,
           bool_or(refunded_at IS NOT NULL) AS refunded,
           min(refunded_at) AS refunded_at
    FROM purchases
    GROUP BY transaction_id
), credited AS (
    SELECT transaction_id, sum(change)::bigint AS credited
    FROM quota_log
    WHERE reason = 'iap_purchase' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), debited AS (
    SELECT transaction_id,
           (array_agg(user_id ORDER BY id))[1] AS user_id,
           -sum(change)::bigint AS debited,
           count(*) AS debit_rows,
           min(created_at) AS debited_at
    FROM quota_log
    WHERE reason = 'iap_refund' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), offending AS (
    SELECT coalesce(s.transaction_id, d.transaction_id) AS transaction_id,
           coalesce(s.user_id, d.user_id) AS user_id,
           s.refunded_at,
           coalesce(c.credited, 0) AS credited,
           coalesce(d.debited, 0) AS debited,
           coalesce(d.debit_rows, 0) AS debit_rows,
           CASE WHEN NOT coalesce(s.refunded, false) THEN 'debit_without_refund'
                WHEN d.transaction_id IS NULL THEN 'missing_debit'
                ELSE 'wrong_amount' END AS problem,
           coalesce(s.refunded_at, d.debited_at) AS sort_at
    FROM sold s
    FULL JOIN debited d ON d.transaction_id = s.transaction_id
    LEFT JOIN credited c ON c.transaction_id = coalesce(s.transaction_id, d.transaction_id)
    WHERE (coalesce(s.refunded, false) AND coalesce(d.debited, 0) <> coalesce(c.credited, 0))
       OR (NOT coalesce(s.refunded, false) AND d.transaction_id IS NOT NULL)
    UNION ALL
    SELECT NULL, q.user_id, NULL, NULL, -q.change::bigint, 1, 'debit_without_transaction_id', q.created_at
    FROM quota_log q
    WHERE q.reason = 'iap_refund' AND q.transaction_id IS NULL
)
SELECT transaction_id, user_id, refunded_at, credited, debited, debit_rows, problem
FROM offending
ORDER BY sort_at, transaction_id NULLS LAST
