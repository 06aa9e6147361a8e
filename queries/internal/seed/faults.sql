-- Demo data generator, step 4 of 5: planted faults.
--
-- Each victim is a non-admin user chosen by a seeded hash, and no user is the
-- victim of two faults, so each fault trips exactly its own reconciliation
-- check and nothing else. Every fault that changes the ledger adjusts the
-- balance the same way (and only where the balance stays >= 0), except the
-- drift and the no-ledger user, which are the balance faults.

-- name: missing_jobs_pick
-- Two completed, charged jobs (each with exactly one ledger row) that will be deleted.
INSERT INTO gen_faults (kind, user_id, job_id)
SELECT 'ledger_missing_job', user_id, id
FROM (
    SELECT DISTINCT ON (j.user_id) j.user_id, j.id, pg_temp.pick(p.seed, 'f_missing_job', j.id::text) AS h
    FROM video_jobs j
    JOIN users u ON u.id = j.user_id AND NOT u.is_admin
    CROSS JOIN seed_params p
    WHERE j.status = 'completed' AND j.credits_used > 0 AND j.created_at < p.anchor - interval '2 days'
    ORDER BY j.user_id, h
) c
ORDER BY h
LIMIT 2

-- name: missing_jobs_delete_keys
-- The deleted jobs' idempotency keys go with them.
DELETE FROM idempotency_keys WHERE job_id IN (SELECT job_id FROM gen_faults WHERE kind = 'ledger_missing_job')

-- name: missing_jobs_delete
-- Jobs deleted behind the ledger's back: their video_generation rows now point nowhere.
DELETE FROM video_jobs WHERE id IN (SELECT job_id FROM gen_faults WHERE kind = 'ledger_missing_job')

-- name: unrefunded_pick
-- Failed charged jobs whose refund will go missing, one per user, users who can afford it.
INSERT INTO gen_faults (kind, user_id, job_id, amount)
SELECT 'failed_without_refund', user_id, id, credits_used
FROM (
    SELECT DISTINCT ON (j.user_id) j.user_id, j.id, j.credits_used, pg_temp.pick(p.seed, 'f_unrefunded', j.id::text) AS h
    FROM video_jobs j
    JOIN users u ON u.id = j.user_id AND NOT u.is_admin AND u.credits_remaining >= j.credits_used
    CROSS JOIN seed_params p
    WHERE j.status = 'failed' AND j.credits_used > 0
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = j.user_id)
    ORDER BY j.user_id, h
) c
ORDER BY h
LIMIT (SELECT n_unrefunded FROM seed_params)

-- name: unrefunded_delete
-- The refunds that never happened.
DELETE FROM quota_log
WHERE reason = 'generation_refund'
  AND job_id IN (SELECT job_id FROM gen_faults WHERE kind = 'failed_without_refund')

-- name: unrefunded_balance
-- The balance never got the refund either (it agrees with the ledger).
UPDATE users u SET credits_remaining = u.credits_remaining - f.amount
FROM gen_faults f
WHERE f.kind = 'failed_without_refund' AND f.user_id = u.id

-- name: negative_pick
-- A user with a small balance who wins a double-spend race: a second expensive job in the same second.
INSERT INTO gen_faults (kind, user_id, job_id, amount)
SELECT 'negative_balance', u.id, pg_temp.uid(p.seed, 'race', 0, 0),
       (SELECT max(cost) FROM gen_models)
FROM users u
CROSS JOIN seed_params p
WHERE NOT u.is_admin AND u.credits_remaining >= 0 AND u.credits_remaining < (SELECT max(cost) FROM gen_models)
  AND EXISTS (SELECT 1 FROM video_jobs j WHERE j.user_id = u.id AND j.status = 'completed')
  -- the race happens just after the user's last job: between 20 and 3 days before the anchor, so a
  -- 30-day backtest sees the balance go below zero at a known moment
  AND (SELECT max(j.created_at) FROM video_jobs j WHERE j.user_id = u.id)
      BETWEEN p.anchor - interval '20 days' AND p.anchor - interval '3 days'
  AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = u.id)
ORDER BY pg_temp.pick(p.seed, 'f_negative', u.id::text)
LIMIT 1

-- name: negative_job
-- The racing job, charged in full although the balance could not cover it.
INSERT INTO video_jobs (id, user_id, model_id, provider, status, credits_used, prompt, idempotency_key,
                        created_at, started_at, completed_at)
