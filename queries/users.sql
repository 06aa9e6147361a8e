-- One user, every angle: the drill-down behind a reconciliation finding.
--
-- When `users.credits_remaining` and the sum of the user's `quota_log` rows
-- disagree, the founder needs the balance, the ledger history, the purchases
-- and the jobs side by side. Each query here returns one of those views, with
-- the cross-references already made (which ledger row a purchase produced,
-- what a job was charged and refunded), so the difference can be read off.
--
-- All timestamps are returned as timestamptz; show them in the report zone.


-- name: profile
-- One user's balance next to their ledger sum, with counts of purchases and jobs.
-- :param user_id uuid      the user
--
-- One row (none when the user does not exist):
--   user_id, email, is_admin, created_at
--   credits_remaining   the balance the app shows
--   ledger_sum          sum of quota_log.change (0 when the user has no ledger rows)
--   ledger_rows         number of quota_log rows
--   drift               credits_remaining - ledger_sum (0 when they agree)
--   purchases           purchase rows (any environment, duplicates included)
--   refunded_purchases  purchase rows with refunded_at set
--   jobs                video jobs, any status
--   failed_jobs         failed video jobs
--   last_activity       latest job or purchase time, NULL when none
SELECT u.id                                          AS user_id,
       u.email,
       u.is_admin,
       u.created_at,
       u.credits_remaining,
       COALESCE(l.ledger_sum, 0)                     AS ledger_sum,
       COALESCE(l.ledger_rows, 0)                    AS ledger_rows,
       u.credits_remaining - COALESCE(l.ledger_sum, 0) AS drift,
       COALESCE(p.purchases, 0)                      AS purchases,
       COALESCE(p.refunded_purchases, 0)             AS refunded_purchases,
       COALESCE(j.jobs, 0)                           AS jobs,
       COALESCE(j.failed_jobs, 0)                    AS failed_jobs,
       GREATEST(p.last_purchase, j.last_job)         AS last_activity
FROM users u
LEFT JOIN LATERAL (
    SELECT sum(q.change) AS ledger_sum, count(*) AS ledger_rows
    FROM quota_log q WHERE q.user_id = u.id
) l ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS purchases,
           count(*) FILTER (WHERE pu.refunded_at IS NOT NULL) AS refunded_purchases,
           max(pu.purchased_at) AS last_purchase
    FROM purchases pu WHERE pu.user_id = u.id
) p ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS jobs,
           count(*) FILTER (WHERE vj.status = 'failed') AS failed_jobs,
           max(vj.created_at) AS last_job
    FROM video_jobs vj WHERE vj.user_id = u.id
) j ON true
WHERE u.id = CAST(:user_id AS uuid);


-- name: ledger
-- One user's credit ledger, oldest first, with the running balance and what each row points at.
-- :param user_id uuid      the user
-- :param limit int = 1000  at most this many rows, the most recent ones (the running balance still counts all)
--
-- Columns:
--   id, created_at, change, reason, transaction_id, job_id   the quota_log row
--   running_balance   sum of change up to and including this row (created_at, id order)
--   purchase_found    for rows with a transaction_id: a purchase of this user with that id exists
--   job_found         for rows with a job_id: that video job exists (NULL when the row has no job_id)
WITH ledger AS (
    SELECT q.id, q.created_at, q.change, q.reason, q.transaction_id, q.job_id,
           sum(q.change) OVER (ORDER BY q.created_at, q.id) AS running_balance
    FROM quota_log q
    WHERE q.user_id = CAST(:user_id AS uuid)
),
latest AS (
    SELECT * FROM ledger ORDER BY created_at DESC, id DESC LIMIT CAST(:limit AS integer)
)
SELECT l.id, l.created_at, l.change, l.reason, l.transaction_id, l.job_id, l.running_balance,
       CASE WHEN l.transaction_id IS NULL THEN NULL
            ELSE EXISTS (SELECT 1 FROM purchases p
                         WHERE p.transaction_id = l.transaction_id AND p.user_id = CAST(:user_id AS uuid))
       END AS purchase_found,
       CASE WHEN l.job_id IS NULL THEN NULL
            ELSE EXISTS (SELECT 1 FROM video_jobs j WHERE j.id = l.job_id)
       END AS job_found
FROM latest l
ORDER BY l.created_at, l.id;


-- name: purchases
-- One user's App Store purchases, newest first, each with the credits the ledger granted for it.
-- :param user_id uuid      the user
-- :param limit int = 1000  at most this many rows, the most recent ones
--
-- Columns:
--   id, transaction_id, product_id, credits, price, currency, environment, purchased_at, refunded_at
--   duplicate        true for a later copy of a transaction_id already recorded (a known backend fault)
--   ledger_credits   sum of this user's iap_purchase ledger rows with this transaction_id
--                    (0 when none: credits never granted)
--   ledger_refunded  sum of this user's iap_refund ledger rows with this transaction_id (0 when none)
SELECT p.id, p.transaction_id, p.product_id, p.credits, p.price, p.currency, p.environment,
       p.purchased_at, p.refunded_at,
       EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = p.transaction_id AND d.id < p.id) AS duplicate,
       COALESCE((SELECT sum(q.change) FROM quota_log q
                 WHERE q.transaction_id = p.transaction_id AND q.user_id = p.user_id
                   AND q.reason = 'iap_purchase'), 0) AS ledger_credits,
       COALESCE((SELECT sum(q.change) FROM quota_log q
                 WHERE q.transaction_id = p.transaction_id AND q.user_id = p.user_id
                   AND q.reason = 'iap_refund'), 0) AS ledger_refunded
FROM purchases p
WHERE p.user_id = CAST(:user_id AS uuid)
ORDER BY p.purchased_at DESC, p.id DESC
LIMIT CAST(:limit AS integer);


-- name: jobs
-- One user's video jobs, newest first, with what the ledger charged and refunded for each.
-- :param user_id uuid      the user
-- :param limit int = 1000  at most this many rows, the most recent ones
--
-- Columns:
--   id, created_at, completed_at, status, provider, model, credits_used, error_code
--   charged    sum of video_generation ledger rows for this job (negative; 0 when none)
--   refunded   sum of generation_refund ledger rows for this job (positive; 0 when none)
--   net_cost   -(charged + refunded): credits the job finally cost the user
SELECT j.id, j.created_at, j.completed_at, j.status, j.provider, m.name AS model, j.credits_used, j.error_code,
       COALESCE(c.charged, 0)                           AS charged,
       COALESCE(c.refunded, 0)                          AS refunded,
       -(COALESCE(c.charged, 0) + COALESCE(c.refunded, 0)) AS net_cost
FROM video_jobs j
LEFT JOIN models m ON m.id = j.model_id
LEFT JOIN LATERAL (
    SELECT sum(q.change) FILTER (WHERE q.reason = 'video_generation')  AS charged,
           sum(q.change) FILTER (WHERE q.reason = 'generation_refund') AS refunded
    FROM quota_log q
    WHERE q.job_id = j.id
) c ON true
WHERE j.user_id = CAST(:user_id AS uuid)
ORDER BY j.created_at DESC, j.id
LIMIT CAST(:limit AS integer);
