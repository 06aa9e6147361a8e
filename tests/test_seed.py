"""The demo data generator: realistic shape, safe time margins, determinism, and its manifest.

Figures are recomputed with pandas from the raw tables (read whole, no SQL
text) and compared with the manifest the generator wrote.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
from support.recompute import read_table

import queries
from ops.core.settings import load_settings
from ops.data import db as ops_db
from ops.data.embedded import ensure_database
from ops.data.seed import SeedError, is_seeded, load_manifest, seed_database

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TABLES = ["users", "models", "products", "purchases", "quota_log", "video_jobs", "error_log", "rate_limit_log",
          "idempotency_keys", "admin_actions"]
CHECKS = ["balance_vs_ledger", "completed_job_refunded", "duplicate_transactions", "failed_jobs_without_refund",
          "generation_refund_mismatch", "iap_refund_mismatch", "ledger_missing_jobs", "negative_balances",
          "purchase_credit_mismatch", "purchase_credited_to_other_user"]
H = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def raw(demo_db) -> dict[str, pd.DataFrame]:
    return {t: read_table(demo_db.writer, t) for t in TABLES}


@pytest.fixture(scope="module")
def anchor(demo_db) -> pd.Timestamp:
    return pd.Timestamp(demo_db.manifest["anchor"])


def checksums(engine) -> dict[str, str]:
    """md5 of every table's rows in key order (queries/internal/seed/verify.sql)."""
    df = queries.load("seed/verify").checksums(engine)
    return dict(zip(df["table_name"], df["checksum"]))


def fresh_db(pg_server, schema_template, tmp_path_factory, template: bool = True):
    """A new database (from the schema template unless told otherwise): (url, analytics engine)."""
    name = f"seed_{uuid.uuid4().hex[:10]}"
    ensure_database(pg_server.admin_url, name, template=schema_template if template else None)
    url = pg_server.url(name)
    home = tmp_path_factory.mktemp("home")
    settings = load_settings(DATABASE_URL=url, OPSBENCH_STATE_URL=url, OPSBENCH_HOME=str(home))
    return url, ops_db.engine("analytics", settings)


# -- manifest vs tables -----------------------------------------------------------------------------


def test_manifest_counts_equal_the_tables(raw, demo_db):
    m = demo_db.manifest
    assert m["scale"] == "small" and m["seed"] == 1
    assert {k: m[k] for k in ("users", "purchases", "ledger_rows", "video_jobs", "admin_actions")} == {
        "users": len(raw["users"]), "purchases": len(raw["purchases"]), "ledger_rows": len(raw["quota_log"]),
        "video_jobs": len(raw["video_jobs"]), "admin_actions": len(raw["admin_actions"]),
    }
    assert 9_000 <= m["users"] <= 11_000
    assert m["video_jobs"] > 3 * m["users"] and m["ledger_rows"] > m["video_jobs"]


def test_anchor_is_a_whole_minute_and_nothing_happens_after_it(raw, anchor):
    assert anchor.second == 0 and anchor.microsecond == 0 and anchor.tzinfo is not None
    for table, cols in {"users": ["created_at"], "purchases": ["purchased_at", "created_at", "refunded_at"],
                        "quota_log": ["created_at"], "video_jobs": ["created_at", "completed_at"],
                        "error_log": ["created_at"], "rate_limit_log": ["created_at"],
                        "admin_actions": ["created_at"]}.items():
        for col in cols:
            assert raw[table][col].dropna().max() <= anchor, f"{table}.{col} after the anchor"


def test_history_spans_120_days_up_to_today(raw, anchor):
    jobs = raw["video_jobs"]
    days = set(jobs["created_at"].dt.tz_convert("UTC").dt.date)
    first = (anchor - pd.Timedelta(days=100)).date()
    yesterday = (anchor - pd.Timedelta(days=1)).date()
    assert all(first + dt.timedelta(days=i) in days for i in range((yesterday - first).days + 1))
    assert jobs["created_at"].min() < anchor - pd.Timedelta(days=100)
    finished = jobs[jobs["status"].isin(["completed", "failed"])]
    assert finished["created_at"].max() > anchor - 2 * H  # regular traffic runs up to an hour before the anchor