SELECT f.job_id, f.user_id, m.id, m.provider, 'completed', f.amount, 'two taps on Generate',
       'idem_race_' || left(md5(p.seed || '/race'), 16),
       last.created_at + interval '1 second', last.created_at + interval '3 seconds',
       last.created_at + interval '3 seconds' + m.base_secs * interval '1 second'
FROM gen_faults f
CROSS JOIN seed_params p
JOIN gen_models m ON m.cost = f.amount
CROSS JOIN LATERAL (SELECT max(created_at) AS created_at FROM video_jobs j WHERE j.user_id = f.user_id) last
WHERE f.kind = 'negative_balance'
ORDER BY m.n
LIMIT 1

-- name: negative_ledger
-- Its charge in the ledger.
INSERT INTO quota_log (user_id, change, reason, job_id, created_at)
SELECT j.user_id, -j.credits_used, 'video_generation', j.id, j.created_at
FROM video_jobs j
JOIN gen_faults f ON f.job_id = j.id AND f.kind = 'negative_balance'

-- name: negative_balance
-- And in the balance, which goes below zero.
UPDATE users u SET credits_remaining = u.credits_remaining - f.amount
FROM gen_faults f
WHERE f.kind = 'negative_balance' AND f.user_id = u.id

-- name: stuck_pick
-- Jobs stuck for 2-12 hours, and a handful of healthy in-flight jobs 1-5 minutes old, for users who can pay.
INSERT INTO gen_faults (kind, user_id, job_id, amount)
SELECT CASE WHEN rn <= p.n_stuck THEN 'stuck_job' ELSE 'inflight_job' END,
       c.id, pg_temp.uid(p.seed, 'unfinished', rn, 0), NULL
FROM (
    SELECT u.id, row_number() OVER (ORDER BY pg_temp.pick(p.seed, 'f_stuck', u.id::text)) AS rn
    FROM users u CROSS JOIN seed_params p
    WHERE NOT u.is_admin AND u.credits_remaining >= (SELECT max(cost) FROM gen_models)
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = u.id)
) c
CROSS JOIN seed_params p
WHERE c.rn <= p.n_stuck + p.n_inflight

-- name: stuck_jobs
-- The unfinished jobs: charged at creation, alternating pending and processing.
INSERT INTO video_jobs (id, user_id, model_id, provider, status, credits_used, prompt, idempotency_key,
                        created_at, started_at, completed_at)
SELECT x.job_id, x.user_id, m.id, m.provider,
       CASE WHEN x.rn % 2 = 0 THEN 'pending' ELSE 'processing' END, m.cost, 'a lighthouse in a storm',
       'idem_' || left(md5(p.seed || '/unfinished/' || x.rn), 24), x.created_at,
       CASE WHEN x.rn % 2 = 1 THEN x.created_at + interval '5 seconds' END, NULL
FROM (
    SELECT f.*, row_number() OVER (ORDER BY f.kind DESC, f.job_id) AS rn,
           CASE WHEN f.kind = 'stuck_job'
                THEN p.anchor - (2 + 10 * pg_temp.rnd(p.seed, 'stuck_age', hashtext(f.job_id::text))) * interval '1 hour'
                ELSE p.anchor - (1 + 4 * pg_temp.rnd(p.seed, 'inflight_age', hashtext(f.job_id::text))) * interval '1 minute'
           END AS created_at,
           width_bucket(pg_temp.rnd(p.seed, 'unfinished_model', hashtext(f.job_id::text)), p.model_cuts) AS model_n
    FROM gen_faults f CROSS JOIN seed_params p
    WHERE f.kind IN ('stuck_job', 'inflight_job')
) x
JOIN gen_models m ON m.n = x.model_n
CROSS JOIN seed_params p
ORDER BY x.created_at, x.job_id

-- name: stuck_ledger
-- Their charges.
INSERT INTO quota_log (user_id, change, reason, job_id, created_at)
SELECT j.user_id, -j.credits_used, 'video_generation', j.id, j.created_at
FROM video_jobs j
JOIN gen_faults f ON f.job_id = j.id AND f.kind IN ('stuck_job', 'inflight_job')
ORDER BY j.created_at, j.id

-- name: stuck_balance
-- And balances.
UPDATE users u SET credits_remaining = u.credits_remaining - j.credits_used
FROM gen_faults f
JOIN video_jobs j ON j.id = f.job_id
WHERE f.kind IN ('stuck_job', 'inflight_job') AND f.user_id = u.id

