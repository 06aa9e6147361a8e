"""Every input checked at the door: settings, jobs-file numbers, random jobs-file values.

A malformed value is a one-line UserError naming what is wrong (never echoing a
secret), never a traceback from deeper down.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tomllib
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ops.core.errors import JobSpecError, SettingsError, UserError
from ops.core.settings import load_settings
from ops.daemon.jobspec import DEFAULT_JOBS_FILE, load_jobs

# -- settings -----------------------------------------------------------------------

DSN_VARS = ("DATABASE_URL", "MAINTENANCE_DATABASE_URL", "OPSBENCH_STATE_URL")


@pytest.mark.parametrize("var", DSN_VARS)
@pytest.mark.parametrize("dsn, expected", [
    ("postgresql://u:s3cretpw@localhost:notaport/db", "port"),
    ("postgresql://u:s3cretpw@localhost:70000/db", "port"),
    ("postgresql://u:s3cretpw@localhost:0/db", "port"),
    ("postgresql://u:s3cretpw@[::1/db", "IPv6"),
    ("postgresql://u:s3cretpw@::1]:5432/db", "IPv6"),
    ("mysql://u:s3cretpw@localhost/db", "PostgreSQL URL"),
])
def test_a_malformed_dsn_is_one_line_naming_the_variable_never_the_password(var, dsn, expected):
    with pytest.raises(SettingsError) as err:
        load_settings(**{var: dsn})
    msg = str(err.value)
    assert msg.startswith(f"{var}: ") and expected in msg
    assert "s3cretpw" not in msg and "\n" not in msg


@pytest.mark.parametrize("dsn", ["postgresql://u:pw@[::1]:5432/db", "postgresql://u@localhost/db",
                                 "postgresql+psycopg://u:pw@db.example.com:6543/app"])
def test_good_dsns_still_load(dsn):
    assert load_settings(DATABASE_URL=dsn).database_url == dsn


@pytest.mark.parametrize("var", ["OPSBENCH_STATEMENT_TIMEOUT", "OPSBENCH_LOCK_TIMEOUT"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-5", "1e12", "soon"])
def test_number_settings_must_be_finite_and_in_range(var, value, monkeypatch):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{var}: ") and "\n" not in str(err.value)


def test_every_float_setting_is_checked_for_finiteness(monkeypatch):
    from ops.core.settings import Settings

    floats = [f.alias for f in Settings.model_fields.values() if f.annotation is float]
    assert floats, "no float settings found"
    for var in floats:
        monkeypatch.setenv(var, "nan")
        with pytest.raises(SettingsError, match=f"^{var}: "):
            load_settings()
        monkeypatch.delenv(var)


@pytest.mark.parametrize("home", ["/proc/opsbench-home", "/dev/null"])
def test_an_unwritable_home_is_one_line(home):
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HOME=home)
    assert str(err.value).startswith("OPSBENCH_HOME: expected a directory")


def test_a_home_under_a_file_is_refused(tmp_path):
    """A file where a directory is expected: opsbench cannot create the home, whoever runs it (root too)."""
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HOME=str(tmp_path / "a-file" / "home"))
    assert str(err.value) == "OPSBENCH_HOME: expected a directory opsbench can create and write (Not a directory)"


@pytest.mark.parametrize("home", ["/proc", "/sys/kernel"])
def test_a_directory_the_kernel_will_not_let_anyone_write_is_refused(home):
    """Existing directories that root's permission override passes (os.access says yes) and no write reaches."""
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HOME=home)
    assert re.fullmatch(r"OPSBENCH_HOME: expected a directory opsbench can write \([^)\n]+\)", str(err.value))


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory no write reaches: mode 0555 for a user; for root, whom modes do not stop, a read-only bind mount."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        yield ro, "Permission denied"
        ro.chmod(0o755)
        return
    src = tmp_path / "src"
    src.mkdir()
    # bind, then remount read-only: the portable two steps (an old mount(8) ignores -o ro on --bind)
    bound = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True, text=True)
    if bound.returncode != 0:   # a container without CAP_SYS_ADMIN; CI runs where it works and fails on skips
        pytest.skip(f"root, and a bind mount is refused here: {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True, capture_output=True)
        assert os.statvfs(ro).f_flag & os.ST_RDONLY, "the bind mount is still writable"
        yield ro, "Read-only file system"
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_a_read_only_directory_is_refused_as_home_or_as_its_parent(read_only_dir):
    ro, reason = read_only_dir
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HOME=str(ro / "home"))
    assert str(err.value) == f"OPSBENCH_HOME: expected a directory opsbench can create and write ({reason})"
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_HOME=str(ro))
    assert str(err.value) == f"OPSBENCH_HOME: expected a directory opsbench can write ({reason})"


