"""Logging: JSON lines off a terminal, readable lines on one, secrets always redacted.

`configure()` is called once by every entry point. The redaction filter sits on
the handler, so it also covers records from libraries (httpx, apscheduler,
sentry_sdk) and exception tracebacks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from ops.core.redact import redact

# Loggers that would print the Telegram token (it is in the URL path) or are
# chatty: kept at WARNING whatever the root level is.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "apscheduler.scheduler", "apscheduler.executors")

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """Render the message now and scrub it; scrub extras and exception text too.

    With `tracebacks=False` an exception is kept as its one last line
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


def configure(level: int | str = logging.INFO, json_lines: bool | None = None, environment: str = "development",
              stream=None, tracebacks: bool = True) -> logging.Handler:
    """Install one redacting handler on the root logger. Returns it.

    `tracebacks=False` shortens each logged exception to one line (the CLI's `opsbench run`)."""
    stream = stream or sys.stdout
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(tracebacks))
    handler.setFormatter(JsonFormatter(environment) if json_lines else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_opsbench", False)]:
        root.removeHandler(old)
    handler._opsbench = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries()
    return handler


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
