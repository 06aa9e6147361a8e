"""Reconciliation checks against the seeded demo: every planted fault, exactly, and nothing else.

Expected counts and ids come from the generator's manifest (what it planted)
or from pandas over the raw tables, never from the queries under test.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from support.recompute import insert_rows, read_table

import queries
from queries import QueryError

CHECKS = [
    "balance_vs_ledger",
    "completed_job_refunded",
    "duplicate_transactions",
    "failed_jobs_without_refund",
    "generation_refund_mismatch",
    "iap_refund_mismatch",
    "ledger_missing_jobs",
    "negative_balances",
    "purchase_credit_mismatch",
    "purchase_credited_to_other_user",
]

recon = queries.load("reconciliation")


@pytest.fixture(scope="module")
def results(demo_db) -> dict[str, pd.DataFrame]:
    with demo_db.analytics.connect() as conn:
        return {name: getattr(recon, name)(conn) for name in [*CHECKS, "summary"]}


@pytest.mark.parametrize("check", CHECKS)
def test_check_finds_exactly_the_planted_rows(results, demo_db, check):
    assert len(results[check]) == demo_db.manifest["checks"][check]
    assert demo_db.manifest["checks"][check] > 0  # the demo plants something for every check


def test_summary_agrees_with_each_check_and_the_manifest(results, demo_db):
    summary = results["summary"]
    assert summary["check"].tolist() == CHECKS  # one row per check, in a stable order
    by_check = dict(zip(summary["check"], summary["offending"]))
    assert by_check == {c: len(results[c]) for c in CHECKS}
    # the summary counts the checks that need no settings (not negative_model_margin: provider costs)
    assert by_check == {c: n for c, n in demo_db.manifest["checks"].items() if c != "negative_model_margin"}
    assert not summary["passed"].any()


def test_balance_vs_ledger_flags_drift_and_the_user_without_ledger(results, demo_db):
    ids = demo_db.manifest["fault_ids"]
    df = results["balance_vs_ledger"]
    flagged = set(df["user_id"].astype(str))
    assert flagged == set(ids["balance_drift_users"]) | set(ids["no_ledger_user"])
    orphan = df[df["user_id"].astype(str) == ids["no_ledger_user"][0]].iloc[0]
    # NULL-safe: no ledger rows counts as a ledger sum of 0, the row is not dropped
    assert (orphan["ledger_rows"], orphan["ledger_sum"]) == (0, 0)
    assert orphan["difference"] == orphan["credits_remaining"] > 0
    assert (df["difference"] == df["credits_remaining"] - df["ledger_sum"]).all()
    assert (df["difference"] != 0).all()


def test_balance_vs_ledger_matches_pandas_recomputation(results, demo_db):
    users = read_table(demo_db.writer, "users")
    ledger = read_table(demo_db.writer, "quota_log")
    sums = ledger.groupby("user_id")["change"].agg(["sum", "count"]).rename(columns={"sum": "ledger_sum"})
    merged = users.set_index("id").join(sums, how="left").fillna({"ledger_sum": 0, "count": 0})
    bad = merged[merged["credits_remaining"] != merged["ledger_sum"]]
    expected = {str(u): int(d) for u, d in (bad["credits_remaining"] - bad["ledger_sum"]).items()}
    got = {str(r.user_id): int(r.difference) for r in results["balance_vs_ledger"].itertuples()}
    assert got == expected


def test_negative_balance_is_the_race_victim(results, demo_db):
    df = results["negative_balances"]
    assert df["user_id"].astype(str).tolist() == demo_db.manifest["fault_ids"]["negative_balance_users"]
    assert (df["credits_remaining"] < 0).all()


def test_duplicate_transactions_lists_both_purchase_rows(results, demo_db):
    df = results["duplicate_transactions"]
    assert sorted(df["transaction_id"]) == demo_db.manifest["fault_ids"]["duplicate_transaction_ids"]
    assert (df["purchases"] == 2).all()
    assert all(len(ids) == 2 for ids in df["purchase_ids"])
    purchases = read_table(demo_db.writer, "purchases")
    counts = purchases["transaction_id"].value_counts()
    assert sorted(counts[counts > 1].index) == sorted(df["transaction_id"])


def test_purchase_credit_mismatch_names_the_problem(results, demo_db):
    ids = demo_db.manifest["fault_ids"]
    df = results["purchase_credit_mismatch"]
    problems = dict(zip(df["transaction_id"], df["problem"]))
    assert problems == {
        **{t: "missing_credit" for t in ids["missing_credit_transaction_ids"]},
        **{t: "wrong_amount" for t in ids["wrong_credit_amount_transaction_ids"]},
    }
    wrong = df[df["problem"] == "wrong_amount"].iloc[0]
    assert wrong["credit_rows"] == 1 and wrong["credited"] != wrong["expected_credits"]
    # the duplicated transactions are credited once with the right amount: not flagged here
    assert not set(df["transaction_id"]) & set(ids["duplicate_transaction_ids"])


def test_failed_jobs_without_refund_matches_manifest_and_pandas(results, demo_db):
    df = results["failed_jobs_without_refund"]
    assert sorted(df["job_id"].astype(str)) == demo_db.manifest["fault_ids"]["failed_without_refund_jobs"]
    jobs = read_table(demo_db.writer, "video_jobs")
    ledger = read_table(demo_db.writer, "quota_log")
    refunded = set(ledger.loc[ledger["reason"] == "generation_refund", "job_id"].dropna())
    failed = jobs[(jobs["status"] == "failed") & (jobs["credits_used"] > 0)]
    assert set(failed.loc[~failed["id"].isin(refunded), "id"]) == set(df["job_id"])
    # failed jobs that were never charged need no refund and are not flagged
    assert ((jobs["status"] == "failed") & (jobs["credits_used"] == 0)).any()


def test_ledger_missing_jobs_points_at_deleted_jobs(results, demo_db):
    df = results["ledger_missing_jobs"]
    assert sorted(df["job_id"].astype(str).unique()) == demo_db.manifest["fault_ids"]["missing_job_ids"]
    assert set(df["reason"]) == {"video_generation"}


def test_purchase_credited_to_other_user_names_payer_and_recipient(results, demo_db):
    ids = demo_db.manifest["fault_ids"]
    df = results["purchase_credited_to_other_user"]
    assert sorted(df["transaction_id"]) == ids["credited_other_user_transaction_ids"]
    assert sorted(df["paid_by_user_id"].astype(str)) == ids["credited_other_user_payers"]
    assert sorted(df["credited_user_id"].astype(str)) == ids["credited_other_user_recipients"]
    # recomputed from the raw rows: credits whose account is not the payer's
    purchases = read_table(demo_db.writer, "purchases").drop_duplicates("transaction_id")
    ledger = read_table(demo_db.writer, "quota_log")
    credits = ledger[ledger["reason"] == "iap_purchase"].merge(purchases[["transaction_id", "user_id"]],
                                                              on="transaction_id", suffixes=("", "_paid"))
    assert sorted(credits.loc[credits["user_id"] != credits["user_id_paid"], "transaction_id"]) == \
        sorted(df["transaction_id"])


def test_generation_refund_mismatch_partial_and_excessive(results, demo_db):
    ids = demo_db.manifest["fault_ids"]
    df = results["generation_refund_mismatch"].set_index(results["generation_refund_mismatch"]["job_id"].astype(str))
    assert sorted(df.index) == sorted(ids["partial_refund_jobs"] + ids["double_refund_jobs"])
    assert set(df.loc[ids["partial_refund_jobs"], "problem"]) == {"partial"}
    assert set(df.loc[ids["double_refund_jobs"], "problem"]) == {"excessive"}
    assert (df.loc[ids["double_refund_jobs"], "refund_rows"] == 2).all()
    assert (df["difference"] == df["refunded"] - df["credits_used"]).all()


def test_completed_job_refunded_is_exactly_the_planted_jobs(results, demo_db):
    df = results["completed_job_refunded"]
    assert sorted(df["job_id"].astype(str)) == demo_db.manifest["fault_ids"]["completed_refund_jobs"]
    jobs = read_table(demo_db.writer, "video_jobs")
    ledger = read_table(demo_db.writer, "quota_log")
    refunded = set(ledger.loc[ledger["reason"] == "generation_refund", "job_id"].dropna())
    assert set(jobs.loc[(jobs["status"] == "completed") & jobs["id"].isin(refunded), "id"]) == set(df["job_id"])


def test_iap_refund_mismatch_names_each_problem(results, demo_db):
    ids = demo_db.manifest["fault_ids"]
    df = results["iap_refund_mismatch"]
    assert dict(zip(df["transaction_id"], df["problem"])) == {
        **{t: "missing_debit" for t in ids["iap_missing_debit_transaction_ids"]},
        **{t: "wrong_amount" for t in ids["iap_wrong_debit_transaction_ids"]},
        **{t: "debit_without_refund" for t in ids["iap_debit_without_refund_transaction_ids"]},
    }
    wrong = df[df["problem"] == "wrong_amount"].iloc[0]
    assert 0 < wrong["debited"] < wrong["credited"]
    missing = df[df["problem"] == "missing_debit"].iloc[0]
    assert (missing["debit_rows"], missing["debited"]) == (0, 0) and missing["credited"] > 0


def test_user_ledger_rows_and_running_balance(demo_db):
    ledger = read_table(demo_db.writer, "quota_log")
    user_id = ledger["user_id"].value_counts().index[0]  # the busiest user
    mine = ledger[ledger["user_id"] == user_id]
    df = recon.user_ledger(demo_db.analytics, user_id=str(user_id))
    assert len(df) == len(mine)
    assert df["running_balance"].iloc[-1] == mine["change"].sum()
    assert df["created_at"].is_monotonic_increasing
    with pytest.raises(QueryError, match="user_id"):
        recon.user_ledger(demo_db.analytics, user_id="not-a-uuid")


# -- hand-made rows: the problems the demo does not plant ------------------------------------------


def test_empty_database_passes_every_check(empty_db):
    with empty_db.analytics.connect() as conn:
        summary = recon.summary(conn)
        assert all(len(getattr(recon, c)(conn)) == 0 for c in CHECKS)
    assert summary["check"].tolist() == CHECKS
    assert summary["offending"].tolist() == [0] * len(CHECKS)
    assert summary["passed"].all()


def test_multiple_credits_and_credit_without_purchase(empty_db):
    user = uuid.uuid4()
    insert_rows(empty_db.writer, "users", [{"id": user, "credits_remaining": 300}])
    insert_rows(empty_db.writer, "products", [{"id": "p100", "name": "100", "credits": 100, "price": 4.99}])
    insert_rows(empty_db.writer, "purchases", [
        {"transaction_id": "T1", "user_id": user, "product_id": "p100", "credits": 100, "price": 4.99,
         "currency": "USD", "environment": "Production", "purchased_at": "2026-01-01T10:00:00Z"},
    ])
    insert_rows(empty_db.writer, "quota_log", [
        {"user_id": user, "change": 100, "reason": "iap_purchase", "transaction_id": "T1"},
        {"user_id": user, "change": 100, "reason": "iap_purchase", "transaction_id": "T1"},
        {"user_id": user, "change": 100, "reason": "iap_purchase", "transaction_id": "GHOST"},
    ])
    df = recon.purchase_credit_mismatch(empty_db.analytics)
    assert dict(zip(df["transaction_id"], df["problem"])) == {"T1": "multiple_credits",
                                                              "GHOST": "credit_without_purchase"}
    summary = recon.summary(empty_db.analytics)
    by_check = dict(zip(summary["check"], summary["offending"]))
    assert by_check["purchase_credit_mismatch"] == 2
    assert by_check["balance_vs_ledger"] == 0  # 300 = 100 + 100 + 100


def test_expected_credits_are_the_purchase_rows_not_todays_catalogue(empty_db):
    # The product granted 100 credits when bought; the catalogue now says 120.
    # The ledger credited 100: that is right, and nothing may be flagged for it.
    # A credit with no transaction id at all is a credit without a purchase.
    user = uuid.uuid4()
    counted = dict(zip(*recon.summary(empty_db.analytics)[["check", "offending"]].T.values))
    insert_rows(empty_db.writer, "users", [{"id": user, "credits_remaining": 150}])
    insert_rows(empty_db.writer, "products", [{"id": "p120", "name": "120", "credits": 120, "price": 4.99}])
    insert_rows(empty_db.writer, "purchases", [
        {"transaction_id": "OLD1", "user_id": user, "product_id": "p120", "credits": 100, "price": 4.99,
         "currency": "USD", "environment": "Production", "purchased_at": "2026-01-01T10:00:00Z"},
    ])
    insert_rows(empty_db.writer, "quota_log", [
        {"user_id": user, "change": 100, "reason": "iap_purchase", "transaction_id": "OLD1"},
        {"user_id": user, "change": 50, "reason": "iap_purchase", "transaction_id": None},
    ])
    df = recon.purchase_credit_mismatch(empty_db.analytics)
    df = df[df["user_id"].astype(str) == str(user)]
    assert df["problem"].tolist() == ["credit_without_transaction_id"]
    assert df["transaction_id"].isna().all() and int(df["credited"].iloc[0]) == 50
    assert "OLD1" not in set(recon.purchase_credit_mismatch(empty_db.analytics)["transaction_id"].dropna())
    after = dict(zip(*recon.summary(empty_db.analytics)[["check", "offending"]].T.values))
    # the module's database holds earlier tests' rows: exactly one more mismatch, no balance drift
    assert after["purchase_credit_mismatch"] == counted["purchase_credit_mismatch"] + 1
    assert after["balance_vs_ledger"] == counted["balance_vs_ledger"]


def test_iap_refund_debit_without_any_transaction_id(empty_db):
    user = uuid.uuid4()
    insert_rows(empty_db.writer, "users", [{"id": user, "credits_remaining": -100}])
    insert_rows(empty_db.writer, "quota_log", [{"user_id": user, "change": -100, "reason": "iap_refund",
                                                "transaction_id": None}])
    df = recon.iap_refund_mismatch(empty_db.analytics)
    df = df[df["user_id"].astype(str) == str(user)]
    assert df["problem"].tolist() == ["debit_without_transaction_id"] and int(df["debited"].iloc[0]) == 100


def test_a_completed_job_refunded_in_part_is_only_completed_job_refunded(empty_db):
    """A completed job is owed nothing: a refund of 5 of its 10 credits is not a "partial" refund (the customer
    was not shorted) but a refund that should not exist. Expected sets recomputed with pandas from the rows."""
    user, model = uuid.uuid4(), uuid.uuid4()
    done, failed = uuid.uuid4(), uuid.uuid4()
    insert_rows(empty_db.writer, "users", [{"id": user, "credits_remaining": 0}])
    insert_rows(empty_db.writer, "models", [{"id": model, "name": "m-refund-test", "provider": "p",
                                                   "cost_per_generation": 10}])
    insert_rows(empty_db.writer, "video_jobs", [
        {"id": done, "user_id": user, "model_id": model, "provider": "p", "status": "completed",
         "credits_used": 10, "created_at": "2026-01-02T10:00:00Z", "completed_at": "2026-01-02T10:05:00Z"},
        {"id": failed, "user_id": user, "model_id": model, "provider": "p", "status": "failed",
         "credits_used": 10, "created_at": "2026-01-02T11:00:00Z", "completed_at": "2026-01-02T11:05:00Z"},
    ])
    insert_rows(empty_db.writer, "quota_log", [
        {"user_id": user, "change": 5, "reason": "generation_refund", "job_id": done},
        {"user_id": user, "change": 5, "reason": "generation_refund", "job_id": failed},
    ])
    # the module's database holds earlier tests' rows: only this user's are looked at
    jobs = read_table(empty_db.writer, "video_jobs")
    jobs = jobs[jobs["user_id"] == user]
    ledger = read_table(empty_db.writer, "quota_log")
    refunds = ledger[ledger["reason"] == "generation_refund"].groupby("job_id")["change"].sum()
    jobs = jobs.assign(refunded=jobs["id"].map(refunds))
    refunded = jobs[jobs["refunded"].notna()]
    expect_completed = set(refunded.loc[refunded["status"] == "completed", "id"])
    expect_mismatch = set(refunded.loc[(refunded["status"] != "completed")
                                       & (refunded["refunded"] != refunded["credits_used"]), "id"])
    assert expect_completed == {done} and expect_mismatch == {failed}   # the rows say what this test is about

    mismatch = recon.generation_refund_mismatch(empty_db.analytics)
    mismatch = mismatch[mismatch["user_id"] == user]
    assert set(mismatch["job_id"]) == expect_mismatch
    assert mismatch["problem"].tolist() == ["partial"]
    completed = recon.completed_job_refunded(empty_db.analytics)
    assert set(completed.loc[completed["user_id"] == user, "job_id"]) == expect_completed
