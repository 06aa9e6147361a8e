-- The backend's tables as opsbench's queries expect them.
--
-- This mirrors the production app (credit-based video generation on
-- PostgreSQL/Supabase, iOS client, App Store purchases). The demo generator fills exactly these tables. To point
-- opsbench at a backend whose names differ, create views with these names and
-- columns in a schema of their own and put that schema first in the analytics
-- role's search_path (see README, "A backend with other names").
--
-- Deliberately NOT enforced here, because the production backend does not
-- enforce them either and reconciliation exists to find the damage:
--   * purchases.transaction_id is not UNIQUE (duplicates are a planted fault)
--   * users.credits_remaining may go negative
--   * quota_log.job_id has no foreign key (ledger rows may point at missing jobs)

CREATE TABLE IF NOT EXISTS users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text,
    credits_remaining integer NOT NULL DEFAULT 0,
    is_admin          boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS models (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL,
    provider            text NOT NULL,
    cost_per_generation integer NOT NULL CHECK (cost_per_generation >= 0),
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- App Store products: one consumable per credit pack.
CREATE TABLE IF NOT EXISTS products (
    id        text PRIMARY KEY,              -- App Store product id, e.g. credits_100
    name      text NOT NULL,
    credits   integer NOT NULL CHECK (credits > 0),
    price     numeric(10, 2) NOT NULL,       -- list price in `currency`
    currency  text NOT NULL DEFAULT 'USD',
    is_active boolean NOT NULL DEFAULT true
);

-- App Store purchase transactions as the backend recorded them after
-- verifying the receipt. price/currency are what the buyer paid (the
-- storefront's currency); environment tells real money from TestFlight.
CREATE TABLE IF NOT EXISTS purchases (
    id             bigserial PRIMARY KEY,
    transaction_id text NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id),
    product_id     text NOT NULL REFERENCES products (id),
    credits        integer NOT NULL,          -- credits the product grants
    price          numeric(10, 2) NOT NULL,
    currency       text NOT NULL,
    environment    text NOT NULL CHECK (environment IN ('Production', 'Sandbox')),
    purchased_at   timestamptz NOT NULL,
    refunded_at    timestamptz,               -- App Store refund (REFUND notification)
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The credit ledger: every change to users.credits_remaining, signed.
-- reason is one of: signup_bonus, iap_purchase, video_generation,
-- generation_refund, iap_refund, admin_refund, admin_adjustment.
CREATE TABLE IF NOT EXISTS quota_log (
    id             bigserial PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    change         integer NOT NULL,
    reason         text NOT NULL,
    transaction_id text,                      -- set for iap_purchase / iap_refund
    job_id         uuid,                      -- set for video_generation / generation_refund
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS video_jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id),
    model_id        uuid NOT NULL REFERENCES models (id),
    provider        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    credits_used    integer NOT NULL DEFAULT 0,
    prompt          text,
    error_code      text,                     -- ERR_5001 ... when failed
    error_message   text,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz               -- set when completed or failed
);

CREATE TABLE IF NOT EXISTS error_log (
    id            bigserial PRIMARY KEY,
    user_id       uuid REFERENCES users (id),
    error_code    text NOT NULL,
    endpoint      text NOT NULL,
    request_data  jsonb,
    error_details jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS rate_limit_log (
    id         bigserial PRIMARY KEY,
    ip_address inet NOT NULL,
    action     text NOT NULL,                 -- video_generation, credit_purchase, ...
    user_id    uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key        text PRIMARY KEY,
    user_id    uuid REFERENCES users (id),
    endpoint   text NOT NULL,
    job_id     uuid,
    response   jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS admin_actions (
    id              bigserial PRIMARY KEY,
    admin_user_id   uuid NOT NULL REFERENCES users (id),
    action_type     text NOT NULL CHECK (action_type IN (
                        'credit_refund', 'credit_adjustment', 'model_disable',
                        'model_enable', 'user_ban', 'user_unban')),
    target_user_id  uuid REFERENCES users (id),
    target_model_id uuid REFERENCES models (id),
    amount          integer,
    reason          text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Indexes the named queries need (see `opsbench doctor --indexes`).
CREATE INDEX IF NOT EXISTS idx_users_created_at         ON users (created_at);
CREATE INDEX IF NOT EXISTS idx_users_negative_balance   ON users (credits_remaining) WHERE credits_remaining < 0;
CREATE INDEX IF NOT EXISTS idx_purchases_purchased_at   ON purchases (purchased_at);
CREATE INDEX IF NOT EXISTS idx_purchases_refunded_at    ON purchases (refunded_at) WHERE refunded_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_purchases_transaction_id ON purchases (transaction_id);
CREATE INDEX IF NOT EXISTS idx_purchases_user           ON purchases (user_id, purchased_at);
CREATE INDEX IF NOT EXISTS idx_quota_log_user           ON quota_log (user_id, created_at);
CREATE INDEX IF NOT EXISTS idx_quota_log_transaction_id ON quota_log (transaction_id) WHERE transaction_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_quota_log_job_id         ON quota_log (job_id) WHERE job_id IS NOT NULL;
-- purchase credits recorded without a transaction id (reconciliation): normally none, so the index is empty
CREATE INDEX IF NOT EXISTS idx_quota_log_iap_without_txn ON quota_log (user_id)
    WHERE reason = 'iap_purchase' AND transaction_id IS NULL;
-- App Store refund debits without a transaction id (reconciliation): normally none too
CREATE INDEX IF NOT EXISTS idx_quota_log_iap_refund_without_txn ON quota_log (user_id)
    WHERE reason = 'iap_refund' AND transaction_id IS NULL;
CREATE INDEX IF NOT EXISTS idx_quota_log_created_at     ON quota_log (created_at);
CREATE INDEX IF NOT EXISTS idx_video_jobs_created_at    ON video_jobs (created_at);
CREATE INDEX IF NOT EXISTS idx_video_jobs_user          ON video_jobs (user_id, created_at);
CREATE INDEX IF NOT EXISTS idx_video_jobs_unfinished    ON video_jobs (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS idx_video_jobs_failed        ON video_jobs (created_at) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS idx_error_code               ON error_log (error_code);
CREATE INDEX IF NOT EXISTS idx_error_user               ON error_log (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_error_log_created_at     ON error_log (created_at);
CREATE INDEX IF NOT EXISTS idx_rate_limit_ip_action     ON rate_limit_log (ip_address, action, created_at);
CREATE INDEX IF NOT EXISTS idx_rate_limit_created_at    ON rate_limit_log (created_at);
CREATE INDEX IF NOT EXISTS idx_idempotency_expires_at   ON idempotency_keys (expires_at);
CREATE INDEX IF NOT EXISTS idx_admin_actions_admin      ON admin_actions (admin_user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_admin_actions_target_user ON admin_actions (target_user_id, created_at DESC);