# -- realistic shape ----------------------------------------------------------------------------------


def test_users_grow_with_busier_weekends(raw, anchor):
    users = raw["users"]
    start = anchor.normalize() - pd.Timedelta(days=120)
    first_month = users[users["created_at"] < start + pd.Timedelta(days=30)]
    last_month = users[users["created_at"] >= anchor - pd.Timedelta(days=31)]
    assert len(last_month) > 2 * len(first_month)
    assert users["is_admin"].sum() == 3
    jobs = raw["video_jobs"]
    # eight whole UTC weeks before the anchor's day: every weekday counted as often, none of them partial
    window = jobs[(jobs["created_at"] >= anchor.normalize() - pd.Timedelta(days=56))
                  & (jobs["created_at"] < anchor.normalize())]
    per_day = window.groupby(window["created_at"].dt.tz_convert("UTC").dt.date).size()
    weekend = [n for d, n in per_day.items() if d.isoweekday() >= 6]
    weekday = [n for d, n in per_day.items() if d.isoweekday() <= 4]
    assert sum(weekend) / len(weekend) > 1.1 * sum(weekday) / len(weekday)


def test_providers_differ_in_price_failure_rate_and_duration(raw, demo_db):
    spike = demo_db.manifest["spike"]
    jobs = raw["video_jobs"].merge(raw["models"][["id", "cost_per_generation"]], left_on="model_id", right_on="id",
                                   suffixes=("", "_model"))
    spike_day = jobs["created_at"].dt.tz_convert("UTC").dt.date.astype(str) == spike["local_date"]
    normal = jobs[~(spike_day & (jobs["provider"] == spike["provider"]))]
    normal = normal[normal["status"].isin(["completed", "failed"])]
    rate = normal.groupby("provider")["status"].apply(lambda s: (s == "failed").mean())
    assert set(rate.index) == {"runway", "luma", "kling", "pika"}
    assert rate["kling"] > 1.5 * rate["runway"]
    done = normal[normal["status"] == "completed"]
    secs = (done["completed_at"] - done["created_at"]).dt.total_seconds().groupby(done["provider"]).median()
    assert secs["kling"] > 2 * secs["pika"]
    assert raw["models"]["cost_per_generation"].nunique() >= 3
    charged = jobs[jobs["credits_used"] > 0]
    assert (charged["credits_used"] == charged["cost_per_generation"]).all()
    codes = set(jobs["error_code"].dropna())
    assert {"ERR_5001", "ERR_5002", "ERR_5003"} <= codes and any(c.startswith("ERR_6") for c in codes)


def test_purchases_mix_sandbox_refunds_and_ledger_credits(raw, demo_db):
    p, ledger = raw["purchases"], raw["quota_log"]
    assert (p["currency"] == "USD").all()
    counts = p["product_id"].value_counts()
    assert set(counts.index) == set(raw["products"]["id"]) and counts.idxmax() == "credits_100"
    sandbox = (p["environment"] == "Sandbox").mean()
    assert 0.01 < sandbox < 0.10
    refunded = p[p["refunded_at"].notna()]
    assert len(refunded) > 0 and (refunded["environment"] == "Production").all()
    assert (refunded["refunded_at"] > refunded["purchased_at"]).all()
    ids = demo_db.manifest["fault_ids"]
    # every App Store refund is taken back in full, but for the refund faults the generator planted
    planted = set(ids["iap_missing_debit_transaction_ids"]) | set(ids["iap_wrong_debit_transaction_ids"]) \
        | set(ids["iap_debit_without_refund_transaction_ids"])
    assert len(planted) == demo_db.manifest["checks"]["iap_refund_mismatch"]
    clawbacks = ledger[ledger["reason"] == "iap_refund"].set_index("transaction_id")["change"]
    assert clawbacks.drop(list(planted), errors="ignore").to_dict() == \
        (-refunded.set_index("transaction_id")["credits"]).drop(list(planted), errors="ignore").to_dict()
    credits = ledger[ledger["reason"] == "iap_purchase"].groupby("transaction_id")["change"].agg(["count", "sum"])
    bad = set(ids["missing_credit_transaction_ids"]) | set(ids["wrong_credit_amount_transaction_ids"])
    good = p[~p["transaction_id"].isin(bad)].drop_duplicates("transaction_id").set_index("transaction_id")
    assert (credits.loc[good.index, "count"] == 1).all()  # sandbox purchases are credited too
    assert (credits.loc[good.index, "sum"] == good["credits"]).all()