-- name: duplicates_pick
-- Production purchases whose receipt was recorded twice.
INSERT INTO gen_faults (kind, user_id, transaction_id)
SELECT 'duplicate_transaction', user_id, transaction_id
FROM (
    SELECT DISTINCT ON (pu.user_id) pu.user_id, pu.transaction_id,
           pg_temp.pick(p.seed, 'f_duplicate', pu.transaction_id) AS h
    FROM purchases pu
    JOIN users u ON u.id = pu.user_id AND NOT u.is_admin
    CROSS JOIN seed_params p
    WHERE pu.environment = 'Production' AND pu.refunded_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = pu.user_id)
    ORDER BY pu.user_id, h
) c
ORDER BY h
LIMIT (SELECT n_duplicates FROM seed_params)

-- name: duplicates_insert
-- The second row of each: same transaction, verified again a few seconds later; credited once.
INSERT INTO purchases (transaction_id, user_id, product_id, credits, price, currency, environment,
                       purchased_at, refunded_at, created_at)
SELECT pu.transaction_id, pu.user_id, pu.product_id, pu.credits, pu.price, pu.currency, pu.environment,
       pu.purchased_at, NULL, pu.created_at + interval '7 seconds'
FROM purchases pu
JOIN gen_faults f ON f.transaction_id = pu.transaction_id AND f.kind = 'duplicate_transaction'
ORDER BY pu.purchased_at, pu.transaction_id

-- name: bad_credit_pick
-- Two more payers: one purchase never credited, one credited with the wrong amount.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT CASE WHEN rn = 1 THEN 'missing_credit' ELSE 'wrong_credit_amount' END, c.id,
       '2000' || lpad((999999000000 + rn)::text, 12, '0'),
       CASE WHEN rn = 1 THEN 0 ELSE 100 END
FROM (
    SELECT u.id, row_number() OVER (ORDER BY pg_temp.pick(p.seed, 'f_bad_credit', u.id::text)) AS rn
    FROM users u CROSS JOIN seed_params p
    WHERE NOT u.is_admin AND u.created_at < p.anchor - interval '10 days'
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = u.id)
) c
WHERE c.rn <= 2

-- name: bad_credit_purchases
-- Their purchases: 300 credits (not credited) and 1000 credits (credited as 100).
INSERT INTO purchases (transaction_id, user_id, product_id, credits, price, currency, environment,
                       purchased_at, refunded_at, created_at)
SELECT f.transaction_id, f.user_id, pr.id, pr.credits, pr.price, 'USD', 'Production', t.at, NULL,
       t.at + interval '2 seconds'
FROM gen_faults f
CROSS JOIN seed_params p
JOIN gen_products pr ON pr.id = CASE f.kind WHEN 'missing_credit' THEN 'credits_300' ELSE 'credits_1000' END
CROSS JOIN LATERAL (SELECT p.anchor - (4 + 2 * pg_temp.rnd(p.seed, 'bad_credit_at', hashtext(f.transaction_id)))
                                      * interval '1 day' AS at) t
WHERE f.kind IN ('missing_credit', 'wrong_credit_amount')
ORDER BY f.transaction_id

-- name: bad_credit_ledger
-- Only the wrong-amount purchase reaches the ledger (with a dropped zero).
INSERT INTO quota_log (user_id, change, reason, transaction_id, created_at)
SELECT pu.user_id, f.amount, 'iap_purchase', pu.transaction_id, pu.purchased_at + interval '2 seconds'
FROM purchases pu
JOIN gen_faults f ON f.transaction_id = pu.transaction_id AND f.kind = 'wrong_credit_amount'

-- name: bad_credit_balance
-- The balance follows the ledger, so only the purchase check can see these two.
UPDATE users u SET credits_remaining = u.credits_remaining + f.amount
FROM gen_faults f
WHERE f.kind = 'wrong_credit_amount' AND f.user_id = u.id

-- name: other_user_pick
-- Two payers whose purchase (production, not refunded, recorded once) was credited to someone else.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT 'credited_other_user', user_id, transaction_id, credits
FROM (
    SELECT DISTINCT ON (pu.user_id) pu.user_id, pu.transaction_id, pu.credits,
           pg_temp.pick(p.seed, 'f_other_user', pu.transaction_id) AS h
    FROM purchases pu
    JOIN users u ON u.id = pu.user_id AND NOT u.is_admin AND u.credits_remaining >= pu.credits
    CROSS JOIN seed_params p
    WHERE pu.environment = 'Production' AND pu.refunded_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = pu.transaction_id AND d.id <> pu.id)
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = pu.user_id)
    ORDER BY pu.user_id, h
) c
ORDER BY h
LIMIT 2

