"""HTTP and PostgreSQL probes against real local servers and the embedded PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from support.daemon_support import wait_until
from support.http_targets import http_server, https_server

import queries
from jobs import probes
from ops.contract import JobContext, Severity
from ops.core.settings import load_settings
from ops.data.state import migrate

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def _ctx(settings, args, job_id="http_probes", clock=None) -> JobContext:
    return JobContext(settings=settings, job_id=job_id, run_id="run-1", args=args,
                      clock=clock or (lambda: NOW))


def _by_probe(findings, rule):
    return {f.labels["probe"]: f for f in findings if f.rule == rule}


@pytest.fixture(scope="module")
def server():
    with http_server() as base:
        yield base


def test_http_probe_cycle_flags_each_kind_of_failure(server, empty_db):
    targets = [
        {"name": "healthy", "url": f"{server}/healthy"},
        {"name": "slow", "url": f"{server}/slow?ms=300", "latency_warn_ms": 150, "latency_critical_ms": 5000},
        {"name": "failing", "url": f"{server}/failing"},
        {"name": "badjson", "url": f"{server}/badjson"},
        {"name": "check", "url": f"{server}/failing-check"},
        {"name": "gone", "url": "http://127.0.0.1:1/healthy", "timeout_s": 2},
        {"name": "hung", "url": f"{server}/slow?ms=60000", "timeout_s": 0.5},
    ]
    args = {"targets": targets, "expect_json": {"status": ["ok", "healthy"]}, "all_true": ["checks"]}
    result = probes.http_probes(_ctx(empty_db.settings, args))

    failing = _by_probe(result.findings, probes.HEALTH_FAILING)
    assert set(failing) == {"failing", "badjson", "check", "gone", "hung"}
    assert all(f.severity is Severity.critical for f in failing.values())
    assert "HTTP 503" in failing["failing"].summary and "status is 'unhealthy'" in failing["failing"].summary
    assert "not valid JSON" in failing["badjson"].summary
    assert "checks.externalApi is False" in failing["check"].summary
    assert "database" not in failing["check"].summary  # only the failing entry is named
    assert "connection failed" in failing["gone"].summary
    assert "no answer within 0.5 s" in failing["hung"].summary

    slow = _by_probe(result.findings, probes.HTTP_LATENCY)
    assert set(slow) == {"slow"}
    assert slow["slow"].severity is Severity.warning
    assert result.rules >= {probes.HEALTH_FAILING, probes.HTTP_LATENCY}
    assert result.metrics["healthy"] == 2 and result.metrics["targets"] == 7
    # the hung probe was cut at its own timeout, long before the server's 60 s
    assert result.metrics["cycle_ms"] < 30_000

    samples = queries.load("state/probes").samples(empty_db.writer, since=NOW - dt.timedelta(minutes=1),
                                                  until=NOW + dt.timedelta(minutes=1))
    assert sorted(samples["probe"]) == sorted(t["name"] for t in targets)
    ok = dict(zip(samples["probe"], samples["ok"]))
    assert ok["healthy"] and ok["slow"] and not ok["failing"] and not ok["gone"]
    codes = dict(zip(samples["probe"], samples["status_code"]))
    assert codes["failing"] == 503


def test_hundred_endpoints_are_probed_concurrently(server, empty_db):
    """The requests overlap, seen from the server (its peak of requests in flight at once); one after another
    it would be 1. The time of a cycle against its slowest request is measured by `python -m bench`."""
    targets = [{"name": f"e{i:03d}", "url": f"{server}/slow?ms={200 + 3 * i}&tag=hundred"} for i in range(100)]
    result = probes.http_probes(_ctx(empty_db.settings, {"targets": targets, "latency_warn_ms": 60_000,
                                                         "latency_critical_ms": 120_000}))
    peak = httpx.get(f"{server}/slow-peak?tag=hundred").json()["peak"]
    assert result.metrics["healthy"] == 100, [f.summary for f in result.findings][:3]
    assert result.metrics["slowest_ms"] >= 497  # the slowest endpoint really sleeps 497 ms
    print(f"100 endpoints: {result.metrics['cycle_ms']:.0f} ms, slowest {result.metrics['slowest_ms']:.0f} ms, "
          f"{peak} in flight at once")
    assert peak > 1, peak


def test_self_signed_certificate_close_to_expiry(tmp_path, empty_db):
    with https_server(tmp_path, days=5) as (base, cert):
        args = {"targets": [
            {"name": "trusted", "url": f"{base}/healthy", "ca_file": str(cert)},
            {"name": "untrusted", "url": f"{base}/healthy"},
        ]}
        real_now = dt.datetime.now(dt.timezone.utc)
        result = probes.http_probes(_ctx(empty_db.settings, args, clock=lambda: real_now))
    tls = _by_probe(result.findings, probes.TLS_EXPIRY)
    assert set(tls) == {"trusted"}
    assert tls["trusted"].severity is Severity.warning  # 5 days: below 14, above 3
    days = tls["trusted"].evidence[0]["days_left"]
    assert 4.9 < days <= 5.01
    failing = _by_probe(result.findings, probes.HEALTH_FAILING)
    assert set(failing) == {"untrusted"}
    assert "TLS verification failed" in failing["untrusted"].summary
    assert probes.TLS_EXPIRY in result.rules


def test_certificate_about_to_expire_is_critical(tmp_path, empty_db):
    with https_server(tmp_path, days=2) as (base, cert):
        args = {"targets": [{"name": "api", "url": f"{base}/healthy", "ca_file": str(cert)}]}
        result = probes.http_probes(_ctx(empty_db.settings, args, clock=lambda: dt.datetime.now(dt.timezone.utc)))
    (finding,) = [f for f in result.findings if f.rule == probes.TLS_EXPIRY]
    assert finding.severity is Severity.critical


@pytest.mark.parametrize("targets, message", [
    ([{"name": "x"}], "args.targets #1: key 'url'"),
    ([{"url": "ftp://example.com"}], "key 'url'"),
    ([{"url": "http://a/", "name": "a"}, {"url": "http://b/", "name": "a"}], "name used twice"),
    ([{"url": "http://a/", "colour": "red"}], "unknown key 'colour'"),
    ([{"url": "http://a/", "timeout_s": "soon"}], "args.targets 'a': key 'timeout_s': expected a number"),
    ([{"url": "http://a/", "expect_status": "ok"}], "args.targets 'a': key 'expect_status'"),
    ([{"url": "http://a/", "all_true": "checks"}], "args.targets 'a': key 'all_true'"),
    ([{"url": "http://a/", "ca_file": "/nonexistent/ca.pem"}], "args.targets 'a': key 'ca_file'"),
    ([{"url": "http://a/", "latency_warn_ms": 900, "latency_critical_ms": 100}], "key 'latency_critical_ms'"),
    ({"url": "http://a/"}, "expected a list of tables"),
])
def test_bad_target_configuration_names_target_and_key(targets, message):
    with pytest.raises(probes.JobArgError, match=message.replace("(", r"\(")):
        probes.parse_targets(targets)


def test_no_targets_is_skipped(empty_db):
    assert probes.http_probes(_ctx(empty_db.settings, {})).status == "skipped"


# -- PostgreSQL probe -------------------------------------------------------------------

def _pid_rows(finding):
    return {row["pid"] for row in finding.evidence}


def _wait_for_sessions(url: str, *, active_pid: int | None = None, active_s: float = 0,
                       idle_pid: int | None = None, idle_s: float = 0) -> None:
    """Until the server shows `active_pid` running one query for more than `active_s` and `idle_pid` idle in
    a transaction for more than `idle_s` (the thresholds a probe then compares against), within a minute."""
    def ready() -> bool:
        with psycopg.connect(url, autocommit=True) as admin:
            rows = admin.execute("SELECT pid, state, EXTRACT(EPOCH FROM clock_timestamp() - query_start), "
                                 "EXTRACT(EPOCH FROM clock_timestamp() - state_change) FROM pg_stat_activity "
                                 "WHERE pid = ANY(%s)", ([p for p in (active_pid, idle_pid) if p],)).fetchall()
        seen = {pid: (state, float(running), float(idle)) for pid, state, running, idle in rows}
        return ((active_pid is None or (active_pid in seen and seen[active_pid][0] == "active"
                                        and seen[active_pid][1] > active_s))
                and (idle_pid is None or (idle_pid in seen and seen[idle_pid][0] == "idle in transaction"
                                          and seen[idle_pid][2] > idle_s)))

    wait_until(ready, 60, interval_s=0.1, what="the sessions the probe is to see")


def test_postgres_probe_sees_long_query_and_idle_transaction(empty_db):
    migrate(empty_db.writer)
    args = {"long_query_s": 1.0, "idle_in_transaction_s": 0.5}
    quiet = probes.postgres(_ctx(empty_db.settings, args, job_id="postgres_probe"))
    assert quiet.findings == []
    assert quiet.metrics["reachable"] == 1.0
    assert probes.LONG_QUERIES in quiet.rules and probes.IDLE_IN_TRANSACTION in quiet.rules

    sleeper = psycopg.connect(empty_db.url, autocommit=True)
    idler = psycopg.connect(empty_db.url)  # psycopg opens a transaction on the first statement
    sleeper_pid, idler_pid = sleeper.info.backend_pid, idler.info.backend_pid

    def hold() -> None:
        try:
            sleeper.execute("SELECT pg_sleep(600)")
        except psycopg.errors.QueryCanceled:
            pass  # the test cancels it once the probe has seen it

    held = threading.Thread(target=hold, daemon=True)
    try:
        idler.execute("SELECT 1")  # now idle in transaction
        held.start()
        _wait_for_sessions(empty_db.url, active_pid=sleeper_pid, active_s=1.2, idle_pid=idler_pid, idle_s=0.7)
        result = probes.postgres(_ctx(empty_db.settings, args, job_id="postgres_probe"))
    finally:
        with psycopg.connect(empty_db.url, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
        held.join(timeout=10)
        idler.rollback()
        idler.close()
        sleeper.close()

    by_rule = {f.rule: f for f in result.findings}
    assert set(by_rule) == {probes.LONG_QUERIES, probes.IDLE_IN_TRANSACTION}
    assert _pid_rows(by_rule[probes.LONG_QUERIES]) == {sleeper_pid}
    assert "pg_sleep" in by_rule[probes.LONG_QUERIES].evidence[0]["query"]
    assert by_rule[probes.LONG_QUERIES].evidence[0]["running_s"] >= 1.0
    assert _pid_rows(by_rule[probes.IDLE_IN_TRANSACTION]) == {idler_pid}
    assert all(f.requires == (probes.DATABASE_UNREACHABLE,) for f in result.findings)
    assert result.metrics["connections_in_use"] >= 3  # the probe, the sleeper and the idler

    samples = queries.load("state/probes").samples(empty_db.writer, since=NOW - dt.timedelta(minutes=1),
                                                  until=NOW + dt.timedelta(minutes=1))
    pg = samples[samples["kind"] == "postgres"]
    assert len(pg) == 2 and pg["ok"].all() and (pg["latency_ms"] > 0).all()


def test_connections_near_max_are_flagged(empty_db):
    # a threshold of 0 % makes any use "near the limit": proves the comparison, not the server size
    result = probes.postgres(_ctx(empty_db.settings, {"connections_warn_pct": 0, "connections_critical_pct": 100},
                                  job_id="postgres_probe"))
    (f,) = [f for f in result.findings if f.rule == probes.DATABASE_CONNECTIONS]
    assert f.severity is Severity.warning
    assert f.evidence[0]["max_connections"] > 0


def test_unreachable_database_is_one_root_cause(empty_db):
    settings = load_settings(DATABASE_URL="postgresql://ops:s3cretpass@127.0.0.1:1/backend",
                             OPSBENCH_STATE_URL=empty_db.url)
    result = probes.postgres(_ctx(settings, {"connect_timeout_s": 2}, job_id="postgres_probe"))
    assert [f.rule for f in result.findings] == [probes.DATABASE_UNREACHABLE]
    f = result.findings[0]
    assert f.severity is Severity.critical
    assert "s3cretpass" not in f.summary + f.details + result.summary
    assert result.rules == {probes.DATABASE_UNREACHABLE}


@contextmanager
def _login_role(db, name: str):
    """A plain LOGIN role (no pg_monitor) on the test server; yields its URL for `db`. Dropped after."""
    with psycopg.connect(db.url, autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        assert "://postgres:@" in db.url
        yield db.url.replace("://postgres:@", f"://{name}:@", 1)
    finally:
        with psycopg.connect(db.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            admin.execute(f'DROP ROLE "{name}"')


def test_postgres_probe_without_pg_monitor_says_what_it_cannot_see(empty_db):
    """A read-only role without pg_monitor sees other roles' sessions with state NULL: the probe says so."""
    migrate(empty_db.writer)
    args = {"idle_in_transaction_s": 0.2}
    with _login_role(empty_db, "probe_plain") as url:
        settings = load_settings(DATABASE_URL=url, OPSBENCH_STATE_URL=empty_db.url)
        idler = psycopg.connect(empty_db.url)  # the application's session, another role
        try:
            idler.execute("SELECT 1")  # now idle in transaction
            idler_pid = idler.info.backend_pid
            _wait_for_sessions(empty_db.url, idle_pid=idler_pid, idle_s=0.4)
            blind = probes.postgres(_ctx(settings, args, job_id="postgres_probe"))
            with psycopg.connect(empty_db.url, autocommit=True) as admin:
                admin.execute("GRANT pg_monitor TO probe_plain")
            seeing = probes.postgres(_ctx(settings, args, job_id="postgres_probe"))
        finally:
            idler.rollback()
            idler.close()

    blind_rules = {f.rule: f for f in blind.findings}
    assert probes.IDLE_IN_TRANSACTION not in blind_rules  # the blind spot itself
    hidden = blind_rules[probes.SESSIONS_HIDDEN]
    assert hidden.severity is Severity.warning and hidden.requires == (probes.DATABASE_UNREACHABLE,)
    assert "grant pg_monitor to probe_plain" in hidden.summary
    assert "GRANT pg_monitor TO probe_plain" in hidden.details
    assert blind.metrics["hidden_sessions"] >= 1 and "grant pg_monitor to probe_plain" in blind.summary
    assert probes.SESSIONS_HIDDEN in blind.rules

    seeing_rules = {f.rule: f for f in seeing.findings}
    assert probes.SESSIONS_HIDDEN not in seeing_rules
    assert idler_pid in _pid_rows(seeing_rules[probes.IDLE_IN_TRANSACTION])
    assert seeing.metrics["hidden_sessions"] == 0
    # hidden sessions still count against max_connections: the probe itself and (at least) the idler
    assert blind.metrics["connections_in_use"] >= 2
