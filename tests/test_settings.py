"""Settings: one-line errors naming the variable; DSN passwords masked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ops.core.redact import mask_dsn, redact
from ops.core.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "var, value, expected",
    [
        ("REPORT_TZ", "Mars/Olympus", "IANA time zone"),
        ("DATABASE_URL", "mysql://u:pw@h/db", "PostgreSQL URL"),
        ("OPSBENCH_STATE_URL", "not a url", "PostgreSQL URL"),
        ("TELEGRAM_THREAD_ID", "abc", "integer"),
        ("OPSBENCH_STATEMENT_TIMEOUT", "-1", "greater than 0"),
    ],
)
def test_bad_value_names_variable(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    msg = str(err.value)
    assert msg.startswith(f"{var}: ")
    assert expected in msg
    assert "\n" not in msg
    assert "pw@" not in msg


def test_defaults_use_embedded_and_utc():
    s = load_settings()
    assert s.uses_embedded
    assert s.report_tz == "UTC"
    assert s.maintenance_database_url is None


def test_dotenv_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("REPORT_TZ=Europe/Istanbul\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().report_tz == "Europe/Istanbul"


def test_mask_dsn_hides_password():
    assert mask_dsn("postgresql://app:s3cr3t@db.example.com:5432/prod") == "postgresql://app:***@db.example.com:5432/prod"
    assert mask_dsn("postgresql://app@db/prod") == "postgresql://app@db/prod"
    assert "s3cr3t" not in redact("connection to postgresql://app:s3cr3t@db/prod failed; password=s3cr3t")


def test_cli_bad_setting_exits_2_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "REPORT_TZ": "Nowhere/Land", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "ops", "db", "url"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "REPORT_TZ" in lines[0] and "Traceback" not in proc.stderr
