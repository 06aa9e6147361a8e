-- Demo data generator, step 1 of 5: helpers, parameters, reference data, users.
--
-- Run by ops/data/seed.py on one connection inside one transaction, statement by
-- statement in file order. Temp objects vanish at COMMIT (ON COMMIT DROP /
-- pg_temp), so the target database only ever holds the backend's own tables.
--
-- Randomness is a hash of (seed, salt, row key), never random(): the same seed
-- and anchor give the same rows whatever plan PostgreSQL picks, and a
-- different seed gives different data.

-- name: session_settings
-- Room for the per-chunk sorts; no JIT (compiling costs more than it saves here).
SET LOCAL work_mem = '256MB'

-- name: session_jit
-- No JIT for the generator's statements.
SET LOCAL jit = off

-- name: defer_keys
-- Keys, foreign keys and indexes of the backend tables are dropped for the load and built again
-- once every row is in (after.sql, restore_keys): one sort per index instead of one random
-- index insertion and one foreign-key lookup per row, which was most of the load's time. The
-- definitions are read from the catalog, so whatever queries/schema.sql (or another tool) created
-- comes back exactly as it was; all of it in this transaction, so a failed seed changes nothing.
DO $$
DECLARE
    r record;
BEGIN
    CREATE TEMP TABLE gen_deferred ON COMMIT DROP AS
    WITH t AS (
        SELECT to_regclass(n) AS rel
        FROM unnest(ARRAY['users', 'models', 'products', 'purchases', 'quota_log', 'video_jobs', 'error_log',
                          'rate_limit_log', 'idempotency_keys', 'admin_actions']) AS n
    ), cons AS (
        -- foreign keys from or to a backend table, then the keys they lean on
        SELECT CASE c.contype WHEN 'f' THEN 3 ELSE 1 END AS step, c.conname::text AS n,
               format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                      pg_get_constraintdef(c.oid)) AS create_sql,
               format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_sql
        FROM pg_constraint c
        WHERE (c.contype = 'f' AND (c.conrelid IN (SELECT rel FROM t) OR c.confrelid IN (SELECT rel FROM t)))
           OR (c.contype IN ('p', 'u', 'x') AND c.conrelid IN (SELECT rel FROM t))
    ), idx AS (
        -- plain indexes (those behind a constraint come back with it)
        SELECT 2 AS step, i.indexrelid::regclass::text AS n, pg_get_indexdef(i.indexrelid) AS create_sql,
               format('DROP INDEX %s', i.indexrelid::regclass) AS drop_sql
        FROM pg_index i
        WHERE i.indrelid IN (SELECT rel FROM t)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    )
    SELECT * FROM cons UNION ALL SELECT * FROM idx;
    -- foreign keys first, then the keys they reference, then the plain indexes
    FOR r IN SELECT drop_sql FROM gen_deferred ORDER BY step DESC, n LOOP
        EXECUTE r.drop_sql;
    END LOOP;
END
$$

-- name: fn_rnd
-- Uniform [0, 1) from (seed, salt, key); inlined by the planner.
CREATE FUNCTION pg_temp.rnd(seed int, salt text, i bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashtextextended(salt || i::text, seed) & 9007199254740991)::float8 / 9007199254740992.0 $$

-- name: fn_rnd2
-- Uniform [0, 1) from (seed, salt, key, sub-key).
CREATE FUNCTION pg_temp.rnd2(seed int, salt text, i bigint, j bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashtextextended(salt || i::text || '/' || j::text, seed) & 9007199254740991)::float8 / 9007199254740992.0 $$

