"""An override file holds only what differs from jobs/jobs.toml; OPSBENCH_HEALTH_URLS adds probe targets.

Expected values come from reading jobs/jobs.toml with tomllib here, not from
the merge under test.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from ops.cli import main
from ops.core.settings import SettingsError, load_settings, reset_settings_cache
from ops.daemon.jobspec import DEFAULT_JOBS_FILE, JobSpecError, explain, load_jobs

SHIPPED = tomllib.loads(DEFAULT_JOBS_FILE.read_text(encoding="utf-8"))["jobs"]

OVERRIDE = """
extends = "defaults"

[jobs.daily_digest]
cron = "0 8 * * *"

[jobs.http_probes.args]
latency_warn_ms = 1500

[jobs.cleanup]
enabled = false

[jobs.my_ping]
callable = "jobs.builtin:heartbeat"
interval = "5m"
"""


@pytest.fixture
def override(tmp_path):
    path = tmp_path / "override.toml"
    path.write_text(OVERRIDE, encoding="utf-8")
    return path


def _by_id(settings):
    return {s.id: s for s in load_jobs(settings)}


def test_override_file_changes_only_what_it_names(override):
    specs = _by_id(load_settings(OPSBENCH_JOBS_FILE=str(override)))
    assert set(specs) == set(SHIPPED) | {"my_ping"}                   # every default job is still there
    assert specs["daily_digest"].cron == "0 8 * * *"
    assert specs["daily_digest"].timeout_s == float(SHIPPED["daily_digest"]["timeout"])   # the rest: default
    probes = specs["http_probes"].args
    assert probes["latency_warn_ms"] == 1500
    for key in ("timeout_s", "latency_critical_ms", "tls_warn_days", "tls_critical_days"):
        assert probes[key] == SHIPPED["http_probes"]["args"][key], key
    assert specs["cleanup"].enabled is False
    assert specs["cleanup"].args == SHIPPED["cleanup"].get("args", {})
    assert specs["my_ping"].callable == "jobs.builtin:heartbeat" and specs["my_ping"].interval_s == 300
    untouched = set(SHIPPED) - {"daily_digest", "http_probes", "cleanup"}
    shipped_specs = _by_id(load_settings())
    for job_id in untouched:
        assert specs[job_id] == shipped_specs[job_id], job_id


def test_a_partial_file_merges_without_the_marker(tmp_path):
    """Only what differs: a shipped job named without its callable can only mean a change to it."""
    path = tmp_path / "partial.toml"
    path.write_text(OVERRIDE.replace('extends = "defaults"\n', ""), encoding="utf-8")
    specs = _by_id(load_settings(OPSBENCH_JOBS_FILE=str(path)))
    assert set(specs) == set(SHIPPED) | {"my_ping"}
    assert specs["daily_digest"].cron == "0 8 * * *" and specs["cleanup"].enabled is False
    assert specs["http_probes"].args["latency_warn_ms"] == 1500


def test_a_file_without_extends_still_stands_alone(tmp_path):
    path = tmp_path / "alone.toml"
    path.write_text('[jobs.only]\ncallable = "jobs.builtin:heartbeat"\ninterval = "1m"\n', encoding="utf-8")
    assert list(_by_id(load_settings(OPSBENCH_JOBS_FILE=str(path)))) == ["only"]


def test_override_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "defaults"\n[jobs.daily_digest]\ncron = "99 * * * *"\n', encoding="utf-8")
    with pytest.raises(JobSpecError, match="daily_digest.*cron"):
        load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(bad)))
    bad.write_text('extends = "something"\n', encoding="utf-8")
    with pytest.raises(JobSpecError, match="extends"):
        load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(bad)))
    bad.write_text('extends = "defaults"\n[jobs.new_one]\ninterval = "1m"\n', encoding="utf-8")
    with pytest.raises(JobSpecError, match="new_one"):          # a new job needs its callable
        load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(bad)))


def test_health_urls_add_targets_to_http_probes(override):
    s = load_settings(OPSBENCH_JOBS_FILE=str(override),
                      OPSBENCH_HEALTH_URLS=" api=https://api.example.com/api/health , https://status.example.org/h ")
    targets = _by_id(s)["http_probes"].args["targets"]
    assert targets == [{"name": "api", "url": "https://api.example.com/api/health"},
                       {"name": "status.example.org", "url": "https://status.example.org/h"}]
    from jobs.probes import parse_targets

    assert [p.name for p in parse_targets(targets)] == ["api", "status.example.org"]


@pytest.mark.parametrize("value, what", [
    ("ftp://x.example/h", "http:// or https://"),
    ("api=", "http:// or https://"),
    ("https://a.example/h,,https://b.example/h", "item 2 is empty"),
    ("a b=https://a.example/h", "name"),
    ("x=https://a.example/h,x=https://b.example/h", "used twice"),
    ("https://", "http:// or https://"),
])
def test_bad_health_urls_name_the_variable(value, what):
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HEALTH_URLS=value)
    assert str(err.value).startswith("OPSBENCH_HEALTH_URLS: ") and what in str(err.value)


def test_explain_shows_where_each_value_came_from(override):
    s = load_settings(OPSBENCH_JOBS_FILE=str(override), OPSBENCH_HEALTH_URLS="api=https://api.example.com/health")
    rows = {(job, key): (value, origin) for job, key, value, origin in explain(s)}
    assert rows[("daily_digest", "cron")] == ("0 8 * * *", "override file")
    assert rows[("daily_digest", "timeout")] == (SHIPPED["daily_digest"]["timeout"], "default")
    assert rows[("http_probes", "args.latency_warn_ms")] == (1500, "override file")
    assert rows[("http_probes", "args.timeout_s")] == (SHIPPED["http_probes"]["args"]["timeout_s"], "default")
    assert rows[("http_probes", "args.targets[api]")] == ("https://api.example.com/health", "env OPSBENCH_HEALTH_URLS")
    assert rows[("cleanup", "enabled")] == (False, "override file")
    assert rows[("my_ping", "callable")] == ("jobs.builtin:heartbeat", "override file")


def test_jobs_explain_cli(override, monkeypatch, capsys):
    monkeypatch.setenv("OPSBENCH_JOBS_FILE", str(override))
    monkeypatch.setenv("OPSBENCH_HEALTH_URLS", "api=https://api.example.com/health")
    reset_settings_cache()
    assert main(["jobs", "--explain", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = {(r["job"], r["key"]): r["origin"] for r in rows}
    assert got[("daily_digest", "cron")] == "override file"
    assert got[("http_probes", "args.targets[api]")] == "env OPSBENCH_HEALTH_URLS"
    assert got[("weekly_report", "cron")] == "default"
    assert main(["jobs", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "args.targets[api]" in out and "env OPSBENCH_HEALTH_URLS" in out
