-- Ledger reconciliation beyond the checks themselves.
--
-- The checks live one per file in queries/checks/ (see queries/checkfile.py);
-- the loader also exposes each shipped check as a query of this subject, so
-- `queries.reconciliation.balance_vs_ledger(conn)` and
-- `opsbench query reconciliation.balance_vs_ledger` work as before. `summary`
-- counts every shipped check in one statement; tests keep it in step with
-- the check files (the founder's own checks are counted by the reconcile job).

-- name: summary
-- Offending row count of every shipped reconciliation check (0 = pass), one row per check.
WITH ledger_by_user AS (
    SELECT user_id, sum(change)::bigint AS ledger_sum
    FROM quota_log
    GROUP BY user_id
), bought AS (
    SELECT p.transaction_id, max(p.credits) AS expected_credits, count(*) AS purchases,
           (array_agg(p.user_id ORDER BY p.id))[1] AS paid_by,
           bool_or(p.refunded_at IS NOT NULL) AS refunded
    FROM purchases p
    GROUP BY p.transaction_id
), credited AS (
    SELECT transaction_id, count(*) AS credit_rows, sum(change)::bigint AS credited
    FROM quota_log
    WHERE reason = 'iap_purchase' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), debited AS (
    SELECT transaction_id, -sum(change)::bigint AS debited
    FROM quota_log
    WHERE reason = 'iap_refund' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), refunds AS (
    SELECT job_id, sum(change)::bigint AS refunded
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
    GROUP BY job_id
), counts AS (
    SELECT 1 AS ord, 'balance_vs_ledger' AS check_name,
           (SELECT count(*) FROM users u LEFT JOIN ledger_by_user l ON l.user_id = u.id
            WHERE u.credits_remaining IS DISTINCT FROM coalesce(l.ledger_sum, 0)) AS offending
    UNION ALL
    SELECT 2, 'completed_job_refunded',
           (SELECT count(*) FROM refunds r JOIN video_jobs j ON j.id = r.job_id WHERE j.status = 'completed')
    UNION ALL
    SELECT 3, 'duplicate_transactions', (SELECT count(*) FROM bought WHERE purchases > 1)
    UNION ALL
    SELECT 4, 'failed_jobs_without_refund',
           (SELECT count(*) FROM video_jobs j LEFT JOIN refunds r ON r.job_id = j.id
            WHERE j.status = 'failed' AND j.credits_used > 0 AND r.job_id IS NULL)
    UNION ALL
    SELECT 5, 'generation_refund_mismatch',
           (SELECT count(*) FROM refunds r JOIN video_jobs j ON j.id = r.job_id WHERE r.refunded <> j.credits_used)
    UNION ALL
    SELECT 6, 'iap_refund_mismatch',
           (SELECT count(*) FROM bought b FULL JOIN debited d ON d.transaction_id = b.transaction_id
            LEFT JOIN credited c ON c.transaction_id = coalesce(b.transaction_id, d.transaction_id)
            WHERE (coalesce(b.refunded, false) AND coalesce(d.debited, 0) <> coalesce(c.credited, 0))
               OR (NOT coalesce(b.refunded, false) AND d.transaction_id IS NOT NULL))
         + (SELECT count(*) FROM quota_log WHERE reason = 'iap_refund' AND transaction_id IS NULL)
    UNION ALL
    SELECT 7, 'ledger_missing_jobs',
           (SELECT count(*) FROM quota_log q LEFT JOIN video_jobs j ON j.id = q.job_id
            WHERE q.job_id IS NOT NULL AND j.id IS NULL)
    UNION ALL
    SELECT 8, 'negative_balances', (SELECT count(*) FROM users WHERE credits_remaining < 0)
    UNION ALL
    SELECT 9, 'purchase_credit_mismatch',
           (SELECT count(*) FROM bought b FULL JOIN credited c ON c.transaction_id = b.transaction_id
            WHERE b.transaction_id IS NULL OR c.transaction_id IS NULL
               OR c.credit_rows <> 1 OR c.credited <> b.expected_credits)
         + (SELECT count(*) FROM quota_log WHERE reason = 'iap_purchase' AND transaction_id IS NULL)
    UNION ALL
    SELECT 10, 'purchase_credited_to_other_user',
           (SELECT count(*) FROM quota_log q JOIN bought b ON b.transaction_id = q.transaction_id
            WHERE q.reason = 'iap_purchase' AND q.user_id <> b.paid_by)
)
SELECT check_name AS "check", offending, offending = 0 AS passed
FROM counts
ORDER BY ord

-- name: user_ledger
-- One user's ledger rows in time order, with the running balance.
-- :param user_id uuid   the user's id
SELECT q.id AS ledger_id, q.created_at, q.change, q.reason, q.transaction_id, q.job_id,
       sum(q.change) OVER (ORDER BY q.created_at, q.id) AS running_balance
FROM quota_log q
WHERE q.user_id = CAST(:user_id AS uuid)
ORDER BY q.created_at, q.id