def test_a_missing_home_is_created(tmp_path):
    assert load_settings(OPSBENCH_HOME=str(tmp_path / "a" / "b")).home.is_dir()


# -- jobs file numbers ------------------------------------------------------------------

@pytest.mark.parametrize("line", ["timeout = nan", "timeout = inf", "timeout = -1", "timeout = 0",
                                  "interval = inf", "interval = nan", "interval = -60", "interval = 1e300",
                                  'interval = "99999999999999d"', "timeout = 1e308"])
def test_jobs_file_numbers_must_be_finite_and_positive(tmp_path, line):
    key = line.split()[0]
    schedule = "" if key == "interval" else 'interval = "5m"\n'
    path = tmp_path / "jobs.toml"
    path.write_text(f'[jobs.x]\ncallable = "support.daemon_jobs:ok"\n{schedule}{line}\n')
    with pytest.raises(JobSpecError) as err:
        load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(path)))
    msg = str(err.value)
    assert msg.startswith(f"{path}: job 'x': key '{key}': ") and "finite" in msg and "\n" not in msg


# -- property: random values anywhere in the shipped jobs file ------------------------------

SHIPPED = tomllib.loads(DEFAULT_JOBS_FILE.read_text())["jobs"]
JOB_KEYS = ["id", "callable", "cron", "interval", "timezone", "enabled", "timeout", "catch_up", "args", "description"]