-- name: fn_uid
-- A deterministic UUID for (seed, kind, key, sub-key).
CREATE FUNCTION pg_temp.uid(seed int, salt text, i bigint, j bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT md5(seed::text || '/' || salt || '/' || i::text || '/' || j::text)::uuid $$

-- name: fn_pick
-- A deterministic sort key, used to choose fault victims from a candidate set.
CREATE FUNCTION pg_temp.pick(seed int, salt text, t text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(salt || t, seed) $$

-- name: params_table
-- One row of generation parameters that every later statement joins.
CREATE TEMP TABLE seed_params (
    seed             int NOT NULL,
    anchor           timestamptz NOT NULL,  -- generation "now"
    n_users          int NOT NULL,
    n_days           int NOT NULL,
    start_at         timestamptz NOT NULL,  -- UTC midnight n_days before the anchor's day
    end_at           timestamptz NOT NULL,  -- regular events stop one hour before the anchor
    bonus            int NOT NULL,          -- signup_bonus credits
    payer_share      float8 NOT NULL,
    n_drift          int NOT NULL,
    n_duplicates     int NOT NULL,
    n_unrefunded     int NOT NULL,
    n_stuck          int NOT NULL,
    n_inflight       int NOT NULL,
    n_admin_actions  int NOT NULL,
    spike_provider   text,
    spike_start      timestamptz,           -- UTC midnight of the spike day
    spike_outage_end timestamptz,           -- the spike opens with the provider down for every job
    gap_start        timestamptz,           -- purchases stopped: no purchase in [gap_start, gap_end)
    gap_end          timestamptz,
    abuse_start      timestamptz,           -- abuse: one IP hammers video generation for an hour
    abuse_end        timestamptz,
    abuse_ip         inet,
    model_cuts       float8[],              -- cumulative popularity, for width_bucket
    product_cuts     float8[]
) ON COMMIT DROP

-- name: params
-- Store the bound parameters.
-- :param seed int                 generator seed
-- :param anchor timestamptz       generation "now"
-- :param users int                number of regular users
-- :param days int                 days of history before the anchor's day
-- :param bonus int                signup bonus credits
-- :param payer_share float        share of users who ever buy credits
-- :param drift int                users whose balance drifts from the ledger
-- :param duplicates int           duplicated App Store transaction ids
-- :param unrefunded int           failed charged jobs whose refund is missing
-- :param stuck int                jobs stuck in pending/processing for hours
-- :param inflight int             legitimately recent in-flight jobs
-- :param admin_actions int        admin actions (credit refunds, adjustments, model toggles)
INSERT INTO seed_params (seed, anchor, n_users, n_days, start_at, end_at, bonus, payer_share, n_drift,
                         n_duplicates, n_unrefunded, n_stuck, n_inflight, n_admin_actions)
SELECT CAST(:seed AS int), a, CAST(:users AS int), CAST(:days AS int),
       (date_trunc('day', a AT TIME ZONE 'UTC') - CAST(:days AS int) * interval '1 day') AT TIME ZONE 'UTC',
       a - interval '1 hour',
       CAST(:bonus AS int), CAST(:payer_share AS float8), CAST(:drift AS int), CAST(:duplicates AS int),
       CAST(:unrefunded AS int), CAST(:stuck AS int), CAST(:inflight AS int), CAST(:admin_actions AS int)
FROM (SELECT CAST(:anchor AS timestamptz) AS a) x

-- name: models_table
-- Video models: provider, price in credits, failure rate, typical duration.
CREATE TEMP TABLE gen_models (
    n           int PRIMARY KEY,
    id          uuid NOT NULL,
    name        text NOT NULL,
    provider    text NOT NULL,
    cost        int NOT NULL,
    fail_rate   float8 NOT NULL,
    base_secs   float8 NOT NULL,
    weight      float8 NOT NULL,
    cut         float8                -- cumulative share of the models before this one
) ON COMMIT DROP

-- name: models_rows
-- Four providers with different prices, reliability and speed. Base failure
-- rates average about 1 %, the error-rate warning line, so the planted spike stands out.
INSERT INTO gen_models (n, id, name, provider, cost, fail_rate, base_secs, weight)
SELECT n, md5('opsbench-model/' || name)::uuid, name, provider, cost, fail_rate, base_secs, weight
FROM (VALUES
    (1, 'gen3-turbo',       'runway', 10, 0.006,  55.0, 0.20),
    (2, 'gen3-alpha',       'runway', 20, 0.006,  95.0, 0.08),
    (3, 'dream-machine',    'luma',   10, 0.010,  80.0, 0.17),
    (4, 'ray2',             'luma',   20, 0.010, 120.0, 0.07),
    (5, 'kling-1.6',        'kling',   5, 0.015, 140.0, 0.20),
    (6, 'kling-2.0-master', 'kling',  40, 0.015, 210.0, 0.05),
    (7, 'pika-2.2',         'pika',    5, 0.008,  35.0, 0.15),
    (8, 'pika-turbo',       'pika',   10, 0.008,  20.0, 0.08)
) AS m (n, name, provider, cost, fail_rate, base_secs, weight)

-- name: models_cuts
-- Cumulative popularity so a uniform draw maps to a model with width_bucket.
UPDATE gen_models g
SET cut = c.cut
FROM (SELECT n, coalesce(sum(weight) OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                / sum(weight) OVER () AS cut
      FROM gen_models) c
WHERE c.n = g.n

-- name: models_insert
-- The backend's models table.
INSERT INTO models (id, name, provider, cost_per_generation, is_active, created_at)
SELECT g.id, g.name, g.provider, g.cost, true, p.start_at - interval '30 days'
FROM gen_models g, seed_params p
ORDER BY g.n

-- name: products_table
-- Credit packs with their share of purchases.
CREATE TEMP TABLE gen_products (
    n       int PRIMARY KEY,
    id      text NOT NULL,
    credits int NOT NULL,
    price   numeric(10, 2) NOT NULL,
    weight  float8 NOT NULL,
    cut     float8
) ON COMMIT DROP

-- name: products_rows
-- The product mix: small packs sell most, big packs bring the money.
INSERT INTO gen_products (n, id, credits, price, weight)
VALUES (1, 'credits_100', 100, 4.99, 0.45),
       (2, 'credits_300', 300, 12.99, 0.30),
       (3, 'credits_1000', 1000, 34.99, 0.18),
       (4, 'credits_3000', 3000, 89.99, 0.07)

-- name: products_cuts
-- Cumulative shares for width_bucket.
UPDATE gen_products g
SET cut = c.cut
FROM (SELECT n, coalesce(sum(weight) OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                / sum(weight) OVER () AS cut
      FROM gen_products) c
WHERE c.n = g.n

-- name: products_insert
-- The backend's products table.
INSERT INTO products (id, name, credits, price, currency, is_active)
SELECT id, credits || ' credits', credits, price, 'USD', true
FROM gen_products
ORDER BY n

-- name: params_derived
-- The planted incidents (a failure spike on one provider, one UTC day three days before the anchor, opening
-- with a two-hour outage; a purchase gap; an abuse burst) and the lookup arrays.
UPDATE seed_params p
SET spike_provider = (ARRAY['runway', 'luma', 'kling', 'pika'])[1 + floor(pg_temp.rnd(p.seed, 'spike_provider', 0) * 4)::int],
    spike_start    = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '3 days') AT TIME ZONE 'UTC',
    spike_outage_end = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '3 days' + interval '2 hours')
                       AT TIME ZONE 'UTC',
    -- a broken paywall release: twelve hours without a purchase (08:00-20:00 UTC), nine days before the anchor's day
    gap_start      = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '9 days' + interval '8 hours')
                     AT TIME ZONE 'UTC',
    gap_end        = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '9 days' + interval '20 hours')
                     AT TIME ZONE 'UTC',
    -- a script hammering generate-video from one address (inside the 7 days rate_limit_log keeps)
    abuse_start    = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '2 days' + interval '15 hours 7 minutes')
                     AT TIME ZONE 'UTC',
    abuse_end      = (date_trunc('day', p.anchor AT TIME ZONE 'UTC') - interval '2 days' + interval '16 hours 7 minutes')
                     AT TIME ZONE 'UTC',
    abuse_ip       = inet '203.0.113.66',
    model_cuts     = (SELECT array_agg(cut ORDER BY n) FROM gen_models),
    product_cuts   = (SELECT array_agg(cut ORDER BY n) FROM gen_products)

