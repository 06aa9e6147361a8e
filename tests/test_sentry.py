"""The real sentry-sdk against an envelope receiver on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest
import sentry_sdk
from support import daemon_jobs
from support.fixtures import state  # noqa: F401 - the shared module fixture

from ops import __version__
from ops.core import sentry as ops_sentry
from ops.core.settings import SettingsError, load_settings
from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import Runner

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


def test_settings_secrets_in_a_failing_jobs_locals_never_reach_sentry(receiver, state, pg_server, tmp_path):
    """Every secret the settings hold is registered when Sentry starts; frame locals are not sent."""
    import sqlalchemy as sa

    ping_id = "5f1c0a2e-9d3b-4c7a-8e6f-1b2c3d4e5f60"
    heartbeat = f"https://hc-ping.example.com/ping/{ping_id}"
    token = "987654321:AAsettingsTokenValue_abcdefghijklmnopq"
    backend_pw, maint_pw, state_pw, dsn_secret = "backendPW-5551", "maintPW-5552", "statePW-5553", "sentrySecret5554"
    url = sa.make_url(state.url)

    def with_pw(pw):
        return url.set(username="ops", password=pw).render_as_string(hide_password=False)

    settings = load_settings(SENTRY_DSN=receiver.dsn(secret=dsn_secret), TELEGRAM_BOT_TOKEN=token,
                             HEARTBEAT_URL=heartbeat, DATABASE_URL=with_pw(backend_pw),
                             MAINTENANCE_DATABASE_URL=with_pw(maint_pw), OPSBENCH_STATE_URL=with_pw(state_pw),
                             OPSBENCH_HOME=str(tmp_path))
    assert ops_sentry.init(settings) is True
    try:
        specs = {"leaky": JobSpec(id="leaky", callable="support.daemon_jobs:raising_with_settings_secrets",
                                  timezone="UTC", interval_s=300, timeout_s=30)}
        runner = Runner(settings, specs, state_engine=state.writer, identity="sentry-test",
                        alert_sink=lambda *a: None)
        assert runner.run("leaky").status == "failed"
        ops_sentry.flush()
        assert receiver.wait_for(lambda: len(receiver.events()) >= 1)
        ops_sentry.flush()
    finally:
        ops_sentry.close()
    (event,) = receiver.events()
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "RuntimeError" and "failed: ping" in exc["value"]
    frames = exc["stacktrace"]["frames"]
    assert any(f.get("function") == "raising_with_settings_secrets" for f in frames)  # the trace is there
    assert not any(f.get("vars") for f in frames)  # ... without the frames' locals
    raw = receiver.raw_everything()
    for secret in (ping_id, token, token.split(":")[1], backend_pw, maint_pw, state_pw, dsn_secret):
        assert secret.encode() not in raw, secret
    assert b"<redacted>" in raw  # the exception text is there, scrubbed


def test_secrets_of_lists_every_secret_setting():
    settings = load_settings(SENTRY_DSN="https://pub@o1.ingest.sentry.io/1".replace("pub", "pub:sec123456"),
                             TELEGRAM_BOT_TOKEN="123456:AAtok", HEARTBEAT_URL="https://hc.example.com/ping/abcdefabcdefabcdef12",
                             DATABASE_URL="postgresql://u:pw-one1@h/db", OPSBENCH_STATE_URL="postgresql://u:pw-two2@h/db")
    found = set(ops_sentry.secrets_of(settings))
    assert {"123456:AAtok", "pw-one1", "pw-two2", "sec123456", "ping/abcdefabcdefabcdef12",
            "abcdefabcdefabcdef12"} <= found
