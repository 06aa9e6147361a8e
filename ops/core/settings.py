"""Settings from the environment and an optional `.env`.

Every value is validated at start; a bad one becomes a `SettingsError` whose
message is one line naming the variable and what was expected.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.core.clock import parse_duration, parse_zone
from ops.core.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# set by `opsbench notebooks render` for the kernels it starts: the URL (a file
# beside the pages) the charts load plotly.js from, instead of embedding it
PLOTLYJS_SRC_ENV = "OPSBENCH_PLOTLYJS_SRC"

_DSN_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


_DSN_EXPECTED = "expected a PostgreSQL URL such as postgresql://user:password@host:5432/dbname"


def _check_dsn(value: str | None) -> str | None:
    """The DSN parsed completely now, so a bad port or host is a settings error, not a traceback later.

    The message never repeats the value: it may hold a password.
    """
    if value in (None, ""):
        return None
    if not value.startswith(_DSN_SCHEMES):
        raise ValueError(_DSN_EXPECTED)
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url

    port_msg = f"the port must be a number from 1 to 65535; {_DSN_EXPECTED}"
    try:
        parts = urlsplit(value)
    except ValueError:  # "Invalid IPv6 URL"
        raise ValueError(f"the host has an unbalanced IPv6 bracket (write [::1]:5432); {_DSN_EXPECTED}") from None
    hostport = parts.netloc.rsplit("@", 1)[-1]
    if hostport.count("[") != hostport.count("]"):
        raise ValueError(f"the host has an unbalanced IPv6 bracket (write [::1]:5432); {_DSN_EXPECTED}")
    try:
        port = parts.port  # ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(port_msg) from None
    if port == 0:
        raise ValueError(port_msg)
    try:
        make_url(value)
    except Exception:  # noqa: BLE001 — sqlalchemy.exc.ArgumentError and friends: never echo the value
        raise ValueError(f"not a parseable URL; {_DSN_EXPECTED}") from None
    return value


def _check_seconds(value: float, *, upper: float) -> float:
    if not math.isfinite(value) or value <= 0 or value > upper:
        raise ValueError(f"expected a finite number of seconds greater than 0 and at most {upper:g}")
    return value


def _check_home(value: Path) -> Path:
    """OPSBENCH_HOME must exist or be creatable, and be a writable directory."""
    path = Path(value).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"expected a directory opsbench can create and write ({e.strerror})") from None
    if not path.is_dir():
        raise ValueError("expected a directory, not a file")
    # a file written and gone, not os.access: for root, access() says yes to /proc, /sys or a
    # chmod 0500 directory alike, and only a real write meets a read-only mount or the kernel's refusal
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(f"expected a directory opsbench can write ({e.strerror})") from None
    return path


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_admin_ids(text: str) -> frozenset[int]:
    """'123, 456' -> {123, 456}; ValueError saying what is expected."""
    ids = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or len(part) > 15:
            raise ValueError("expected Telegram user ids (whole numbers) separated by commas, such as "
                             "123456789,987654321 (`opsbench telegram setup` prints them)")
        ids.add(int(part))
    if not ids:
        raise ValueError("expected at least one Telegram user id")
    return frozenset(ids)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    maintenance_database_url: str | None = Field(default=None, alias="MAINTENANCE_DATABASE_URL")
    state_url: str | None = Field(default=None, alias="OPSBENCH_STATE_URL")
    report_tz: str = Field(default="UTC", alias="REPORT_TZ")
    environment: str = Field(default="development", alias="ENVIRONMENT")
    home: Path = Field(default=PROJECT_ROOT / ".opsbench", alias="OPSBENCH_HOME")
    statement_timeout_s: float = Field(default=60.0, alias="OPSBENCH_STATEMENT_TIMEOUT")
    lock_timeout_s: float = Field(default=5.0, alias="OPSBENCH_LOCK_TIMEOUT")

    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_chat_id: str | None = Field(default=None, alias="TELEGRAM_CHAT_ID")
    telegram_thread_id: int | None = Field(default=None, alias="TELEGRAM_THREAD_ID")
    telegram_api_base: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_BASE")
    # Telegram user ids (comma-separated) whose buttons and commands may change anything;
    # anyone else in the chat may only read (/status, /alerts, Details)
    telegram_admin_ids: str | None = Field(default=None, alias="TELEGRAM_ADMIN_IDS")
    # the leader daemon long-polls getUpdates for button presses and commands (off: send only)
    telegram_poll: bool = Field(default=True, alias="TELEGRAM_POLL")
    # seconds one getUpdates long poll waits for an update
    telegram_poll_timeout_s: int = Field(default=25, alias="TELEGRAM_POLL_TIMEOUT")

    sentry_dsn: SecretStr | None = Field(default=None, alias="SENTRY_DSN")
    heartbeat_url: str | None = Field(default=None, alias="HEARTBEAT_URL")
    jobs_file: Path | None = Field(default=None, alias="OPSBENCH_JOBS_FILE")
    # the founder's own checks (one SQL file each, see `opsbench checks new`), run with the shipped ones
    checks_dir: Path | None = Field(default=None, alias="OPSBENCH_CHECKS_DIR")
    # non-critical alerts are delivered silently in this local window (REPORT_TZ)
    quiet_hours: str | None = Field(default=None, alias="OPSBENCH_QUIET_HOURS")
    # an alert that fires or resolves this often within an hour is announced once as
    # flapping and held until it stays put (0 turns flapping detection off)
    flap_changes: int = Field(default=4, alias="OPSBENCH_FLAP_CHANGES")
    # the daemon's log level (ops/core/logs.py applies it)
    log_level: str = Field(default="INFO", alias="OPSBENCH_LOG_LEVEL")
    # extra HTTP probe targets, comma-separated, each `URL` or `name=URL` (jobs/probes/http.py http_probes)
    health_urls: str | None = Field(default=None, alias="OPSBENCH_HEALTH_URLS")
    # conversion rates the founder keeps (TOML or CSV, see ops/core/fx.py); none: every currency on its own line
    fx_rates: Path | None = Field(default=None, alias="OPSBENCH_FX_RATES")
    # the store's commission and tax shares (TOML or CSV, see ops/core/commission.py); none: proceeds "not configured"
    commission_file: Path | None = Field(default=None, alias="OPSBENCH_COMMISSION")
    # what each generation costs at its provider (TOML, see ops/core/costs.py); none: margins "not configured"
    provider_costs_file: Path | None = Field(default=None, alias="OPSBENCH_PROVIDER_COSTS")

    # a critical alert nobody acked is sent again, ringing, after this long (and once more after twice
    # as long again); "0" turns escalation off (ops/alerting/manager.py escalate)
    escalate_after: str = Field(default="15m", alias="OPSBENCH_ESCALATE_AFTER")
    # the email channel (ops/alerting/email/): on when OPSBENCH_EMAIL_TO names one or more addresses
    email_to: str | None = Field(default=None, alias="OPSBENCH_EMAIL_TO")
    email_from: str | None = Field(default=None, alias="OPSBENCH_EMAIL_FROM")
    smtp_host: str = Field(default="localhost", alias="OPSBENCH_SMTP_HOST")
    smtp_port: int = Field(default=25, alias="OPSBENCH_SMTP_PORT")
    smtp_user: str | None = Field(default=None, alias="OPSBENCH_SMTP_USER")
    smtp_password: SecretStr | None = Field(default=None, alias="OPSBENCH_SMTP_PASSWORD")
    # auto: STARTTLS when the server offers it; starttls: required; ssl: TLS from the start; none
    smtp_tls: str = Field(default="auto", alias="OPSBENCH_SMTP_TLS")

    @field_validator("database_url", "maintenance_database_url", "state_url")
    @classmethod
    def _dsn(cls, v: str | None) -> str | None:
        return _check_dsn(v)

    @field_validator("statement_timeout_s", "lock_timeout_s")
    @classmethod
    def _seconds(cls, v: float) -> float:
        return _check_seconds(v, upper=86400.0)

    @field_validator("home")
    @classmethod
    def _home(cls, v: Path) -> Path:
        return _check_home(v)

    @field_validator("report_tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        return parse_zone(v).key  # ValueError says what is expected

    @field_validator("telegram_api_base", "heartbeat_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("telegram_admin_ids")
    @classmethod
    def _admins(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_admin_ids(v)  # ValueError says what is expected
        return v.strip()

    @field_validator("telegram_poll_timeout_s")
    @classmethod
    def _poll_timeout(cls, v: int) -> int:
        if not 0 <= v <= 50:
            raise ValueError("expected a whole number of seconds from 0 to 50")
        return v

    @field_validator("environment")
    @classmethod
    def _env(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("expected a non-empty name such as production")
        return v.strip()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("flap_changes")
    @classmethod
    def _flaps(cls, v: int) -> int:
        if v != 0 and not 2 <= v <= 100:
            raise ValueError("expected 0 (off) or a whole number of changes from 2 to 100")
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if _parse_quiet_hours(v) is None:
            raise ValueError("expected HH:MM-HH:MM such as 23:00-07:00")
        return v.strip()

    @field_validator("health_urls")
    @classmethod
    def _health_urls(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_health_urls(v)  # ValueError says what is expected
        return v.strip()

    @field_validator("fx_rates", mode="before")
    @classmethod
    def _fx_rates(cls, v):
        if v is None or not str(v).strip():
            return None
        from ops.core import fx

        path = Path(str(v).strip()).expanduser()
        fx.load(path)  # ValueError says what is expected
        return path

    @field_validator("commission_file", mode="before")
    @classmethod
    def _commission_file(cls, v):
        if v is None or not str(v).strip():
            return None
        from ops.core import commission

        path = Path(str(v).strip()).expanduser()
        commission.load(path)  # ValueError: one line naming the file, line and key
        return path

    @field_validator("escalate_after")
    @classmethod
    def _escalate_after(cls, v: str) -> str:
        if v.strip() in ("0", "off"):
            return "0"
        try:
            parse_duration(v)
        except ValueError:
            raise ValueError("expected a duration such as 15m or 1h, or 0 for off") from None
        return v.strip()

    @field_validator("email_to")
    @classmethod
    def _email_to(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_addresses(v)  # ValueError says what is expected
        return v.strip()

    @field_validator("email_from")
    @classmethod
    def _email_from(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        addresses = parse_addresses(v)  # ValueError says what is expected
        if len(addresses) != 1:
            raise ValueError("expected one address such as opsbench@example.com")
        return addresses[0]

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host(cls, v: str) -> str:
        if not v.strip() or any(c in v for c in " /:@"):
            raise ValueError("expected a host name or address such as smtp.example.com")
        return v.strip()

    @field_validator("smtp_port")
    @classmethod
    def _smtp_port(cls, v: int) -> int:
        if not 1 <= v <= 65535:
            raise ValueError("expected a port number from 1 to 65535 (25, 465 or 587)")
        return v

    @field_validator("smtp_tls")
    @classmethod
    def _smtp_tls(cls, v: str) -> str:
        mode = v.strip().lower()
        if mode not in ("auto", "starttls", "ssl", "none"):
            raise ValueError("expected one of auto, starttls, ssl, none")
        return mode

    @field_validator("provider_costs_file", mode="before")
    @classmethod
    def _provider_costs_file(cls, v):
        if v is None or not str(v).strip():
            return None
        from ops.core import costs

        path = Path(str(v).strip()).expanduser()
        costs.load(path)  # ValueError: one line naming the file, line and key
        return path

    # -- derived ---------------------------------------------------------
    @property
    def admin_ids(self) -> frozenset[int]:
        """TELEGRAM_ADMIN_IDS as a set of Telegram user ids (empty: nobody may change anything)."""
        return parse_admin_ids(self.telegram_admin_ids) if self.telegram_admin_ids else frozenset()

    @property
    def fx(self):
        """The founder's conversion rates (ops.core.fx.FxRates), or None when OPSBENCH_FX_RATES is not set."""
        if self.fx_rates is None:
            return None
        from ops.core import fx

        return fx.load(self.fx_rates)

    @property
    def commission(self):
        """The founder's commission file (ops.core.commission.Commission), or None when OPSBENCH_COMMISSION is not set."""
        if self.commission_file is None:
            return None
        from ops.core import commission

        return commission.load(self.commission_file)

    @property
    def provider_costs(self):
        """The founder's provider price list (ops.core.costs.Costs), or None when OPSBENCH_PROVIDER_COSTS is not set."""
        if self.provider_costs_file is None:
            return None
        from ops.core import costs

        return costs.load(self.provider_costs_file)

    @property
    def health_targets(self) -> list[tuple[str, str]]:
        """OPSBENCH_HEALTH_URLS as (name, url) pairs, in order."""
        return parse_health_urls(self.health_urls) if self.health_urls else []

    @property
    def escalation_delay(self) -> dt.timedelta | None:
        """OPSBENCH_ESCALATE_AFTER as a duration (None: escalation off)."""
        return None if self.escalate_after == "0" else parse_duration(self.escalate_after)

    @property
    def email_recipients(self) -> list[str]:
        return parse_addresses(self.email_to) if self.email_to else []

    @property
    def email_sender(self) -> str:
        return self.email_from or "opsbench@localhost"

    @property
    def uses_embedded(self) -> bool:
        return self.database_url is None

    @property
    def tz(self) -> ZoneInfo:
        return parse_zone(self.report_tz)

    @property
    def quiet_hours_window(self) -> tuple[dt.time, dt.time] | None:
        return _parse_quiet_hours(self.quiet_hours) if self.quiet_hours else None


