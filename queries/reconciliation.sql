-- Ledger reconciliation: each check returns the offending rows; zero rows means pass.
--
-- The ledger (quota_log) is the source of truth for credits: every change to
-- users.credits_remaining must have a signed row there. Each check reads each
-- table once (aggregate first, then join) instead of running a subquery per
-- user, so it stays fast on millions of ledger rows. `summary` counts every
-- check in one statement; tests keep it in step with the checks below.

-- name: balance_vs_ledger
-- Users whose stored balance differs from the sum of their ledger (no ledger rows counts as 0).
WITH ledger AS (
    SELECT user_id, sum(change)::bigint AS ledger_sum, count(*) AS ledger_rows
    FROM quota_log
    GROUP BY user_id
)
SELECT u.id AS user_id,
       u.email,
       u.credits_remaining,
       coalesce(l.ledger_sum, 0) AS ledger_sum,
       u.credits_remaining - coalesce(l.ledger_sum, 0) AS difference,
       coalesce(l.ledger_rows, 0) AS ledger_rows
FROM users u
LEFT JOIN ledger l ON l.user_id = u.id
WHERE u.credits_remaining IS DISTINCT FROM coalesce(l.ledger_sum, 0)
ORDER BY abs(u.credits_remaining - coalesce(l.ledger_sum, 0)) DESC, u.id

-- name: negative_balances
-- Users with a negative credit balance.
SELECT id AS user_id, email, credits_remaining, created_at
FROM users
WHERE credits_remaining < 0
ORDER BY credits_remaining, id

-- name: duplicate_transactions
-- App Store transaction ids recorded in more than one purchase row.
SELECT transaction_id,
       count(*) AS purchases,
       array_agg(id ORDER BY id) AS purchase_ids,
       count(DISTINCT user_id) AS users,
       min(purchased_at) AS first_purchased_at,
       max(created_at) AS last_recorded_at
FROM purchases
GROUP BY transaction_id
HAVING count(*) > 1
ORDER BY min(purchased_at), transaction_id

-- name: purchase_credit_mismatch
-- Transactions without exactly one iap_purchase ledger credit of the credits recorded with the purchase (and credits without a purchase).
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

-- name: failed_jobs_without_refund
-- Failed jobs that charged credits but have no generation_refund in the ledger.
WITH refunded AS (
    SELECT DISTINCT job_id
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
)
SELECT j.id AS job_id, j.user_id, j.provider, j.credits_used, j.error_code, j.created_at, j.completed_at
FROM video_jobs j
LEFT JOIN refunded r ON r.job_id = j.id
WHERE j.status = 'failed' AND j.credits_used > 0 AND r.job_id IS NULL
ORDER BY j.created_at, j.id

-- name: ledger_missing_jobs
-- Ledger rows whose job_id points at a job that does not exist.
SELECT q.id AS ledger_id, q.user_id, q.change, q.reason, q.job_id, q.created_at
FROM quota_log q
LEFT JOIN video_jobs j ON j.id = q.job_id
WHERE q.job_id IS NOT NULL AND j.id IS NULL
ORDER BY q.created_at, q.id

-- name: summary
-- Offending row count of every reconciliation check (0 = pass), one row per check.
WITH ledger_by_user AS (
    SELECT user_id, sum(change)::bigint AS ledger_sum
    FROM quota_log
    GROUP BY user_id
), bought AS (
    SELECT p.transaction_id, max(p.credits) AS expected_credits, count(*) AS purchases
    FROM purchases p
    GROUP BY p.transaction_id
), credited AS (
    SELECT transaction_id, count(*) AS credit_rows, sum(change)::bigint AS credited
    FROM quota_log
    WHERE reason = 'iap_purchase' AND transaction_id IS NOT NULL
    GROUP BY transaction_id
), refunded AS (
    SELECT DISTINCT job_id
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
), counts AS (
    SELECT 1 AS ord, 'balance_vs_ledger' AS check_name,
           (SELECT count(*) FROM users u LEFT JOIN ledger_by_user l ON l.user_id = u.id
            WHERE u.credits_remaining IS DISTINCT FROM coalesce(l.ledger_sum, 0)) AS offending
    UNION ALL
    SELECT 2, 'negative_balances', (SELECT count(*) FROM users WHERE credits_remaining < 0)
    UNION ALL
    SELECT 3, 'duplicate_transactions', (SELECT count(*) FROM bought WHERE purchases > 1)
    UNION ALL
    SELECT 4, 'purchase_credit_mismatch',
           (SELECT count(*) FROM bought b FULL JOIN credited c ON c.transaction_id = b.transaction_id
            WHERE b.transaction_id IS NULL OR c.transaction_id IS NULL
               OR c.credit_rows <> 1 OR c.credited <> b.expected_credits)
         + (SELECT count(*) FROM quota_log WHERE reason = 'iap_purchase' AND transaction_id IS NULL)
    UNION ALL
    SELECT 5, 'failed_jobs_without_refund',
           (SELECT count(*) FROM video_jobs j LEFT JOIN refunded r ON r.job_id = j.id
            WHERE j.status = 'failed' AND j.credits_used > 0 AND r.job_id IS NULL)
    UNION ALL
    SELECT 6, 'ledger_missing_jobs',
           (SELECT count(*) FROM quota_log q LEFT JOIN video_jobs j ON j.id = q.job_id
            WHERE q.job_id IS NOT NULL AND j.id IS NULL)
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
