"""HTTP probe: the endpoints the jobs file (and OPSBENCH_HTTP_TARGETS) names.

`http_probes(ctx)` probes every target in `ctx.args["targets"]` (a list of
tables in the jobs file) concurrently: one cycle of 100 endpoints takes about as
long as the slowest one, not the sum. Checks status, latency, the body
(`expect_json`, `all_true`) and the TLS certificate's expiry.

Every sample goes to the state store (`opsbench.probe_samples`) for uptime and
latency history; a state store that cannot be written never hides a finding.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import httpx

from jobs import args as read
from jobs.args import JobArgError
from jobs.probes.common import record_state
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.redact import redact

log = logging.getLogger("opsbench.jobs.probes")

# Rule names.
HEALTH_FAILING = "health_check_failing"
HTTP_LATENCY = "http_latency"
TLS_EXPIRY = "tls_cert_expiry"

_MAX_BODY = 1_000_000  # a health body larger than this is not a health body


# -- HTTP probe configuration -------------------------------------------------------

@dataclass(frozen=True)
class HttpProbe:
    """One endpoint to probe, as configured in the jobs file."""

    name: str
    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    # dotted path -> expected value, or a list of accepted values: {"status": ["ok", "healthy"]}
    expect_json: dict[str, Any] = field(default_factory=dict, hash=False)
    # dotted paths whose every entry must be true: ["checks"] (the backend's /health shape)
    all_true: tuple[str, ...] = ()
    timeout_s: float = 10.0
    latency_warn_ms: float = 1000.0      # p95 above 1 s: worth a look
    latency_critical_ms: float = 2000.0  # p95 above 2 s: users feel it
    tls_warn_days: float = 14.0
    tls_critical_days: float = 3.0
    verify: bool = True                  # verify the certificate chain and host name
    ca_file: str | None = None           # extra trust anchor (a private CA or a self-signed cert)
    headers: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def is_https(self) -> bool:
        return self.url.lower().startswith("https://")

    @property
    def safe_url(self) -> str:
        """The URL without query string or credentials: fit for an alert."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


_PROBE_KEYS = set(HttpProbe.__dataclass_fields__)


_HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _probe_settings(merged: dict[str, Any], at: Callable[[str], str]) -> dict[str, Any]:
    """Every setting of a target except name and url, checked; `at(key)` names the key in errors."""
    def number(key: str, default: float, positive: bool = False) -> float:
        return read.number(merged.get(key, default), at(key), positive=positive)

    method = str(merged.get("method", "GET")).upper()
    if method not in _HTTP_METHODS:
        raise JobArgError(f"{at('method')}: expected one of {', '.join(sorted(_HTTP_METHODS))}")
    status = merged.get("expect_status", 200)
    statuses = status if isinstance(status, list) else [status]
    if not statuses or any(isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599 for s in statuses):
        raise JobArgError(f"{at('expect_status')}: expected an HTTP status such as 200, or a list of them")
    expect_json = merged.get("expect_json") or {}
    if not isinstance(expect_json, dict):
        raise JobArgError(f"{at('expect_json')}: expected a table of path = value, e.g. {{ status = \"ok\" }}")
    all_true = merged.get("all_true") or []
    if not isinstance(all_true, list) or not all(isinstance(p, str) for p in all_true):
        raise JobArgError(f"{at('all_true')}: expected a list of dotted paths, e.g. [\"checks\"]")
    verify = merged.get("verify", True)
    if not isinstance(verify, bool):
        raise JobArgError(f"{at('verify')}: expected true or false")
    ca_file = merged.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        raise JobArgError(f"{at('ca_file')}: expected the path of a readable CA certificate file")
    headers = merged.get("headers") or {}
    if not isinstance(headers, dict):
        raise JobArgError(f"{at('headers')}: expected a table of header = value")
    out = dict(
        method=method,
        expect_status=tuple(statuses),
        expect_json=dict(expect_json),
        all_true=tuple(all_true),
        timeout_s=number("timeout_s", 10.0, positive=True),
        latency_warn_ms=number("latency_warn_ms", 1000.0),
        latency_critical_ms=number("latency_critical_ms", 2000.0),
        tls_warn_days=number("tls_warn_days", 14.0),
        tls_critical_days=number("tls_critical_days", 3.0),
        verify=verify,
        ca_file=ca_file or None,
        headers={str(k): str(v) for k, v in headers.items()},
    )
    if out["latency_critical_ms"] < out["latency_warn_ms"]:
        raise JobArgError(f"{at('latency_critical_ms')}: must be >= latency_warn_ms")
    return out


