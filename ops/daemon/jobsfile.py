"""Where the jobs file is, and how an override file merges over the shipped one.

The defaults ship as `jobs/jobs.toml`; OPSBENCH_JOBS_FILE names another file, which
either stands alone (complete job definitions) or is merged key by key over the
defaults (`extends = "defaults"`, or a file that changes a shipped job without a
`callable`). Every key remembers where it came from, for `opsbench jobs --explain`.
Reading a job's keys into a JobSpec is `ops.daemon.jobspec`'s part.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ops.core.errors import JobSpecError
from ops.core.settings import Settings
from ops.daemon.health_urls import ORIGIN_ENV, add_health_urls

# the shipped jobs file sits beside the jobs it names; found by path, never imported
DEFAULT_JOBS_FILE = Path(__file__).resolve().parents[2] / "jobs" / "jobs.toml"

ORIGIN_DEFAULT = "default"
ORIGIN_OVERRIDE = "override file"
EXTENDS_KEY = "extends"

__all__ = ["DEFAULT_JOBS_FILE", "EXTENDS_KEY", "ORIGIN_DEFAULT", "ORIGIN_ENV", "ORIGIN_OVERRIDE", "explain",
           "jobs_data", "jobs_file", "merge_jobs"]


def jobs_file(settings: Settings) -> Path:
    return Path(settings.jobs_file) if settings.jobs_file else DEFAULT_JOBS_FILE


def _read_toml(path: Path) -> dict[str, Any]:
    where = path.name if path == DEFAULT_JOBS_FILE else str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobSpecError(f"OPSBENCH_JOBS_FILE: {path} does not exist") from None
    except OSError as e:
        raise JobSpecError(f"OPSBENCH_JOBS_FILE: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise JobSpecError(f"{where}: not valid TOML: {e}") from None


def _leaves(table: dict[str, Any], prefix: str, origin: str, origins: dict[str, str]) -> None:
    for key, value in table.items():
        if isinstance(value, dict) and key in ("args", "cron") and prefix.count(".") == 0:
            _leaves(value, f"{prefix}.{key}", origin, origins)
        else:
            origins[f"{prefix}.{key}"] = origin


def merge_jobs(defaults: dict[str, Any], override: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The shipped jobs with `override` merged key by key: (data, origin of every job key).

    `[jobs.<id>]` of a default job changes only the keys it names (`args` key
    by key; a list such as `args.targets` is replaced whole); an id the
    defaults lack is a new job (it needs its own `callable`). Origins are
    keyed "<id>.<key>" and "<id>.args.<key>": ORIGIN_DEFAULT or ORIGIN_OVERRIDE.
    """
    unknown = sorted(set(override) - {"jobs", EXTENDS_KEY})
    if unknown:
        raise JobSpecError(f"{where}: unknown top-level key {unknown[0]!r} in an override file "
                           "(expected extends = \"defaults\" and [jobs.<id>] tables)")
    jobs_over = override.get("jobs", {})
    if not isinstance(jobs_over, dict):
        raise JobSpecError(f"{where}: 'jobs' must be a table of [jobs.<id>] tables")
    base = {k: v for k, v in defaults.get("jobs", {}).items()}
    origins: dict[str, str] = {}
    for job_id, body in base.items():
        _leaves(body, job_id, ORIGIN_DEFAULT, origins)
    merged: dict[str, Any] = {}
    for job_id, body in base.items():
        merged[job_id] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    for job_id, body in jobs_over.items():
        if not isinstance(body, dict):
            raise JobSpecError(f"{where}: job {job_id!r}: expected a table of settings")
        target = merged.setdefault(job_id, {})
        for key, value in body.items():
            if key == "args" and isinstance(value, dict) and isinstance(target.get("args"), dict):
                target["args"] = {**target["args"], **value}
                _leaves(value, f"{job_id}.args", ORIGIN_OVERRIDE, origins)
                continue
            if key in ("cron", "interval"):       # one schedule: naming one drops the default's other
                for other in ("cron", "interval"):
                    if other != key and other in target:
                        del target[other]
                        for o in [o for o in origins if o == f"{job_id}.{other}" or o.startswith(f"{job_id}.{other}.")]:
                            del origins[o]
            target[key] = value
            for o in [o for o in origins if o.startswith(f"{job_id}.{key}.")]:
                del origins[o]
            origins[f"{job_id}.{key}"] = ORIGIN_OVERRIDE
    return {"jobs": merged}, origins