-- name: other_user_recipients
-- Who got those credits instead: one other user each.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT 'credited_other_user_recipient', r.id, f.transaction_id, f.amount
FROM (SELECT transaction_id, amount, row_number() OVER (ORDER BY transaction_id) AS rn
      FROM gen_faults WHERE kind = 'credited_other_user') f
JOIN (SELECT u.id, row_number() OVER (ORDER BY pg_temp.pick(p.seed, 'f_other_recipient', u.id::text)) AS rn
      FROM users u CROSS JOIN seed_params p
      WHERE NOT u.is_admin AND NOT EXISTS (SELECT 1 FROM gen_faults g WHERE g.user_id = u.id)) r ON r.rn = f.rn

-- name: other_user_ledger
-- The credit row lands on the other account.
UPDATE quota_log q SET user_id = r.user_id
FROM gen_faults r
WHERE r.kind = 'credited_other_user_recipient' AND q.transaction_id = r.transaction_id AND q.reason = 'iap_purchase'

-- name: other_user_balance
-- Balances follow the ledger: the payer never got the credits, the other user did.
UPDATE users u SET credits_remaining = u.credits_remaining
                   + CASE f.kind WHEN 'credited_other_user' THEN -f.amount ELSE f.amount END
FROM gen_faults f
WHERE f.kind IN ('credited_other_user', 'credited_other_user_recipient') AND f.user_id = u.id

-- name: refund_amount_pick
-- Two refunded failed jobs whose refund is wrong: one refunds half, one is refunded twice.
INSERT INTO gen_faults (kind, user_id, job_id, amount)
SELECT CASE WHEN row_number() OVER (ORDER BY h) = 1 THEN 'partial_refund' ELSE 'double_refund' END,
       user_id, id, credits_used
FROM (
    SELECT DISTINCT ON (j.user_id) j.user_id, j.id, j.credits_used, pg_temp.pick(p.seed, 'f_refund_amount', j.id::text) AS h
    FROM video_jobs j
    JOIN users u ON u.id = j.user_id AND NOT u.is_admin AND u.credits_remaining >= j.credits_used
    CROSS JOIN seed_params p
    WHERE j.status = 'failed' AND j.credits_used > 0
      AND EXISTS (SELECT 1 FROM quota_log q WHERE q.job_id = j.id AND q.reason = 'generation_refund')
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = j.user_id)
    ORDER BY j.user_id, h
) c
ORDER BY h
LIMIT 2

-- name: refund_partial
-- Half the charge given back (rounded down).
UPDATE quota_log q SET change = f.amount / 2
FROM gen_faults f
WHERE f.kind = 'partial_refund' AND q.job_id = f.job_id AND q.reason = 'generation_refund'

-- name: refund_double
-- A retried refund: the same refund written again half a minute later.
INSERT INTO quota_log (user_id, change, reason, job_id, created_at)
SELECT j.user_id, j.credits_used, 'generation_refund', j.id, j.completed_at + interval '30 seconds'
FROM video_jobs j
JOIN gen_faults f ON f.job_id = j.id AND f.kind = 'double_refund'

-- name: completed_refund_pick
-- Two completed, charged jobs that support refunded anyway.
INSERT INTO gen_faults (kind, user_id, job_id, amount)
SELECT 'completed_refund', user_id, id, credits_used
FROM (
    SELECT DISTINCT ON (j.user_id) j.user_id, j.id, j.credits_used, pg_temp.pick(p.seed, 'f_completed_refund', j.id::text) AS h
    FROM video_jobs j
    JOIN users u ON u.id = j.user_id AND NOT u.is_admin
    CROSS JOIN seed_params p
    WHERE j.status = 'completed' AND j.credits_used > 0 AND j.completed_at < p.anchor - interval '1 day'
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = j.user_id)
    ORDER BY j.user_id, h
) c
ORDER BY h
LIMIT 2

-- name: completed_refund_ledger
-- The refund of a job that worked.
INSERT INTO quota_log (user_id, change, reason, job_id, created_at)
SELECT j.user_id, j.credits_used, 'generation_refund', j.id, j.completed_at + interval '10 minutes'
FROM video_jobs j
JOIN gen_faults f ON f.job_id = j.id AND f.kind = 'completed_refund'

