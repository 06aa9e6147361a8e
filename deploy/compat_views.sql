-- Views with the names and columns opsbench's queries expect (queries/schema.sql),
-- for a backend whose tables or columns are named differently.
--
-- Edit the right-hand side of each view: the real table after FROM and, where a
-- column is named differently, the expression before AS, e.g.
--     txn_id         AS transaction_id,
--     amount_cents / 100.0 AS price,        -- keep the expected type (numeric here)
-- Every expected column must stay, with the type schema.sql gives it
-- (`opsbench doctor` names any that is missing or of another type).
-- A table name prefix is one substitution:
--     sed 's/FROM public\./FROM public.app_/' deploy/compat_views.sql > compat.sql
--
-- Apply after deploy/roles.sql (run that with -v compat=1, so it grants on
-- these views, here at the end, instead of on the tables), as the owner of
-- the real tables or a role that may read them: a view reads its tables with
-- its owner's privileges, so opsbench's roles need no grant on the tables.
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f compat.sql
--
-- The cleanup job deletes through rate_limit_log, idempotency_keys and
-- error_log: keep those three views simple (one table, no joins, no
-- aggregates), so PostgreSQL can delete through them.

CREATE SCHEMA IF NOT EXISTS opsbench_compat;

CREATE OR REPLACE VIEW opsbench_compat.users AS
SELECT
    id                AS id,
    email             AS email,
    credits_remaining AS credits_remaining,
    is_admin          AS is_admin,
    created_at        AS created_at
FROM public.users;

CREATE OR REPLACE VIEW opsbench_compat.models AS
SELECT
    id                  AS id,
    name                AS name,
    provider            AS provider,
    cost_per_generation AS cost_per_generation,
    is_active           AS is_active,
    created_at          AS created_at
FROM public.models;

CREATE OR REPLACE VIEW opsbench_compat.products AS
SELECT
    id        AS id,
    name      AS name,
    credits   AS credits,
    price     AS price,
    currency  AS currency,
    is_active AS is_active
FROM public.products;

CREATE OR REPLACE VIEW opsbench_compat.purchases AS
SELECT
    id             AS id,
    transaction_id AS transaction_id,
    user_id        AS user_id,
    product_id     AS product_id,
    credits        AS credits,
    price          AS price,
    currency       AS currency,
    environment    AS environment,
    purchased_at   AS purchased_at,
    refunded_at    AS refunded_at,
    created_at     AS created_at
FROM public.purchases;

CREATE OR REPLACE VIEW opsbench_compat.quota_log AS
SELECT
    id             AS id,
    user_id        AS user_id,
    change         AS change,
    reason         AS reason,
    transaction_id AS transaction_id,
    job_id         AS job_id,
    created_at     AS created_at
FROM public.quota_log;

CREATE OR REPLACE VIEW opsbench_compat.video_jobs AS
SELECT
    id              AS id,
    user_id         AS user_id,
    model_id        AS model_id,
    provider        AS provider,
    status          AS status,
    credits_used    AS credits_used,
    prompt          AS prompt,
    error_code      AS error_code,
    error_message   AS error_message,
    idempotency_key AS idempotency_key,
    created_at      AS created_at,
    started_at      AS started_at,
    completed_at    AS completed_at
FROM public.video_jobs;

CREATE OR REPLACE VIEW opsbench_compat.error_log AS
SELECT
    id            AS id,
    user_id       AS user_id,
    error_code    AS error_code,
    endpoint      AS endpoint,
    request_data  AS request_data,
    error_details AS error_details,
    created_at    AS created_at
FROM public.error_log;

CREATE OR REPLACE VIEW opsbench_compat.rate_limit_log AS
SELECT
    id         AS id,
    ip_address AS ip_address,
    action     AS action,
    user_id    AS user_id,
    created_at AS created_at
FROM public.rate_limit_log;

CREATE OR REPLACE VIEW opsbench_compat.idempotency_keys AS
SELECT
    key        AS key,
    user_id    AS user_id,
    endpoint   AS endpoint,
    job_id     AS job_id,
    response   AS response,
    created_at AS created_at,
    expires_at AS expires_at
FROM public.idempotency_keys;

CREATE OR REPLACE VIEW opsbench_compat.admin_actions AS
SELECT
    id              AS id,
    admin_user_id   AS admin_user_id,
    action_type     AS action_type,
    target_user_id  AS target_user_id,
    target_model_id AS target_model_id,
    amount          AS amount,
    reason          AS reason,
    details         AS details,
    created_at      AS created_at
FROM public.admin_actions;

-- The roles of deploy/roles.sql read (and cleanup deletes) through the views,
-- which come first on their search path.
GRANT USAGE ON SCHEMA opsbench_compat TO opsbench_ro, opsbench_maint;
GRANT SELECT ON opsbench_compat.admin_actions, opsbench_compat.error_log, opsbench_compat.models,
                opsbench_compat.products, opsbench_compat.purchases, opsbench_compat.quota_log,
                opsbench_compat.rate_limit_log, opsbench_compat.users, opsbench_compat.video_jobs
    TO opsbench_ro;
GRANT SELECT, DELETE ON opsbench_compat.rate_limit_log, opsbench_compat.idempotency_keys,
                        opsbench_compat.error_log TO opsbench_maint;
GRANT SELECT ON opsbench_compat.video_jobs TO opsbench_maint;
ALTER ROLE opsbench_ro SET search_path = opsbench_compat, public;
ALTER ROLE opsbench_maint SET search_path = opsbench_compat, public;