def jobs_data(settings: Settings, path: Path | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The jobs file's TOML as the loader sees it, and where each job key came from.

    OPSBENCH_JOBS_FILE is an override file, merged key by key over the
    shipped jobs/jobs.toml (`merge_jobs`), when it says so (top-level
    `extends = "defaults"`) or when it is partial: it names a shipped job
    without a `callable`, which only makes sense as a change to that job.
    A file of complete job definitions without the marker stands alone, as
    it always did (a copy of the defaults with a job deleted keeps that job
    deleted). OPSBENCH_HEALTH_URLS then adds targets to the http_probes jobs.
    """
    path = Path(path) if path else jobs_file(settings)
    where = path.name if path == DEFAULT_JOBS_FILE else str(path)
    data = _read_toml(path)
    origins: dict[str, str] = {}
    if path != DEFAULT_JOBS_FILE and (EXTENDS_KEY in data or _is_partial(data)):
        if data.setdefault(EXTENDS_KEY, "defaults") != "defaults":
            raise JobSpecError(f"{where}: extends: expected \"defaults\" (the shipped jobs/jobs.toml)")
        data, origins = merge_jobs(_read_toml(DEFAULT_JOBS_FILE), data, where)
    else:
        origin = ORIGIN_DEFAULT if path == DEFAULT_JOBS_FILE else ORIGIN_OVERRIDE
        jobs_table = data.get("jobs", {})
        if isinstance(jobs_table, dict):
            for job_id, body in jobs_table.items():
                if isinstance(body, dict):
                    _leaves(body, job_id, origin, origins)
    add_health_urls(data, settings, origins)
    return data, origins


def _is_partial(data: dict[str, Any]) -> bool:
    """A jobs file that changes a shipped job without restating it (no `callable`)."""
    jobs_table = data.get("jobs")
    if not isinstance(jobs_table, dict):
        return False
    shipped = _read_toml(DEFAULT_JOBS_FILE).get("jobs", {})
    return any(isinstance(body, dict) and job_id in shipped and "callable" not in body
               for job_id, body in jobs_table.items())


def explain(settings: Settings) -> list[tuple[str, str, Any, str]]:
    """(job, key, value, origin) for every value of every [jobs.<id>] table, for `opsbench jobs --explain`."""
    data, origins = jobs_data(settings)
    rows: list[tuple[str, str, Any, str]] = []
    for job_id, body in data.get("jobs", {}).items():
        if not isinstance(body, dict):
            continue
        for key, value in body.items():
            if key == "args" and isinstance(value, dict):
                for akey, avalue in value.items():
                    if akey == "targets" and isinstance(avalue, list):
                        for t in avalue:
                            name = t.get("name") if isinstance(t, dict) else None
                            origin = origins.get(f"{job_id}.args.targets[{name}]") or origins.get(
                                f"{job_id}.args.targets", ORIGIN_DEFAULT)
                            rows.append((job_id, f"args.targets[{name or '?'}]", t.get("url") if isinstance(t, dict) else t, origin))
                        if not avalue:
                            rows.append((job_id, "args.targets", [], origins.get(f"{job_id}.args.targets", ORIGIN_DEFAULT)))
                        continue
                    rows.append((job_id, f"args.{akey}", avalue,
                                 origins.get(f"{job_id}.args.{akey}", ORIGIN_DEFAULT)))
                continue
            rows.append((job_id, key, value, origins.get(f"{job_id}.{key}", ORIGIN_DEFAULT)))
    return rows