-- name: iap_refund_pick
-- Two App Store refunds the ledger got wrong: one never taken back, one taken back only in half.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT CASE WHEN row_number() OVER (ORDER BY h) = 1 THEN 'iap_missing_debit' ELSE 'iap_wrong_debit' END,
       user_id, transaction_id, credits
FROM (
    SELECT DISTINCT ON (pu.user_id) pu.user_id, pu.transaction_id, pu.credits,
           pg_temp.pick(p.seed, 'f_iap_refund', pu.transaction_id) AS h
    FROM purchases pu
    JOIN users u ON u.id = pu.user_id AND NOT u.is_admin
    CROSS JOIN seed_params p
    WHERE pu.refunded_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM quota_log q WHERE q.transaction_id = pu.transaction_id AND q.reason = 'iap_refund')
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = pu.user_id)
    ORDER BY pu.user_id, h
) c
ORDER BY h
LIMIT 2

-- name: iap_refund_missing
-- The debit that never happened.
DELETE FROM quota_log q
USING gen_faults f
WHERE f.kind = 'iap_missing_debit' AND q.transaction_id = f.transaction_id AND q.reason = 'iap_refund'

-- name: iap_refund_half
-- Half the credits taken back.
UPDATE quota_log q SET change = -(f.amount / 2)
FROM gen_faults f
WHERE f.kind = 'iap_wrong_debit' AND q.transaction_id = f.transaction_id AND q.reason = 'iap_refund'

-- name: iap_debit_pick
-- A purchase the App Store never refunded (production, recorded once, at least two days old) debited anyway.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT 'iap_debit_without_refund', pu.user_id, pu.transaction_id, pu.credits
FROM purchases pu
JOIN users u ON u.id = pu.user_id AND NOT u.is_admin AND u.credits_remaining >= pu.credits
CROSS JOIN seed_params p
WHERE pu.environment = 'Production' AND pu.refunded_at IS NULL AND pu.purchased_at < p.anchor - interval '2 days'
  AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = pu.transaction_id AND d.id <> pu.id)
  AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = pu.user_id)
ORDER BY pg_temp.pick(p.seed, 'f_iap_debit', pu.transaction_id)
LIMIT 1

-- name: iap_debit_ledger
-- The stray debit, a day after the purchase.
INSERT INTO quota_log (user_id, change, reason, transaction_id, created_at)
SELECT pu.user_id, -pu.credits, 'iap_refund', pu.transaction_id, pu.purchased_at + interval '1 day'
FROM purchases pu
JOIN gen_faults f ON f.transaction_id = pu.transaction_id AND f.kind = 'iap_debit_without_refund'

-- name: refund_faults_balance
-- Balances follow the ledger for every refund fault above, so only their own checks see them.
UPDATE users u SET credits_remaining = u.credits_remaining + CASE f.kind
        WHEN 'partial_refund' THEN -(f.amount - f.amount / 2)
        WHEN 'double_refund' THEN f.amount
        WHEN 'completed_refund' THEN f.amount
        WHEN 'iap_missing_debit' THEN f.amount
        WHEN 'iap_wrong_debit' THEN f.amount - f.amount / 2
        WHEN 'iap_debit_without_refund' THEN -f.amount END
FROM gen_faults f
WHERE f.kind IN ('partial_refund', 'double_refund', 'completed_refund', 'iap_missing_debit', 'iap_wrong_debit',
                 'iap_debit_without_refund')
  AND f.user_id = u.id

-- name: no_ledger_user
-- A user imported from the old system: a balance and not a single ledger row.
INSERT INTO users (id, email, credits_remaining, is_admin, created_at)
SELECT pg_temp.uid(p.seed, 'legacy', 0, 0), 'legacy-import@example.com', 250, false, p.anchor - interval '40 days'
FROM seed_params p

-- name: no_ledger_record
-- Remember it.
INSERT INTO gen_faults (kind, user_id, amount)
SELECT 'no_ledger_user', pg_temp.uid(p.seed, 'legacy', 0, 0), 250 FROM seed_params p

-- name: drift_pick
-- Users whose stored balance drifts from their ledger (a lost update), staying >= 0.
INSERT INTO gen_faults (kind, user_id, amount)
SELECT 'balance_drift', c.id,
       CASE WHEN c.credits_remaining >= 20 AND c.r < 0.5 THEN -(5 + floor(c.r2 * 15)::int)
            ELSE 5 + floor(c.r2 * 45)::int END