def _str(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml(value) -> str:
    """A TOML inline value (enough of TOML for the property test; no datetimes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_str(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _dump(jobs: dict) -> str:
    out = []
    for job_id, body in jobs.items():
        out.append(f"[jobs.{job_id}]")
        out += [f"{_str(k)} = {_toml(v)}" for k, v in body.items()]
        out.append("")
    return "\n".join(out)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalar = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 1e300, 2**63 - 1, "", "5m", "0 9 * * *", "UTC"]),
    _text, st.booleans(),
)
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(_text, inner, max_size=3)), max_leaves=6)


def _paths(table: dict, prefix=()):
    """Every key path inside a job's args (nested tables included)."""
    for k, v in table.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


@st.composite
def _mutation(draw):
    job_id = draw(st.sampled_from(sorted(SHIPPED)))
    body = json.loads(json.dumps(SHIPPED[job_id]))  # a deep copy (the shipped file has no datetimes)
    where = draw(st.sampled_from(["key", "arg", "new_arg"]))
    value = draw(_value)
    key = "args."   # a value inside args: only the job's own validator can tell
    if where == "key":
        key = draw(st.sampled_from(JOB_KEYS))
        body[key] = value
    else:
        args = body.setdefault("args", {})
        paths = list(_paths(args))
        if where == "arg" and paths:
            path = draw(st.sampled_from(paths))
            target = args
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = value
        else:
            args[draw(_text.filter(bool))] = value
    jobs = dict(SHIPPED)
    jobs[job_id] = body
    return jobs, job_id, key, value


# What the README and jobs/jobs.toml's header say a value may be, written out here (not taken from the
# loader): None where only the job's own ARG_VALIDATORS or a crontab parser can tell.
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_ZONES = zoneinfo.available_timezones()


def _seconds(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _SPAN.match(value) if isinstance(value, str) else None
    return float(m[1]) * _UNIT[m[2]] if m else None


def _sane(value) -> bool:
    s = _seconds(value)
    return s is not None and math.isfinite(s) and 0 < s <= 366 * 86400


def _key_is_valid(job_id: str, key: str, value) -> bool | None:
    shipped = SHIPPED[job_id]
    if key == "id":
        return value == job_id
    if key == "callable":
        return value == shipped["callable"]
    if key == "timezone":
        return isinstance(value, str) and value.strip() in _ZONES
    if key == "cron":
        return False if "interval" in shipped or not isinstance(value, (str, dict)) else None
    if key == "interval":
        return False if "cron" in shipped else _sane(value)
    if key == "timeout":
        return _sane(value)
    if key in ("enabled", "catch_up"):
        return isinstance(value, bool)
    if key == "description":
        return isinstance(value, str)
    return None if isinstance(value, dict) else False   # args: a table, then the job's own validator


@hsettings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutation())
def test_random_jobs_file_values_load_as_written_or_fail_in_one_line_naming_the_key(tmp_path, mutation):
    jobs, job_id, key, value = mutation
    path = Path(tmp_path) / "jobs.toml"
    path.write_text(_dump(jobs), encoding="utf-8")
    settings = load_settings(OPSBENCH_JOBS_FILE=str(path))
    text = path.read_text(encoding="utf-8")
    assert tomllib.loads(text) == {"jobs": jobs} or _has_nan(jobs)  # the file says what the example meant
    valid = None if key == "args." else _key_is_valid(job_id, key, value)
    try:
        specs = {s.id: s for s in load_jobs(settings)}
    except UserError as e:
        msg = str(e)
        assert "\n" not in msg.strip(), msg
        assert valid is not True, f"refused a good {key} = {value!r}: {msg}"
        assert msg.startswith(f"{path}: job {job_id!r}: "), msg
        named = {"cron": ("cron", "interval"), "interval": ("cron", "interval")}.get(key, (key,))
        assert any(f"key {k!r}: " in msg for k in named) or (key.startswith("args") and ": args" in msg), msg
        return
    assert valid is not False, f"accepted {key} = {value!r} silently"
    spec, body = specs[job_id], jobs[job_id]
    # an accepted value is used as written, not dropped or coerced
    assert spec.timeout_s == _seconds(body.get("timeout", 300)) and spec.enabled == body.get("enabled", True)
    assert spec.catch_up == body.get("catch_up", True) and spec.description == body.get("description", "")
    if "interval" in body:
        assert spec.interval_s == _seconds(body["interval"]) and spec.cron is None
    assert spec.timezone == body.get("timezone", settings.report_tz)
    assert spec.args == body.get("args", {}) or _has_nan(body.get("args", {}))


def _has_nan(value) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


# -- paths that cannot be written ------------------------------------------------------------

@pytest.mark.parametrize("out, reason", [("/proc/opsbench-x.html", "cannot write"),
                                         ("/sys/opsbench-x.html", "cannot write"),
                                         ("{tmp}/a-file/report.html", "is not a directory"),
                                         ("{tmp}", "is a directory")])
def test_report_out_that_cannot_be_written_is_one_line_exit_2(out, reason, tmp_path, capsys):
    """Checked before any query runs: no database is needed to be told."""
    from ops.cli import main

    (tmp_path / "a-file").write_text("x")
    code = main(["report", "daily", "--out", out.replace("{tmp}", str(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("opsbench: error: --out: ") and reason in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_home_stops_the_cli_in_one_line(monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("OPSBENCH_HOME", "/proc/opsbench-home")
    code = main(["alerts"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("opsbench: error: OPSBENCH_HOME: ") and len(err.strip().splitlines()) == 1


def test_a_bad_dsn_stops_the_cli_in_one_line_without_the_password(monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("OPSBENCH_STATE_URL", "postgresql://ops:hunter2pw@localhost:notaport/state")
    code = main(["alerts"])
    err = capsys.readouterr().err
    assert code == 2 and "OPSBENCH_STATE_URL: the port must be a number" in err and "hunter2pw" not in err


@pytest.mark.parametrize("out, reason", [("/proc/opsbench-nb", "cannot write to"), ("{tmp}/a-file", "is a file")])
def test_notebooks_render_out_that_cannot_be_written_is_one_line_exit_2(out, reason, tmp_path, capsys):
    from ops.cli import main

    (tmp_path / "a-file").write_text("x")
    code = main(["notebooks", "render", "--only", "overview", "--out", out.replace("{tmp}", str(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("opsbench: error: --out: ") and reason in err and len(err.strip().splitlines()) == 1
