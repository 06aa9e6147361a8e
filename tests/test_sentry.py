"""The real sentry-sdk against an envelope receiver on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest
import sentry_sdk
from support import daemon_jobs

from ops import __version__
from ops.core import sentry as ops_sentry
from ops.core.settings import SettingsError, load_settings
from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import Runner
from ops.data.state import migrate

DSN_SECRET = "dsnsecret0123456789"
SPECS = {
    "fine": JobSpec(id="fine", callable="support.daemon_jobs:ok", timezone="Europe/Istanbul", cron="0 9 * * *", timeout_s=120),
    "boom": JobSpec(id="boom", callable="support.daemon_jobs:raising", timezone="UTC", interval_s=300, timeout_s=30),
}


@pytest.fixture
def sentry_on(receiver, tmp_path):
    settings = load_settings(SENTRY_DSN=receiver.dsn(secret=DSN_SECRET), ENVIRONMENT="staging",
                             TELEGRAM_BOT_TOKEN=daemon_jobs.FAKE_TOKEN[3:])
    assert ops_sentry.init(settings) is True
    return settings


@pytest.fixture(scope="module")
def state(empty_db):
    migrate(empty_db.writer)
    return empty_db


def _runner(settings, state):
    return Runner(settings, SPECS, state_engine=state.writer, identity="sentry-test", alert_sink=lambda *a: None)


def test_job_exception_arrives_once_with_its_tag_and_nothing_secret(receiver, sentry_on, state, caplog):
    caplog.set_level(logging.INFO)
    sentry_sdk.set_user({"id": daemon_jobs.FAKE_USER_ID})
    record = _runner(sentry_on, state).run("boom")
    assert record.status == "failed"
    ops_sentry.flush()
    assert receiver.wait_for(lambda: len(receiver.events()) >= 1)
    ops_sentry.flush()
    events = receiver.events()
    assert len(events) == 1, [e.get("message") or e.get("exception") for e in events]
    event = events[0]
    assert event["tags"]["job"] == "boom"
    assert event["environment"] == "staging" and event["release"] == __version__
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "RuntimeError" and "boom while calling" in exc["value"]
    assert event["user"]["id"] == daemon_jobs.FAKE_USER_ID[:8]
    crumbs = [c.get("message") or "" for c in event.get("breadcrumbs", {}).get("values", [])]
    assert any("about to call" in c for c in crumbs)  # the job's log line is there, scrubbed

    raw = receiver.raw_everything()
    for secret in ("AAHsecretTOKENvalue", daemon_jobs.FAKE_DB_PASSWORD, DSN_SECRET, daemon_jobs.FAKE_USER_ID):
        assert secret.encode() not in raw, secret
    assert b"bot<redacted>" in raw or b"<redacted>" in raw


def test_an_error_log_line_is_a_breadcrumb_not_a_second_event(receiver, sentry_on):
    logging.getLogger("opsbench.anything").error("standalone error line with %s", daemon_jobs.FAKE_TOKEN)
    ops_sentry.capture_exception(ValueError("the one event"), tags={"job": "x"})
    ops_sentry.flush()
    assert receiver.wait_for(lambda: receiver.events())
    (event,) = receiver.events()
    assert event["exception"]["values"][0]["value"] == "the one event"
    crumbs = [c.get("message") or "" for c in event["breadcrumbs"]["values"]]
    assert any("standalone error line" in c and "AAHsecret" not in c for c in crumbs)


def test_checkins_in_order_with_monitor_config(receiver, sentry_on, state):
    runner = _runner(sentry_on, state)
    runner.run("fine")
    runner.run("boom")
    ops_sentry.flush()
    assert receiver.wait_for(lambda: len(receiver.checkins()) >= 4)
    checkins = receiver.checkins()
    assert [(c["monitor_slug"], c["status"]) for c in checkins] == [
        ("opsbench-fine", "in_progress"), ("opsbench-fine", "ok"),
        ("opsbench-boom", "in_progress"), ("opsbench-boom", "error"),
    ]
    # each run's closing check-in names the opening one and carries the duration
    assert checkins[0]["check_in_id"] == checkins[1]["check_in_id"] != checkins[2]["check_in_id"]
    assert checkins[2]["check_in_id"] == checkins[3]["check_in_id"]
    assert checkins[1]["duration"] >= 0 and checkins[3]["duration"] >= 0
    assert checkins[0]["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "0 9 * * *"}, "timezone": "Europe/Istanbul",
        "checkin_margin": 1, "max_runtime": 2}
    assert checkins[2]["monitor_config"]["schedule"] == {"type": "interval", "value": 5, "unit": "minute"}
    assert all(c["environment"] == "staging" and c["release"] == __version__ for c in checkins)


def test_without_dsn_sentry_is_off_and_silent(receiver, state, caplog):
    caplog.set_level(logging.DEBUG, logger="opsbench")
    settings = load_settings()
    assert ops_sentry.init(settings) is False
    assert ops_sentry.enabled() is False
    assert ops_sentry.checkin("opsbench-x", "in_progress") is None
    assert ops_sentry.capture_exception(ValueError("x")) is None
    record = _runner(settings, state).run("fine")
    assert record.status == "ok"
    assert not [r for r in caplog.records if r.name.startswith("opsbench.sentry")]
    assert receiver.envelopes == []


def test_malformed_dsn_is_a_settings_error(receiver):
    with pytest.raises(SettingsError, match="SENTRY_DSN is not a valid Sentry DSN"):
        ops_sentry.init(load_settings(SENTRY_DSN="not-a-dsn"))


def test_scrub_shortens_user_ids_and_filters_secret_fields():
    event = {"user": {"id": "abcdef0123456789"}, "extra": {"user_id": "0123456789abcdef", "api_token": "x1",
                                                            "note": "postgresql://u:pw123456@h/db"}}
    out = ops_sentry.before_send(event, {})
    assert out["user"]["id"] == "abcdef01"
    assert out["extra"]["user_id"] == "01234567"
    assert out["extra"]["api_token"] == "[Filtered]"
    assert "pw123456" not in out["extra"]["note"]