_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def parse_health_urls(value: str) -> list[tuple[str, str]]:
    """"api=https://a/health, https://b/health" -> [("api", ...), ("b", ...)] (name defaults to the host).

    Raises ValueError (without echoing the value: a URL may carry a token) when
    an item is empty, not an http(s) URL with a host, has a bad name, or a name repeats.
    """
    from urllib.parse import urlsplit

    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            raise ValueError(f"item {n} is empty: expected comma-separated URL or name=URL")
        name, sep, url = item.partition("=")
        if not sep or name.lower().startswith(("http://", "https://")):
            name, url = "", item
        name, url = name.strip(), url.strip()
        try:
            host = urlsplit(url).hostname if url.lower().startswith(("http://", "https://")) else None
        except ValueError:
            host = None
        if not host:
            raise ValueError(f"item {n}: expected an http:// or https:// URL, optionally as name=URL")
        name = name or host
        if not _TARGET_NAME.match(name):
            raise ValueError(f"item {n}: the name must be letters, digits, '_', '.' or '-'")
        if name in seen:
            raise ValueError(f"item {n}: the name {name!r} is used twice; give each target its own name")
        seen.add(name)
        out.append((name, url))
    return out


def parse_addresses(value: str) -> list[str]:
    """Comma-separated email addresses (name@domain each)."""
    out = [a.strip() for a in value.split(",") if a.strip()]
    for a in out:
        local, at, domain = a.rpartition("@")
        if not at or not local or "." not in domain.strip(".") or any(c.isspace() or c in "<>,;" for c in a):
            raise ValueError("expected comma-separated addresses such as ops@example.com")
    if not out:
        raise ValueError("expected comma-separated addresses such as ops@example.com")
    return out


def _parse_quiet_hours(value: str) -> tuple[dt.time, dt.time] | None:
    """"23:00-07:00" -> (23:00, 07:00); None when malformed or empty."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not m:
        return None
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        return None
    return dt.time(h1, m1), dt.time(h2, m2)


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = first.get("loc") or ("?",)
    name = str(loc[0])
    field = Settings.model_fields.get(name)
    var = (field.alias if field and field.alias else name).upper()
    msg = str(first.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    # never echo the offending value: it may be a secret
    return f"{var}: {msg}"


def load_settings(**overrides) -> Settings:
    """Read settings now. Raises SettingsError with a one-line message."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise SettingsError(_one_line(err)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()

