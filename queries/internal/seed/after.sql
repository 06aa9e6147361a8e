-- Demo data generator, step 3 of 5: admin actions and balances from the ledger.

-- name: admin_actions_plan
-- Admin actions: credit refunds and adjustments (each with its ledger row) and model disable/enable pairs.
CREATE TEMP TABLE gen_admin ON COMMIT DROP AS
SELECT i,
       CASE i % 4 WHEN 0 THEN 'model_disable' WHEN 2 THEN 'credit_adjustment' ELSE 'credit_refund' END AS action_type,
       (SELECT id FROM gen_users WHERE idx = floor(pg_temp.rnd(p.seed, 'admin_who', i) * 3)::int) AS admin_user_id,
       (SELECT id FROM gen_users
        WHERE idx = 3 + floor(pg_temp.rnd(p.seed, 'admin_target', i) * (p.n_users - 3))::int) AS target_user_id,
       (SELECT id FROM gen_models WHERE n = 1 + floor(pg_temp.rnd(p.seed, 'admin_model', i) * 8)::int) AS target_model_id,
       (5 + floor(pg_temp.rnd(p.seed, 'admin_amount', i) * 46))::int AS amount,
       p.end_at - (1 + 60 * pg_temp.rnd(p.seed, 'admin_at', i)) * interval '1 day' AS created_at
FROM seed_params p, generate_series(1, p.n_admin_actions) AS i

-- name: admin_actions_insert
-- The backend's admin_actions; a disabled model is enabled again three hours later.
INSERT INTO admin_actions (admin_user_id, action_type, target_user_id, target_model_id, amount, reason, details, created_at)
SELECT admin_user_id, action_type, target_user_id, target_model_id, amount, reason, details, created_at
FROM (
    SELECT admin_user_id, action_type,
           CASE WHEN action_type LIKE 'credit%' THEN target_user_id END AS target_user_id,
           CASE WHEN action_type LIKE 'model%' THEN target_model_id END AS target_model_id,
           CASE WHEN action_type LIKE 'credit%' THEN amount END AS amount,
           CASE action_type WHEN 'credit_refund' THEN 'video came out broken, refunded by support'
                            WHEN 'credit_adjustment' THEN 'goodwill credits after outage'
                            ELSE 'provider degraded' END AS reason,
           jsonb_build_object('ticket', 1000 + i) AS details, created_at, i
    FROM gen_admin
    UNION ALL
    SELECT admin_user_id, 'model_enable', NULL, target_model_id, NULL, 'provider recovered',
           jsonb_build_object('ticket', 1000 + i), created_at + interval '3 hours', i
    FROM gen_admin WHERE action_type = 'model_disable'
) a
ORDER BY created_at, i

-- name: admin_ledger_insert
-- Ledger rows of the admin credit actions.
INSERT INTO quota_log (user_id, change, reason, transaction_id, job_id, created_at)
SELECT target_user_id, amount,
       CASE action_type WHEN 'credit_refund' THEN 'admin_refund' ELSE 'admin_adjustment' END,
       NULL, NULL, created_at
FROM gen_admin
WHERE action_type LIKE 'credit%'
ORDER BY created_at, i

-- name: balances
-- Every user's balance is the sum of their ledger (faults are planted afterwards).
UPDATE users u
SET credits_remaining = l.total
FROM (SELECT user_id, sum(change)::int AS total FROM quota_log GROUP BY user_id) l
WHERE l.user_id = u.id

-- name: restore_keys_memory
-- Room to sort each index build in memory (setup.sql dropped them for the load).
SET LOCAL maintenance_work_mem = '512MB'

-- name: restore_keys
-- The keys, indexes and foreign keys setup.sql dropped, built over the loaded rows: keys first (foreign
-- keys need them), one validating join per foreign key.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT create_sql FROM gen_deferred ORDER BY step, n LOOP
        EXECUTE r.create_sql;
    END LOOP;
END
$$
