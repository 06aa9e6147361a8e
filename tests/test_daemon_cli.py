"""`opsbench jobs | run | status | doctor` through the real CLI entry point."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.daemon_support import ESSENTIAL_JOBS, runs
from support.sentry_receiver import SentryReceiver
from support.fixtures import state  # noqa: F401 - the shared module fixture

from ops.cli import main
from ops.core.settings import reset_settings_cache
from ops.daemon.leader import LeaderElector
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

JOBS = """
[jobs.fine]
callable = "support.daemon_jobs:ok"
interval = "5m"

[jobs.daily]
callable = "support.daemon_jobs:ok"
cron = "0 9 * * *"
timezone = "Europe/Istanbul"

[jobs.boom]
callable = "support.daemon_jobs:raising"
interval = "1h"

[jobs.off]
callable = "support.daemon_jobs:ok"
interval = 60
enabled = false
"""
BOT_TOKEN = "123456:AAFtelegramTOKENfortests_abcdefghijklmno"


@pytest.fixture
def env(state, monkeypatch, tmp_path, pg_home):
    jobs_file = tmp_path / "jobs.toml"
    jobs_file.write_text(JOBS)
    for key, value in {"DATABASE_URL": state.url, "OPSBENCH_STATE_URL": state.url, "OPSBENCH_HOME": str(pg_home),
                       "OPSBENCH_JOBS_FILE": str(jobs_file)}.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    return monkeypatch


def cli(capsys, *argv):
    reset_settings_cache()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_then_jobs_json_shows_schedule_next_run_and_last_status(env, state, capsys):
    code, out, err = cli(capsys, "run", "fine")
    assert code == 0, err
    assert out.startswith("fine: ok in ") and "all good" in out and "checked = 3" in out
    code, out, err = cli(capsys, "jobs", "--format", "json")
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert set(rows) == {"fine", "daily", "boom", "off"}
    assert rows["fine"]["last_status"] == "ok" and rows["fine"]["schedule"] == "every 5 minutes"
    assert rows["daily"]["last_status"] is None
    assert rows["daily"]["schedule"] == "every day at 09:00 (Europe/Istanbul)"
    nxt = dt.datetime.fromisoformat(rows["daily"]["next_run"])
    now = utc_now()
    assert now < nxt <= now + dt.timedelta(days=1)
    assert nxt.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%H:%M") == "09:00"  # Istanbul is UTC+3
    fine_next = dt.datetime.fromisoformat(rows["fine"]["next_run"])
    assert dt.timedelta(minutes=4) < fine_next - now <= dt.timedelta(minutes=5)  # 5 min after its last run
    assert rows["off"]["enabled"] is False and rows["off"]["next_run"] is None

    code, out, _ = cli(capsys, "jobs")
    assert code == 0 and "every day at 09:00" in out and "(disabled)" in out


def test_run_failing_job_exits_1_without_secrets_and_dry_run_records_nothing(env, state, capsys):
    code, out, err = cli(capsys, "run", "boom")
    assert code == 1
    # one line on stderr, as every CLI error: the job, how it ended, why; no exception class, no traceback
    (line,) = err.strip().splitlines()
    assert line.startswith("opsbench: error: boom failed after ") and out == ""
    assert "Error:" not in line and "Traceback" not in err
    assert "AAHsecretTOKEN" not in out + err and "hunter2" not in out + err
    before = len(runs(state.writer, "fine"))
    code, out, _ = cli(capsys, "run", "fine", "--dry-run")
    assert code == 0 and "(dry run)" in out
    assert len(runs(state.writer, "fine")) == before


def test_user_errors_are_one_line_exit_2(env, capsys, tmp_path):
    code, _, err = cli(capsys, "run", "nope")
    assert code == 2 and "unknown job 'nope'" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[jobs.x]\ncallable = "support.daemon_jobs:ok"\ncron = "0 25 * * *"\n')
    env.setenv("OPSBENCH_JOBS_FILE", str(bad))
    code, _, err = cli(capsys, "jobs")
    assert code == 2 and "job 'x': key 'cron'" in err and len(err.strip().splitlines()) == 1


def test_status_shows_the_leader_alerts_and_outbox(env, state, capsys):
    elector = LeaderElector(state.writer.url, identity="host-x:4242:abc123")
    try:
        assert elector.poll_once()
        code, out, err = cli(capsys, "status", "--format", "json")
        assert code == 0, err
        data = json.loads(out)
        (me,) = [i for i in data["instances"] if i["instance"] == "host-x:4242:abc123"]
        assert me["is_leader"] is True and me["state"] == "leader" and me["last_seen_ago_s"] < 30
        assert data["outbox_depth"] is not None
        assert data["healthy"] is True and data["problems"] == []
        code, out, _ = cli(capsys, "status")
        assert code == 0 and out.rstrip().endswith("healthy")
        assert "host-x:4242:abc123" in out and ": leader" in out and "outbox:" in out
    finally:
        elector._shutdown()
    code, out, _ = cli(capsys, "status")
    assert code == 1 and "no daemon is leading" in out
    code, out, _ = cli(capsys, "status", "-f", "json")
    assert code == 1 and json.loads(out)["problems"] == ["no daemon is leading"]


def test_status_exits_1_while_a_critical_alert_fires_and_0_for_warnings(env, state, capsys):
    from ops.alerting import manager as alerts
    from ops.contract import Finding, JobResult
    from ops.core.settings import get_settings

    elector = LeaderElector(state.writer.url, identity="host-y:4243:def456")
    now = utc_now()
    try:
        assert elector.poll_once()
        alerts.record_result(state.writer, "status_test", JobResult(findings=[
            Finding(rule="status_warn", severity="warning", summary="a warning")]), now, get_settings())
        code, out, err = cli(capsys, "status", "-f", "json")
        assert code == 0, (out, err)  # a warning alone is not a failure for a script
        alerts.record_result(state.writer, "status_test", JobResult(findings=[
            Finding(rule="status_warn", severity="warning", summary="a warning"),
            Finding(rule="status_crit", severity="critical", summary="money is wrong")]), now, get_settings())
        code, out, _ = cli(capsys, "status", "-f", "json")
        assert code == 1 and json.loads(out)["problems"] == ["1 critical alert open"]
        code, out, _ = cli(capsys, "status")
        assert code == 1 and out.rstrip().endswith("problems: 1 critical alert open")
    finally:
        elector._shutdown()


def test_jobs_table_shows_next_run_relative_and_findings_not_plain_ok(env, state, capsys):
    import sqlalchemy as sa

    now = utc_now()
    with state.writer.begin() as c:
        c.execute(sa.text("INSERT INTO opsbench.job_runs (run_id, job, trigger, status, started_at, finished_at, "
                          "duration_s, summary, metrics, findings, leader) VALUES "
                          "(gen_random_uuid(), 'fine', 'manual', 'ok', :t, :t, 0.1, '0/6 checks pass', '{}', 6, 'manual')"),
                  {"t": now + dt.timedelta(seconds=5)})
    code, out, err = cli(capsys, "jobs")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "ok, 6 findings" in lines["fine"]
    assert "in 5 min" in lines["fine"] or "in 4 min" in lines["fine"]  # interval 5m from the last run
    assert " in " in lines["daily"] and "never run" in lines["daily"]
    code, out, _ = cli(capsys, "jobs", "-f", "json")
    assert {r["id"]: r["last_findings"] for r in json.loads(out)}["fine"] == 6


def test_doctor_names_each_problem_in_plain_words(env, capsys):
    env.setenv("OPSBENCH_STATE_URL", "postgresql://ops:state-pw-123456@127.0.0.1:1/state")
    env.setenv("SENTRY_DSN", "not-a-dsn")
    code, out, err = cli(capsys, "doctor")
    assert code == 1
    lines = {ln.split()[1]: ln for ln in out.splitlines() if len(ln.split()) > 1 and ln.split()[0] in
             ("ok", "WARN", "FAIL")}
    assert lines["analytics"].startswith("ok") and "read-only session" in lines["analytics"]
    assert lines["state"].startswith("FAIL") and "connection refused" in lines["state"]
    assert "postgresql://ops:***@127.0.0.1:1/state" in lines["state"]
    assert lines["sentry"].startswith("FAIL") and "SENTRY_DSN is not a valid Sentry DSN" in lines["sentry"]
    assert lines["telegram"].startswith("WARN") and "TELEGRAM_BOT_TOKEN is not set" in lines["telegram"]
    assert "state-pw-123456" not in out + err
    assert "problem(s) found" in out
    # the test jobs file has neither the heartbeat nor the outbox drain: both are problems, not "pinged every minute"
    assert lines["heartbeat"].startswith("FAIL") and "no job runs jobs.builtin:heartbeat" in lines["heartbeat"]
    assert "every minute" not in lines["heartbeat"]
    assert lines["outbox"].startswith("FAIL") and "never reach Telegram" in lines["outbox"]


class _BotApi:
    """getMe only: the right token gets the bot, any other 401."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                if self.path == f"/bot{BOT_TOKEN}/getMe":
                    status, body = 200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": "opsbench_bot"}}
                else:
                    status, body = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_doctor_all_good_with_telegram_getme_and_reachable_sentry(env, capsys, tmp_path):
    bot, receiver = _BotApi(), SentryReceiver()
    complete = tmp_path / "complete-jobs.toml"
    complete.write_text(JOBS + ESSENTIAL_JOBS)
    try:
        env.setenv("OPSBENCH_JOBS_FILE", str(complete))
        env.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        env.setenv("TELEGRAM_CHAT_ID", "-100123")
        env.setenv("TELEGRAM_API_BASE", bot.base)
        env.setenv("SENTRY_DSN", receiver.dsn())
        env.setenv("HEARTBEAT_URL", "https://hc-ping.example.com/3f2b8c1e-secret-check-uuid")
        code, out, err = cli(capsys, "doctor")
        # no admins yet: the alert buttons could only read, which doctor says (a warning, not a failure)
        assert "TELEGRAM_ADMIN_IDS is not set" in out
        env.setenv("TELEGRAM_ADMIN_IDS", "42")
        code, out, err = cli(capsys, "doctor")
        assert code == 0, out + err
        assert "bot @opsbench_bot answers getMe" in out and "no problems found" in out
        # a ping URL's path is its secret: the host is shown, the path never
        assert "hc-ping.example.com/…" in out and "secret-check-uuid" not in out + err
        assert "DSN valid, 127.0.0.1 reachable, project 42" in out
        env.setenv("TELEGRAM_BOT_TOKEN", "123456:AAFwrongTOKENwrongTOKENwrong_abcdefgh")
        code, out, err = cli(capsys, "doctor")
        assert code == 1 and "Telegram rejected TELEGRAM_BOT_TOKEN" in out
        assert "AAFwrongTOKEN" not in out + err
    finally:
        bot.close()
        receiver.close()


def test_builtin_jobs_heartbeat_pings_and_outbox_drain(env, state, capsys):
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        env.delenv("OPSBENCH_JOBS_FILE")  # the shipped defaults
        env.setenv("HEARTBEAT_URL", f"http://127.0.0.1:{server.server_address[1]}/ping/abc")
        code, out, err = cli(capsys, "run", "heartbeat")
        assert code == 0, err
        assert hits == ["/ping/abc"] and "ping_ok = 1" in out
        code, out, err = cli(capsys, "run", "drain_outbox")
        assert code == 0, err
        assert "\ndrain_outbox: ok" in "\n" + out
    finally:
        server.shutdown()
        server.server_close()


def test_status_with_the_state_db_down_is_one_line(env, capsys):
    env.setenv("OPSBENCH_STATE_URL", "postgresql://ops:pw-654321x@127.0.0.1:1/state")
    code, out, err = cli(capsys, "status")
    assert code == 1 and "state database unavailable" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "pw-654321x" not in err