FROM (
    SELECT u.id, u.credits_remaining,
           pg_temp.pick(p.seed, 'f_drift', u.id::text) AS h,
           pg_temp.rnd(p.seed, 'drift_sign', hashtext(u.id::text)) AS r,
           pg_temp.rnd(p.seed, 'drift_size', hashtext(u.id::text)) AS r2
    FROM users u CROSS JOIN seed_params p
    WHERE NOT u.is_admin AND u.credits_remaining >= 0
      AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = u.id)
) c
ORDER BY c.h
LIMIT (SELECT n_drift FROM seed_params)

-- name: drift_apply
-- The drift itself: balance changed, ledger untouched.
UPDATE users u SET credits_remaining = u.credits_remaining + f.amount
FROM gen_faults f
WHERE f.kind = 'balance_drift' AND f.user_id = u.id

-- name: abuse_pick
-- The abuse burst's account: a leaked session token of one ordinary user, victim of nothing else.
INSERT INTO gen_faults (kind, user_id)
SELECT 'abuse', u.id
FROM users u
CROSS JOIN seed_params p
WHERE NOT u.is_admin AND u.created_at < p.abuse_start - interval '1 day'
  AND NOT EXISTS (SELECT 1 FROM gen_faults f WHERE f.user_id = u.id)
ORDER BY pg_temp.pick(p.seed, 'f_abuse', u.id::text)
LIMIT 1

-- name: abuse_requests
-- A script on one address asks for a video every 15 seconds for an hour (240 requests); the rate
-- limiter turns them away, so no job, charge or ledger row comes of them: only rate_limit_log sees it.
INSERT INTO rate_limit_log (ip_address, action, user_id, created_at)
SELECT p.abuse_ip, 'video_generation', f.user_id, p.abuse_start + i * interval '15 seconds'
FROM seed_params p
CROSS JOIN gen_faults f
CROSS JOIN generate_series(0, 239) AS i
WHERE f.kind = 'abuse'
ORDER BY i

-- name: duplicate_refund_pick
-- One recorded-twice purchase the App Store later refunds, the REFUND landing on the second copy only
-- (revenue must still count it: a refund belongs to the transaction, whichever copy carries it).
-- Planted last, on a duplicate victim already, so every earlier pick and row is unchanged by it.
INSERT INTO gen_faults (kind, user_id, transaction_id, amount)
SELECT 'refund_on_duplicate', pu.user_id, pu.transaction_id, pu.credits
FROM gen_faults f
JOIN purchases pu ON pu.transaction_id = f.transaction_id
JOIN users u ON u.id = pu.user_id AND u.credits_remaining >= pu.credits
CROSS JOIN seed_params p
WHERE f.kind = 'duplicate_transaction' AND pu.purchased_at < p.anchor - interval '3 days'
  AND NOT EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = pu.transaction_id AND d.id < pu.id)
ORDER BY pg_temp.pick(p.seed, 'f_duplicate_refund', pu.transaction_id)
LIMIT 1

-- name: duplicate_refund_mark
-- The refund, at noon UTC the day after the purchase (the same local day in every zone from UTC-11 to
-- UTC+11), recorded on the later copy only.
UPDATE purchases pu
   SET refunded_at = (date_trunc('day', pu.purchased_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') + interval '36 hours'
FROM gen_faults f
WHERE f.kind = 'refund_on_duplicate' AND pu.transaction_id = f.transaction_id
  AND EXISTS (SELECT 1 FROM purchases d WHERE d.transaction_id = pu.transaction_id AND d.id < pu.id)

-- name: duplicate_refund_ledger
-- The backend took the credits back (so only revenue, not the refund checks, is concerned).
INSERT INTO quota_log (user_id, change, reason, transaction_id, created_at)
SELECT pu.user_id, -f.amount, 'iap_refund', pu.transaction_id, pu.refunded_at + interval '2 seconds'
FROM purchases pu
JOIN gen_faults f ON f.transaction_id = pu.transaction_id AND f.kind = 'refund_on_duplicate'
WHERE pu.refunded_at IS NOT NULL

-- name: duplicate_refund_balance
-- The balance follows the ledger.
UPDATE users u SET credits_remaining = u.credits_remaining - f.amount
FROM gen_faults f
WHERE f.kind = 'refund_on_duplicate' AND f.user_id = u.id