def test_signup_bonus_and_admin_actions_are_in_the_ledger(raw, demo_db):
    ledger, users = raw["quota_log"], raw["users"]
    bonus = ledger[ledger["reason"] == "signup_bonus"]
    assert set(bonus["change"]) == {demo_db.manifest["signup_bonus"]}
    assert len(bonus) == len(users) - 1  # all but the planted user without any ledger row
    actions = raw["admin_actions"]
    credit = actions[actions["action_type"].isin(["credit_refund", "credit_adjustment"])]
    admin_rows = ledger[ledger["reason"].isin(["admin_refund", "admin_adjustment"])]
    assert len(credit) > 0 and len(admin_rows) == len(credit)
    assert sorted(admin_rows["change"]) == sorted(credit["amount"].astype(int))
    assert set(actions["admin_user_id"]) <= set(users.loc[users["is_admin"], "id"])
    assert {"model_disable", "model_enable"} <= set(actions["action_type"])


def test_failure_spike_on_one_provider_one_day(raw, demo_db):
    spike = demo_db.manifest["spike"]
    jobs = raw["video_jobs"]
    jobs = jobs[(jobs["provider"] == spike["provider"]) & jobs["status"].isin(["completed", "failed"])]
    day = jobs["created_at"].dt.tz_convert("UTC").dt.date.astype(str)
    daily = jobs.groupby(day)["status"].agg(lambda s: (s == "failed").mean())
    that_day = jobs[day == spike["local_date"]]
    assert (len(that_day), int((that_day["status"] == "failed").sum())) == (spike["jobs"], spike["failed"])
    assert spike["failed"] >= spike["extra_failures"] > 20
    assert daily[spike["local_date"]] > 4 * daily.drop(spike["local_date"]).median()
    assert daily.drop(spike["local_date"]).max() < daily[spike["local_date"]] / 2


# -- cleanup targets and time margins --------------------------------------------------------------


def test_unfinished_jobs_stuck_for_hours_or_just_started(raw, demo_db, anchor):
    jobs = raw["video_jobs"]
    open_jobs = jobs[jobs["status"].isin(["pending", "processing"])]
    age = anchor - open_jobs.set_index(open_jobs["id"].astype(str))["created_at"]
    stuck, inflight = demo_db.manifest["stuck_jobs"], demo_db.manifest["inflight_jobs"]
    assert set(age.index) == set(stuck["job_ids"]) | set(inflight["job_ids"])
    assert stuck["count"] == demo_db.manifest["faults"]["stuck_jobs"] == len(stuck["job_ids"]) > 0
    assert (age[stuck["job_ids"]] >= 2 * H).all() and (age[stuck["job_ids"]] <= 12 * H).all()
    assert inflight["count"] > 0 and (age[inflight["job_ids"]] < pd.Timedelta(minutes=6)).all()
    assert open_jobs["completed_at"].isna().all()
    assert set(open_jobs["status"]) == {"pending", "processing"}


def test_retention_counts_are_stable_around_their_boundaries(raw, demo_db, anchor):
    m = demo_db.manifest
    rl, keys, errors = raw["rate_limit_log"], raw["idempotency_keys"], raw["error_log"]
    week, quarter = anchor - pd.Timedelta(days=7), anchor - pd.Timedelta(days=90)
    # nothing within two hours of a boundary, so a test run minutes later sees the same counts
    assert not ((rl["created_at"] - week).abs() < 2 * H).any()
    assert not ((keys["expires_at"] - anchor).abs() < 2 * H).any()
    assert not ((errors["created_at"] - quarter).abs() < 2 * H).any()
    assert int((rl["created_at"] < week).sum()) == m["faults"]["old_rate_limit_rows"] > 0
    assert int((keys["expires_at"] < anchor).sum()) == m["faults"]["expired_idempotency_keys"] > 0
    assert int((errors["created_at"] < quarter).sum()) == m["faults"]["old_error_log_rows"] > 0
    assert (rl["created_at"] >= week).sum() > 0 and (keys["expires_at"] > anchor).sum() > 0
    # every address is a user's (100.64.0.0/10), but the planted abuse incident's
    (abuse,) = [i for i in m["incidents"] if i["kind"] == "abuse"]
    rogue = rl["ip_address"].astype(str) == abuse["ip"]
    assert int(rogue.sum()) == abuse["requests"] == 240
    assert rl.loc[~rogue, "ip_address"].astype(str).str.startswith("100.").all()
    assert set(rl["action"]) == {"video_generation", "credit_purchase"}
    assert errors["user_id"].isna().any() and errors["user_id"].notna().any()