-- name: days_table
-- Signup days: user index ranges [lo, hi) per day.
CREATE TEMP TABLE gen_days (
    d         int PRIMARY KEY,
    day_start timestamptz NOT NULL,
    secs      float8 NOT NULL,           -- usable seconds of the day (today is partial)
    lo        int NOT NULL,
    hi        int NOT NULL
) ON COMMIT DROP

-- name: days_rows
-- Growth over time (signups x e^2 over the window), busier weekends, today partial.
INSERT INTO gen_days (d, day_start, secs, lo, hi)
WITH d AS (
    SELECT g AS d,
           p.start_at + g * interval '1 day' AS day_start,
           greatest(0, least(86400, extract(epoch FROM p.end_at - (p.start_at + g * interval '1 day'))))::float8 AS secs,
           p.n_days, p.n_users, p.seed
    FROM seed_params p, generate_series(0, p.n_days) AS g
), w AS (
    SELECT d.*,
           exp(2.0 * d / n_days)
           * CASE extract(isodow FROM day_start AT TIME ZONE 'UTC') WHEN 6 THEN 1.30 WHEN 7 THEN 1.25 ELSE 1.0 END
           * (0.85 + 0.3 * pg_temp.rnd(seed, 'signup_day', d))
           * secs / 86400.0 AS w
    FROM d
), c AS (
    SELECT w.*,
           CASE WHEN d = n_days THEN n_users
                ELSE floor(n_users * sum(w) OVER (ORDER BY d) / sum(w) OVER ())::int END AS hi
    FROM w
)
SELECT d, day_start, secs, coalesce(lag(hi) OVER (ORDER BY d), 0), hi
FROM c

