"""The reconciliation job on the seeded demo: every planted fault found with its exact count."""

from __future__ import annotations

import datetime as dt

import pytest

import queries
from jobs import reconcile
from ops.contract import JobContext, Severity

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

NOW = dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.timezone.utc)


def _ctx(db, run_id="r1", at=NOW, **args) -> JobContext:
    return JobContext(settings=db.settings, job_id="reconcile", run_id=run_id, args=args, clock=lambda: at)


def test_checks_come_from_the_check_files():
    assert reconcile.checks() == ["balance_vs_ledger", "completed_job_refunded", "duplicate_transactions",
                                  "failed_jobs_without_refund", "generation_refund_mismatch", "iap_refund_mismatch",
                                  "ledger_missing_jobs", "negative_balances", "negative_model_margin",
                                  "purchase_credit_mismatch", "purchase_credited_to_other_user"]


def test_a_check_that_needs_the_founders_costs_file_is_not_a_pass_without_it(demo_db):
    """negative_model_margin judges nothing without OPSBENCH_PROVIDER_COSTS: the summary says "not configured",
    it is not counted among the passing checks, and its rule is not evaluated (an alert of it stays as it was)."""
    assert demo_db.settings.provider_costs is None
    result = reconcile.reconcile(_ctx(demo_db))
    assert "negative_model_margin not configured (OPSBENCH_PROVIDER_COSTS)" in result.summary
    assert "negative_model_margin ok" not in result.summary
    assert reconcile.rule_for("negative_model_margin") not in result.rules
    assert "reconcile_negative_model_margin" not in result.metrics


def test_every_planted_fault_is_found_with_its_count(demo_db):
    expected = demo_db.manifest["checks"]
    result = reconcile.reconcile(_ctx(demo_db, evidence_rows=3))
    assert result.status == "ok"
    # every check that can judge without a founder's file (negative_model_margin needs the costs file)
    assert result.rules == {reconcile.rule_for(c) for c in reconcile.checks() if c != "negative_model_margin"}
    by_check = {f.labels["check"]: f for f in result.findings}
    assert {c: f.evidence_count for c, f in by_check.items()} == {c: n for c, n in expected.items() if n}
    for check, f in by_check.items():
        assert f.rule == reconcile.rule_for(check)
        assert f.command == f"opsbench checks run {check}"
        assert len(f.evidence) == min(3, expected[check])
        assert all("email" not in row for row in f.evidence)
    assert by_check["negative_balances"].severity is Severity.critical
    neg_user = demo_db.manifest["fault_ids"]["negative_balance_users"][0]
    assert by_check["negative_balances"].evidence[0]["user_id"] == neg_user[:8]
    dup_ids = {row["transaction_id"] for row in by_check["duplicate_transactions"].evidence}
    assert dup_ids <= set(demo_db.manifest["fault_ids"]["duplicate_transaction_ids"])


def test_counts_are_stored_every_run_for_trends(demo_db):
    reconcile.reconcile(_ctx(demo_db, run_id="a", at=NOW + dt.timedelta(days=1)))
    reconcile.reconcile(_ctx(demo_db, run_id="b", at=NOW + dt.timedelta(days=2)))
    stored = queries.load("state/probes").reconciliation_counts(demo_db.writer, since=NOW + dt.timedelta(hours=12),
                                                               until=NOW + dt.timedelta(days=3))
    assert sorted(stored["run_id"].unique()) == ["a", "b"]
    for run in ("a", "b"):
        got = stored[stored["run_id"] == run].set_index("check_name")["rows_found"].to_dict()
        assert got == demo_db.manifest["checks"]  # passing checks are stored too, as 0


def test_clean_backend_passes_every_check(empty_db):
    result = reconcile.reconcile(_ctx(empty_db))
    assert result.findings == [] and result.status == "ok"
    # every check that can judge without a founder's file (negative_model_margin needs the costs file)
    assert result.rules == {reconcile.rule_for(c) for c in reconcile.checks() if c != "negative_model_margin"}
    assert result.summary.startswith("10/10 checks pass")


def test_default_jobs_file_runs_every_job_of_this_issue_on_the_demo(demo_db):
    """`opsbench run <job>` path: the shipped schedule's entries resolve and run with their args."""
    from ops.daemon.jobspec import load_jobs
    from ops.daemon.runner import Runner

    specs = {s.id: s for s in load_jobs(demo_db.settings)}
    runner = Runner(demo_db.settings, specs, state_engine=demo_db.writer)
    ours = ["http_probes", "postgres_probe", "metric_probes", "cleanup", "reconcile", "weekly_review"]
    records = {job: runner.run(job, trigger="manual", dry_run=True) for job in ours}
    statuses = {job: r.status for job, r in records.items()}
    assert statuses == {"http_probes": "skipped", "postgres_probe": "ok", "metric_probes": "ok", "cleanup": "ok",
                        "reconcile": "ok", "weekly_review": "ok"}, {j: r.summary for j, r in records.items()}
    assert records["cleanup"].summary.startswith("DRY RUN")
    assert {f.labels["check"] for f in records["reconcile"].findings} == {
        c for c, n in demo_db.manifest["checks"].items() if n}
    assert {"stuck_jobs", "negative_balance"} <= {f.rule for f in records["metric_probes"].findings}


def test_negative_balance_is_announced_once_while_the_live_probe_fires(demo_db):
    """The metric probe and the daily check both see the planted negative balance: one message, not two."""
    from jobs import metrics
    from ops.alerting import manager as alerts
    from ops.alerting import outbox
    from ops.data import state

    state.migrate(demo_db.writer)
    # the probe judges balances as of its clock: at the data's own "now", when the race has happened
    at = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    probe_ctx = JobContext(settings=demo_db.settings, job_id="negative_balances", run_id="p1", clock=lambda: at)
    alerts.record_result(demo_db.writer, "negative_balances", metrics.negative_balances(probe_ctx), at,
                         demo_db.settings)
    transitions = alerts.record_result(demo_db.writer, "reconcile", reconcile.reconcile(_ctx(demo_db, at=at)), at,
                                       demo_db.settings)
    held = {t.key: t.held for t in transitions}
    assert held["reconcile_negative_balances{check=negative_balances}"] == "suppressed"
    assert held["reconcile_duplicate_transactions{check=duplicate_transactions}"] is None
    bodies = [m.body for m in outbox.recent(demo_db.writer, 100)]
    assert sum("reconcile_negative_balances" in b for b in bodies) == 0
    assert sum("negative_balance" in b for b in bodies) == 1