def parse_targets(raw: Any, defaults: dict[str, Any] | None = None) -> list[HttpProbe]:
    """`args.targets` (a list of tables) -> probes. Raises JobArgError naming target and key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise JobArgError("args.targets: expected a list of tables ([[jobs.<id>.args.targets]])")
    defaults = {k: v for k, v in (defaults or {}).items() if k in _PROBE_KEYS and k not in ("name", "url")}
    out: list[HttpProbe] = []
    seen: set[str] = set()
    for n, item in enumerate(raw, start=1):
        where = f"args.targets #{n}"
        if not isinstance(item, dict):
            raise JobArgError(f"{where}: expected a table with at least url")
        merged = {**defaults, **item}
        unknown = sorted(set(merged) - _PROBE_KEYS)
        if unknown:
            raise JobArgError(f"{where}: unknown key {unknown[0]!r} (expected one of: {', '.join(sorted(_PROBE_KEYS))})")
        url = merged.get("url")
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")) or not urlsplit(url).hostname:
            raise JobArgError(f"{where}: key 'url': expected an http:// or https:// URL")
        name = str(merged.get("name") or urlsplit(url).hostname or f"target{n}")
        where = f"args.targets {name!r}"
        if name in seen:
            raise JobArgError(f"{where}: name used twice; give each target its own name")
        seen.add(name)
        fields = _probe_settings(merged, lambda key, where=where: f"{where}: key {key!r}")
        out.append(HttpProbe(name=name, url=url, **fields))
    return out


_HTTP_ARGS = (_PROBE_KEYS - {"name", "url"}) | {"targets"}


def validate_http_args(args: dict[str, Any]) -> None:
    """For the jobs-file loader: `targets` and the defaults for every target, checked."""
    unknown = sorted(set(args) - _HTTP_ARGS)
    if unknown:
        raise JobArgError(f"args.{unknown[0]}: unknown key (expected targets or a default for every target: "
                               f"{', '.join(sorted(_HTTP_ARGS - {'targets'}))})")
    defaults = {k: v for k, v in args.items() if k != "targets"}
    _probe_settings(defaults, lambda key: f"args.{key}")
    parse_targets(args.get("targets"), defaults)


# -- HTTP probe execution -------------------------------------------------------------

@dataclass
class ProbeOutcome:
    probe: HttpProbe
    ok: bool = False
    status_code: int | None = None
    latency_ms: float | None = None
    tls_days_left: float | None = None
    tls_not_after: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


_MISSING = object()


def _lookup(body: Any, path: str) -> Any:
    cur = body
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def check_body(body: Any, expect_json: dict[str, Any], all_true: Iterable[str]) -> list[str]:
    """Problems with a decoded JSON body against the expectations (empty = fine)."""
    problems: list[str] = []
    for path, expected in expect_json.items():
        actual = _lookup(body, path)
        accepted = expected if isinstance(expected, list) else [expected]
        if actual is _MISSING:
            problems.append(f"{path} missing")
        elif actual not in accepted:
            want = " or ".join(repr(a) for a in accepted)
            problems.append(f"{path} is {str(actual)[:60]!r}, expected {want}")
    for path in all_true:
        entries = _lookup(body, path)
        if isinstance(entries, dict):
            bad = sorted(k for k, v in entries.items() if v is not True)
            problems += [f"{path}.{k} is {str(entries[k])[:40]}" for k in bad]
        elif isinstance(entries, list):
            bad_idx = [i for i, v in enumerate(entries) if v is not True]
            problems += [f"{path}[{i}] is not true" for i in bad_idx]
        else:
            problems.append(f"{path} missing" if entries is _MISSING else f"{path} is not a table of checks")
    return problems


@lru_cache(maxsize=32)
def _ssl_context(verify: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    if not verify:
        return False
    if ca_file is None:
        return True  # httpx's default: certifi's trust store
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca_file)
    return ctx


def _tls_days_left(response: httpx.Response, now: dt.datetime) -> tuple[float | None, str | None]:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None, None
    # A verified peer's certificate is decoded by the ssl module; with verify
    # off the stdlib only hands out DER bytes, so days-left is unknown then.
    cert = ssl_object.getpeercert()
    if not cert or "notAfter" not in cert:
        return None, None
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.timezone.utc)
    return (not_after - now).total_seconds() / 86400.0, not_after.isoformat()


async def _probe_one(client: httpx.AsyncClient, probe: HttpProbe, now: dt.datetime) -> ProbeOutcome:
    out = ProbeOutcome(probe)
    started = time.perf_counter()

    async def fetch() -> None:
        async with client.stream(probe.method, probe.url, headers=probe.headers,
                                 timeout=probe.timeout_s) as resp:
            out.status_code = resp.status_code
            if probe.is_https:
                out.tls_days_left, out.tls_not_after = _tls_days_left(resp, now)
            body = b""
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > _MAX_BODY:
                    break
            out.latency_ms = (time.perf_counter() - started) * 1000.0
            if resp.status_code not in probe.expect_status:
                want = " or ".join(str(s) for s in probe.expect_status)
                out.problems.append(f"HTTP {resp.status_code}, expected {want}")
            if probe.expect_json or probe.all_true:
                try:
                    decoded = json.loads(body)
                except ValueError:
                    out.problems.append("body is not valid JSON")
                else:
                    out.problems += check_body(decoded, probe.expect_json, probe.all_true)

    try:
        # the whole exchange, not each phase, must fit in the probe's timeout
        await asyncio.wait_for(fetch(), timeout=probe.timeout_s)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        out.problems.append(f"no answer within {probe.timeout_s:g} s")
    except httpx.ConnectError as exc:
        reason = "TLS verification failed" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else "connection failed"
        out.problems.append(f"{reason}: {redact(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}")
    except httpx.HTTPError as exc:
        out.problems.append(f"{type(exc).__name__}: {redact(exc).splitlines()[0][:160] if str(exc) else ''}".rstrip(": "))
    out.ok = not out.problems
    return out


async def run_http_probes(probes: list[HttpProbe], now: dt.datetime) -> list[ProbeOutcome]:
    """Probe all targets at once. One client per distinct TLS setting shares connections."""
    groups: dict[tuple[bool, str | None], list[int]] = {}
    for i, p in enumerate(probes):
        groups.setdefault((p.verify, p.ca_file), []).append(i)
    clients: dict[tuple[bool, str | None], httpx.AsyncClient] = {}
    try:
        for key, idx in groups.items():
            clients[key] = httpx.AsyncClient(
                verify=_ssl_context(*key),
                follow_redirects=False,  # a health check that redirects is worth seeing as such
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=len(idx)),
                headers={"User-Agent": "opsbench-probe"},
            )
        tasks = [_probe_one(clients[(p.verify, p.ca_file)], p, now) for p in probes]
        return list(await asyncio.gather(*tasks))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)


def _run_coroutine(coro):
    """asyncio.run, also from a thread that already runs a loop (a notebook kernel)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=runner, name="opsbench-probes")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def http_findings(outcomes: list[ProbeOutcome], command: str | None) -> list[Finding]:
    findings: list[Finding] = []
    for o in outcomes:
        p = o.probe
        labels = {"probe": p.name}
        row = {"url": p.safe_url, "status": o.status_code,
               "latency_ms": round(o.latency_ms, 1) if o.latency_ms is not None else None}
        if not o.ok:
            findings.append(Finding(
                rule=HEALTH_FAILING, severity=Severity.critical, labels=labels,
                summary=f"{p.name} unhealthy: {o.error}",
                details=f"{p.method} {p.safe_url}",
                evidence=[{**row, "problem": prob} for prob in o.problems], evidence_count=len(o.problems),
                command=command,
            ))
        if o.latency_ms is not None and o.latency_ms > p.latency_warn_ms:
            critical = o.latency_ms > p.latency_critical_ms
            limit = p.latency_critical_ms if critical else p.latency_warn_ms
            findings.append(Finding(
                rule=HTTP_LATENCY, severity=Severity.critical if critical else Severity.warning, labels=labels,
                summary=f"{p.name} answered in {o.latency_ms:.0f} ms (limit {limit:.0f} ms)",
                details=f"{p.method} {p.safe_url}", evidence=[row], evidence_count=1, command=command,
            ))
        if o.tls_days_left is not None and o.tls_days_left < p.tls_warn_days:
            critical = o.tls_days_left < p.tls_critical_days
            what = "has expired" if o.tls_days_left <= 0 else f"expires in {o.tls_days_left:.1f} days"
            findings.append(Finding(
                rule=TLS_EXPIRY, severity=Severity.critical if critical else Severity.warning, labels=labels,
                summary=f"{p.name}: TLS certificate {what}",
                details=f"{p.safe_url} notAfter {o.tls_not_after}",
                evidence=[{"url": p.safe_url, "not_after": o.tls_not_after, "days_left": round(o.tls_days_left, 2)}],
                evidence_count=1, command=command,
            ))
    return findings


