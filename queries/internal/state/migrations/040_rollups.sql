-- Daily rollups of the backend's raw tables, maintained by the `rollups` job
-- (ops/data/rollups.py). Every table is keyed by the report time zone `tz` the days
-- were cut in, so a change of REPORT_TZ never mixes day boundaries: the new
-- zone starts its own rows (backfilled on the job's next run) and the old
-- zone's rows simply stop being refreshed.
-- Only closed local days are stored; today is always read from the raw tables.
-- Idempotent: every statement can run again on a database that has it.

-- Revenue per local day and currency: the columns of `revenue.daily`.
CREATE TABLE IF NOT EXISTS opsbench.rollup_revenue_daily (
    tz                 text NOT NULL,
    day                date NOT NULL,
    currency           text NOT NULL,
    gross              numeric NOT NULL,
    refunds            numeric NOT NULL,
    purchases          bigint NOT NULL,
    refunded_purchases bigint NOT NULL,
    paying_users       bigint NOT NULL,
    credits_sold       bigint NOT NULL,
    PRIMARY KEY (tz, currency, day)
);

-- Video jobs per local day, provider and model: the counts behind `errors.daily` / `by_provider` / `by_model`.
CREATE TABLE IF NOT EXISTS opsbench.rollup_jobs_daily (
    tz         text NOT NULL,
    day        date NOT NULL,
    provider   text NOT NULL,
    model_id   uuid NOT NULL,
    jobs       bigint NOT NULL,   -- finished: completed + failed
    failed     bigint NOT NULL,
    unfinished bigint NOT NULL,   -- pending + processing when last refreshed
    PRIMARY KEY (tz, day, provider, model_id)
);

-- One row per user per local day the user was active (see queries/activity.sql for "active").
-- The base of every distinct count: DAU, WAU, MAU.
CREATE TABLE IF NOT EXISTS opsbench.rollup_user_days (
    tz           text NOT NULL,
    day          date NOT NULL,
    user_id      uuid NOT NULL,
    signup_day   boolean NOT NULL,   -- the user signed up that same local day
    PRIMARY KEY (tz, day, user_id)
);

-- Signups per local day (users.created_at), active or not.
CREATE TABLE IF NOT EXISTS opsbench.rollup_signups_daily (
    tz        text NOT NULL,
    day       date NOT NULL,
    new_users bigint NOT NULL,
    PRIMARY KEY (tz, day)
);

-- DAU / WAU / MAU per local day, derived from rollup_user_days in the state database.
CREATE TABLE IF NOT EXISTS opsbench.rollup_activity_daily (
    tz         text NOT NULL,
    day        date NOT NULL,
    dau        bigint NOT NULL,
    wau        bigint NOT NULL,
    mau        bigint NOT NULL,
    new_users  bigint NOT NULL,
    new_active bigint NOT NULL,
    PRIMARY KEY (tz, day)
);

-- How far each zone's rollups are complete: [complete_from, refreshed_through]
-- holds every closed day; days outside it are read from the raw tables.
CREATE TABLE IF NOT EXISTS opsbench.rollup_watermarks (
    tz                 text PRIMARY KEY,
    complete_from      date NOT NULL,
    refreshed_through  date NOT NULL,
    last_from          date NOT NULL,          -- first day the last run recomputed
    last_rows_changed  bigint NOT NULL,        -- rows inserted, updated or deleted by the last run
    refreshed_at       timestamptz NOT NULL,
    CHECK (refreshed_through >= complete_from - 1)
);