-- name: users_table
-- Per-user generation plan.
CREATE TEMP TABLE gen_users (
    idx          int PRIMARY KEY,
    id           uuid NOT NULL,
    email        text NOT NULL,
    created_at   timestamptz NOT NULL,
    is_admin     boolean NOT NULL,
    n_purchases  int NOT NULL,           -- 0 for users who never pay
    n_cand       int NOT NULL,           -- candidate jobs; the credit budget cuts them
    fav_model    int NOT NULL,
    tau_days     float8 NOT NULL,        -- engagement: mean days from signup to an activity
    ip           inet NOT NULL
) ON COMMIT DROP

-- name: users_rows
-- Users: signup spread over their day; a few admins; payers buy 1..20 packs; engagement varies.
INSERT INTO gen_users (idx, id, email, created_at, is_admin, n_purchases, n_cand, fav_model, tau_days, ip)
SELECT i,
       pg_temp.uid(p.seed, 'user', i, 0),
       CASE WHEN i < 3 THEN 'admin' || i || '@opsbench.example'
            ELSE 'user' || left(md5(p.seed || '/email/' || i), 10) || '@example.com' END,
       d.day_start + pg_temp.rnd(p.seed, 'signup_at', i) * d.secs * interval '1 second',
       i < 3,
       CASE WHEN i >= 3 AND pg_temp.rnd(p.seed, 'payer', i) < p.payer_share
            THEN least(20, 1 + floor(-ln(1.0 - pg_temp.rnd(p.seed, 'n_purchases', i)) * 2.5)::int)
            ELSE 0 END,
       least(400, CASE WHEN i >= 3 AND pg_temp.rnd(p.seed, 'payer', i) < p.payer_share
                       THEN 10 + floor(-ln(1.0 - pg_temp.rnd(p.seed, 'n_cand', i)) * 150.0)::int
                       ELSE 1 + floor(-ln(1.0 - pg_temp.rnd(p.seed, 'n_cand', i)) * 3.0)::int END),
       width_bucket(pg_temp.rnd(p.seed, 'fav_model', i), p.model_cuts),
       2 + 40 * pg_temp.rnd(p.seed, 'tau', i),
       '100.64.0.0'::inet + floor(pg_temp.rnd(p.seed, 'ip', i) * 4194304)::bigint
FROM seed_params p
CROSS JOIN gen_days d
CROSS JOIN LATERAL generate_series(d.lo, d.hi - 1) AS i

-- name: users_insert
-- The backend's users; balances are set from the ledger once it is written.
INSERT INTO users (id, email, credits_remaining, is_admin, created_at)
SELECT id, email, 0, is_admin, created_at
FROM gen_users
ORDER BY idx

-- name: chunk_tables_purchases
-- Per-chunk scratch: purchases of the chunk's users.
CREATE TEMP TABLE gen_purchases (
    user_idx       int NOT NULL,
    k              int NOT NULL,
    user_id        uuid NOT NULL,
    transaction_id text NOT NULL,
    product_id     text NOT NULL,
    credits        int NOT NULL,
    price          numeric(10, 2) NOT NULL,
    environment    text NOT NULL,
    purchased_at   timestamptz NOT NULL,
    refunded_at    timestamptz
) ON COMMIT DROP

-- name: chunk_tables_jobs
-- Per-chunk scratch: the jobs kept for the chunk's users.
CREATE TEMP TABLE gen_jobs (
    user_idx        int NOT NULL,
    k               int NOT NULL,
    id              uuid NOT NULL,
    user_id         uuid NOT NULL,
    model_id        uuid NOT NULL,
    provider        text NOT NULL,
    failed          boolean NOT NULL,
    spiked          boolean NOT NULL,    -- failed only because of the planted spike
    credits_used    int NOT NULL,
    error_code      text,
    prompt          text NOT NULL,
    idempotency_key text NOT NULL,
    created_at      timestamptz NOT NULL,
    started_at      timestamptz NOT NULL,
    completed_at    timestamptz NOT NULL
) ON COMMIT DROP

-- name: stats_table
-- Facts the manifest needs that only the generator knows (spike failures).
CREATE TEMP TABLE gen_stats (
    spike_extra_failures bigint NOT NULL DEFAULT 0
) ON COMMIT DROP

-- name: stats_row
-- Start the counters.
INSERT INTO gen_stats DEFAULT VALUES

-- name: faults_table
-- Every planted fault, one row per victim, for the manifest.
CREATE TEMP TABLE gen_faults (
    kind           text NOT NULL,
    user_id        uuid,
    job_id         uuid,
    transaction_id text,
    amount         int
) ON COMMIT DROP