def http_probes(ctx: JobContext) -> JobResult:
    """Job: probe every configured HTTP endpoint concurrently.

    args: targets (list of tables: name, url, method, expect_status, expect_json,
    all_true, timeout_s, latency_warn_ms, latency_critical_ms, tls_warn_days,
    tls_critical_days, verify, ca_file, headers); every other key of args is a
    default for all targets (e.g. timeout_s = 5).
    """
    defaults = {k: v for k, v in ctx.args.items() if k != "targets"}
    probes = parse_targets(ctx.args.get("targets"), defaults)
    if not probes:
        return JobResult(status="skipped", summary="no HTTP probe targets configured (args.targets)")
    now = ctx.now()
    started = time.perf_counter()
    outcomes = _run_coroutine(run_http_probes(probes, now))
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    command = f"opsbench run {ctx.job_id}"
    findings = http_findings(outcomes, command)

    record_state(ctx, "insert_sample", (
        {"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id, "kind": "http", "probe": o.probe.name,
         "ok": o.ok, "status_code": o.status_code, "latency_ms": o.latency_ms,
         "tls_days_left": o.tls_days_left, "error": o.error[:500] if o.error else None}
        for o in outcomes
    ))
    rules = {HEALTH_FAILING, HTTP_LATENCY}
    if any(p.is_https for p in probes):
        rules.add(TLS_EXPIRY)
    up = sum(o.ok for o in outcomes)
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    metrics = {"targets": float(len(outcomes)), "healthy": float(up), "cycle_ms": elapsed_ms}
    if latencies:
        metrics["slowest_ms"] = max(latencies)
    return JobResult(
        status="ok",
        summary=f"{up}/{len(outcomes)} endpoints healthy in {elapsed_ms:.0f} ms",
        metrics=metrics, findings=findings, rules=rules,
    )


ARG_VALIDATORS = {"http_probes": validate_http_args}
