-- description: App Store purchases whose iap_purchase credit went to a different user than the one who paid.
-- severity: critical
-- offender: transaction_id
--
-- One row per credit row on the wrong account: who paid, who got the credits.
WITH paid AS (
    SELECT transaction_id,
           (array_agg(user_id ORDER BY id))[1] AS paid_by,
           count(DISTINCT user_id) AS payers,
           min(purchased_at) AS purchased_at
    FROM purchases
    GROUP BY transaction_id
)
SELECT q.transaction_id,
       p.paid_by AS paid_by_user_id,
       q.user_id AS credited_user_id,
       q.change AS credited,
       p.purchased_at,
       q.id AS ledger_id,
       q.created_at AS credited_at
FROM quota_log q
JOIN paid p ON p.transaction_id = q.transaction_id
WHERE q.reason = 'iap_purchase'
  AND q.user_id <> p.paid_by
ORDER BY p.purchased_at, q.transaction_id, q.id
