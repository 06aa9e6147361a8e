-- description: Users whose stored balance differs from the sum of their ledger (no ledger rows counts as 0).
-- severity: warning
-- offender: user_id
--
-- The ledger (quota_log) is the source of truth for credits: every change to
-- users.credits_remaining must have a signed row there. Each table is read once
-- (aggregate first, then join), not one subquery per user.
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