def test_healthy_balances_are_never_negative_and_equal_the_ledger(raw, demo_db):
    ids = demo_db.manifest["fault_ids"]
    users = raw["users"].set_index(raw["users"]["id"].astype(str))
    sums = raw["quota_log"].groupby(raw["quota_log"]["user_id"].astype(str))["change"].sum()
    healthy = users.drop(ids["balance_drift_users"] + ids["no_ledger_user"])
    assert (healthy["credits_remaining"] == sums.reindex(healthy.index).fillna(0)).all()
    assert set(users.index[users["credits_remaining"] < 0]) == set(ids["negative_balance_users"])


# -- determinism, a second seed, refusing to overwrite ----------------------------------------------


@pytest.fixture(scope="module")
def seed7(pg_server, schema_template, tmp_path_factory, demo_db, anchor):
    """A second database seeded with seed 7 at the demo's anchor: url, engine, manifest, check counts, checksums."""
    url, engine = fresh_db(pg_server, schema_template, tmp_path_factory)
    manifest = seed_database(url, scale="small", seed=7, anchor=anchor.to_pydatetime())
    recon = queries.load("reconciliation")
    with engine.connect() as conn:
        counts = {c: len(getattr(recon, c)(conn)) for c in CHECKS}
        summary = recon.summary(conn)
    return {"url": url, "engine": engine, "manifest": manifest, "counts": counts, "summary": summary,
            "checksums": checksums(engine)}


def test_second_seed_gives_other_data_and_checks_still_hold(seed7, demo_db):
    m7 = seed7["manifest"]
    assert m7["seed"] == 7 and m7["anchor"] == demo_db.manifest["anchor"]
    assert seed7["counts"] == m7["checks"]
    # reconciliation.summary counts the checks that need no settings (not negative_model_margin: provider costs)
    assert dict(zip(seed7["summary"]["check"], seed7["summary"]["offending"])) == \
        {c: n for c, n in m7["checks"].items() if c != "negative_model_margin"}
    assert m7["fault_ids"] != demo_db.manifest["fault_ids"]
    theirs = checksums(demo_db.writer)
    differ = {t for t in TABLES if theirs[t] != seed7["checksums"][t]}
    assert {"users", "purchases", "quota_log", "video_jobs"} <= differ


def test_same_seed_and_anchor_give_identical_rows_and_force_replaces(seed7, demo_db, anchor):
    with pytest.raises(SeedError, match="already holds data"):
        seed_database(seed7["url"], scale="small", seed=1, anchor=anchor.to_pydatetime())
    again = seed_database(seed7["url"], scale="small", seed=1, anchor=anchor.to_pydatetime(), force=True)
    assert checksums(seed7["engine"]) == checksums(demo_db.writer)
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert strip(again) == strip(demo_db.manifest)


def test_is_seeded_and_bad_scale(pg_server, schema_template, tmp_path_factory, empty_db, demo_db):
    assert is_seeded(demo_db.url) and not is_seeded(empty_db.url)
    bare_url, _ = fresh_db(pg_server, schema_template, tmp_path_factory, template=False)
    assert not is_seeded(bare_url)  # no tables at all
    with pytest.raises(SeedError, match="unknown scale 'huge'"):
        seed_database(empty_db.url, scale="huge")
    assert not is_seeded(empty_db.url)


def test_load_manifest_without_a_seeded_home(tmp_path):
    assert load_manifest(load_settings(OPSBENCH_HOME=str(tmp_path))) is None
