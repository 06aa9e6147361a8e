-- description: Users with a negative credit balance.
-- severity: critical
-- offender: user_id
-- requires: negative_balance
--
-- The live metric probe `negative_balance` watches the same thing, through this
-- very statement (queries/metrics.sql pastes it: one definition): while its
-- alert fires, this one waits behind it, so the founder hears about it once.
SELECT id AS user_id, email, credits_remaining, created_at
FROM users
WHERE credits_remaining < 0
ORDER BY credits_remaining, id
