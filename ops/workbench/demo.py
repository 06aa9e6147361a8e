"""`opsbench demo`: the whole system, once, on demo data.

1. The embedded PostgreSQL, seeded when empty (or DATABASE_URL when set).
2. A stand-in for the backend's /health endpoint on 127.0.0.1 with one
   failing check (`ops.workbench.demo_backend`); the HTTP probe is pointed at it.
3. Every job of the jobs file, once, through the runner - so each run is in
   the job history and its findings go through the alert manager - in
   dependency order: probes first (root causes such as an unreachable
   database must be known before the checks that depend on them), then the
   metric probes, reconciliation, cleanup and reviews, then the reports
   (which read the alerts, failed runs and cleanup volumes just recorded).
4. The outbox is drained by the `drain_outbox` job after the checks (the
   alert messages) and after the reports (the digest and its charts):
   printed by the console channel, or sent when Telegram is configured.
5. The HTML report and the rendered notebooks under `$OPSBENCH_HOME/out/`.

Jobs run on the real clock: their history is true. Only the reports pick
their window from the data: on demo data generated days ago they cover its
last whole day (`ops.reports.figures.last_complete_day`), so nothing comes out empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TextIO

from ops.core.clock import utc_now
from ops.core.settings import Settings
from ops.daemon.jobspec import JobSpec

log = logging.getLogger("opsbench.demo")

HTTP_PROBE = "jobs.probes:http_probes"
DRAIN = "jobs.builtin:drain_outbox"
REPORTS_MODULE = "jobs.reports"
# Stage of a job by its callable (module, or module:function); unknown jobs run with the checks.
STAGES: tuple[tuple[str, int], ...] = (
    ("jobs.probes", 0),
    ("jobs.rollups", 1),
    ("jobs.metrics", 2),
    ("jobs.reconcile", 3),
    ("jobs.cleanup", 4),
    ("jobs.reviews", 5),
    ("jobs.builtin:heartbeat", 6),
    (REPORTS_MODULE, 8),
    (DRAIN, 9),
)
CHECK_STAGE_DEFAULT = 5


def command_name() -> str:
    """How the founder types opsbench in the shell that ran the demo.

    `make demo` runs `.venv/bin/opsbench` without activating the venv, so a bare
    `opsbench` is usually not on the PATH: say `opsbench` only when the PATH finds
    this very install, else the venv's script (relative to the current directory
    when it is under it: `.venv/bin/opsbench`, as the README spells it).
    """
    import os
    import shutil

    script = Path(sys.executable).parent / "opsbench"   # not resolved: the venv's bin, not the base Python's
    found = shutil.which("opsbench")
    if found and script.exists() and os.path.samefile(found, script):
        return "opsbench"
    if not script.exists():
        return f"{sys.executable} -m ops"
    local = Path.cwd() / ".venv" / "bin" / "opsbench"   # the README's spelling, when it is this very script
    if local.exists() and os.path.samefile(local, script):
        return ".venv/bin/opsbench"
    try:
        return str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def next_steps(cmd: str, *, telegram: bool, embedded: bool) -> list[str]:
    """What to type after the demo, spelled so that it works in the shell that ran `make demo`."""
    rows = [(f"{cmd} daemon", "run every job on its schedule (Ctrl-C stops it cleanly)"),
            ("make lab", "explore the data in JupyterLab (notebooks/)"),
            (f"{cmd} report daily", "preview the digest; --send delivers it, --out writes HTML"),
            (f"{cmd} jobs", "schedules, next run and last result of every job")]
    if embedded:
        rows.append((f"{cmd} db down", "stop the embedded PostgreSQL (the demo leaves it running; "
                                       "any command starts it again)"))
    pad = max(len(c) for c, _ in rows) + 3
    lines = [f"  {c:<{pad}}{why}" for c, why in rows]
    if cmd != "opsbench":
        lines.append(f"  (`source {Path(cmd).parent}/activate` once per shell puts `opsbench` on the PATH, "
                     "as the README spells it)")
    if not telegram:
        lines.append("  export TELEGRAM_BOT_TOKEN=... TELEGRAM_CHAT_ID=...   to deliver to Telegram instead")
    return lines


def stage(spec: JobSpec) -> int:
    for prefix, n in STAGES:
        if spec.callable == prefix or spec.callable.split(":", 1)[0] == prefix:
            return n
    return CHECK_STAGE_DEFAULT


def ordered(specs: dict[str, JobSpec]) -> list[JobSpec]:
    """Jobs in dependency order (stable within a stage: jobs-file order)."""
    return sorted(specs.values(), key=stage)


def demo_specs(all_specs: list[JobSpec], health_url: str, tz: str) -> tuple[dict[str, JobSpec], list[str]]:
    """The enabled jobs, with every HTTP probe pointed at the stand-in (one is added if none exists).

    `tz` (the settings' REPORT_TZ) is the added probe's zone when there is no job to take it from.

    Returns (specs by id, ids of disabled jobs left out).
    """
    target = {"name": "backend", "url": health_url, "expect_json": {"status": "healthy"}, "all_true": ["checks"],
              "timeout_s": 5.0}
    specs: dict[str, JobSpec] = {}
    disabled: list[str] = []
    for spec in all_specs:
        if spec.callable == HTTP_PROBE:
            # the demo probes the stand-in even where the jobs file names production URLs
            spec = dataclasses.replace(spec, enabled=True, args={**spec.args, "targets": [target]})
        if not spec.enabled:
            disabled.append(spec.id)
            continue
        specs[spec.id] = spec
    if not any(s.callable == HTTP_PROBE for s in specs.values()):
        probe = JobSpec(id="health_probe", callable=HTTP_PROBE, timezone=all_specs[0].timezone if all_specs else tz,
                        interval_s=60.0, timeout_s=30.0, catch_up=False, args={"targets": [target]},
                        description="demo: the backend /health stand-in")
        specs = {probe.id: probe, **specs}
    return specs, disabled


@dataclasses.dataclass
class DemoResult:
    runs: list[Any] = dataclasses.field(default_factory=list)      # ops.daemon.runner.RunRecord
    report_html: Path | None = None
    notebooks: list[Any] = dataclasses.field(default_factory=list)  # ops.workbench.notebooks.Rendered
    delivered: int = 0


def render_notebooks(out_dir: Path, workers: int = 2, timeout: int = 300) -> list:
    """Execute every notebook into `out_dir` (two kernels at a time); failures are reported, not raised."""
    from ops.workbench.notebooks import notebook_paths, render, write_index

    paths = notebook_paths()
    # kernel clients closed from worker threads warn that they "could not destroy zmq context"
    # (harmless: the context goes with the process); keep that out of the demo's output
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # one index for all of them, written once they are all done: a thread each writing its own
        # index.html left the last thread's single entry
        results = list(pool.map(lambda p: render([p], out_dir, timeout=timeout, index=False)[0], paths))
    write_index(Path(out_dir), results)
    return results


class Demo:
    """One demo run. `out` is where the story is printed."""

    def __init__(self, settings: Settings, *, out: TextIO | None = None, notebooks: bool = True,
                 printer: Callable[[str], None] | None = None):
        self.settings = settings
        self.out = out or sys.stdout
        self.notebooks = notebooks
        self._print = printer or (lambda text: print(text, file=self.out, flush=True))

    def say(self, text: str = "") -> None:
        self._print(text)

    def heading(self, text: str) -> None:
        self.say("")
        self.say(f"━━ {text} " + "━" * max(4, 66 - len(text)))

    # -- steps ---------------------------------------------------------------------
    def run(self) -> DemoResult:
        from ops.alerting import manager as alerts
        from ops.alerting import tally
        from ops.daemon.jobspec import load_jobs
        from ops.daemon.runner import Runner
        from ops.data import db
        from ops.data.state import migrate
        from ops.reports import figures as report
        from ops.workbench.demo_backend import HealthStandIn

        s = self.settings
        result = DemoResult()
        state = db.engine("state", s)
        migrate(state)
        day = report.last_complete_day(s)
        yesterday = utc_now().astimezone(s.tz).date() - dt.timedelta(days=1)
        if day < yesterday:
            self.say(f"the demo data ends on {day + dt.timedelta(days=1)}: reports cover its last whole day, {day} "
                     f"(`opsbench db seed --force` makes fresh data); jobs run on today's clock")

        with HealthStandIn() as health:
            specs, disabled = demo_specs(load_jobs(s), health.url, s.report_tz)
            self.say(f"backend /health stand-in: {health.url} (one check failing: externalApi)")
            order = ordered(specs)
            runner = Runner(s, specs, state_engine=state)
            telegram = s.telegram_bot_token is not None
            where = f"Telegram chat {s.telegram_chat_id}" if telegram else "the console (no TELEGRAM_BOT_TOKEN)"

            self.heading("Jobs, once each, in dependency order")
            checks = [sp for sp in order if stage(sp) < 8]
            reports = [sp for sp in order if sp.callable.split(":", 1)[0] == REPORTS_MODULE]
            drain = [sp for sp in order if sp.callable == DRAIN]
            for sp in checks:
                result.runs.append(self._run(runner, sp))
            if disabled:
                self.say(f"  (disabled in the jobs file, not run: {', '.join(disabled)})")

            self.heading(f"Alert messages, delivered to {where}")
            before = len(result.runs)
            for sp in drain:
                result.runs.append(self._run(runner, sp, quiet=True))
            sent = sum(int(r.metrics.get("sent", 0)) for r in result.runs[before:])
            result.delivered += sent
            firing = alerts.firing(state)
            if not sent:
                self.say("no new alert messages: alerts already firing are not announced again "
                         "(they repeat every few hours while they last)")
            count = tally.tally(firing)   # the count the digest, status, alerts and /status print
            self.say(f"alerts: {count.headline()}"
                     + (f"; {count.echo_sentence()}" if count.echo_sentence() else ""))
            cmd = command_name()
            self.say(f"  `{cmd} alerts` lists them, `{cmd} silence KEY --for 2h` mutes one")

            self.heading(f"Reports, delivered to {where}")
            for sp in reports:
                result.runs.append(self._run(runner, sp))
            before = len(result.runs)
            for sp in drain:
                result.runs.append(self._run(runner, sp, quiet=True))
            result.delivered += sum(int(r.metrics.get("sent", 0)) for r in result.runs[before:])

        self.heading(f"Files under {Path(s.home) / 'out'}")
        result.report_html = self._write_report(state)
        if self.notebooks:
            result.notebooks = self._render_notebooks()
        self.heading("Next steps")
        for line in next_steps(command_name(), telegram=bool(self.settings.telegram_bot_token),
                               embedded=self.settings.uses_embedded):
            self.say(line)
        return result

    def _run(self, runner, spec: JobSpec, quiet: bool = False):
        record = runner.run(spec.id, trigger="manual")
        if record is None:  # only with a leader gate, which the demo does not use
            return None
        if not quiet:
            mark = {"ok": "✓", "skipped": "–"}.get(record.status, "✗")
            findings = f", {len(record.findings)} finding(s)" if record.findings else ""
            summary = record.summary if len(record.summary) <= 150 else record.summary[:149] + "…"
            self.say(f"  {mark} {spec.id:<20} {record.status:<8} {record.duration_s:6.2f}s{findings}  {summary}")
        return record

    def _write_report(self, state) -> Path | None:
        from ops.data import db
        from ops.reports import figures as report
        from ops.reports import page as report_page

        out_dir = Path(self.settings.home) / "out"
        try:
            rep = report.build(db.analytics(self.settings), self.settings, "daily", state=state)
            path = report_page.write(rep, out_dir / f"report-daily-{rep.window.end.isoformat()}.html")
        except Exception as e:  # the rest of the demo still stands
            from ops.core.redact import redact

            self.say(f"  HTML report: FAILED: {type(e).__name__}: {redact(str(e))[:200]}")
            return None
        self.say(f"  {path}  (daily report, interactive charts)")
        return path

    def _render_notebooks(self) -> list:
        out_dir = Path(self.settings.home) / "out" / "notebooks"
        began = time.monotonic()
        results = render_notebooks(out_dir)
        for r in results:
            if r.ok:
                self.say(f"  {r.html}  ({r.seconds:.0f} s)")
            else:
                self.say(f"  notebook {r.name}: FAILED: {r.error}")
        self.say(f"  notebooks rendered in {time.monotonic() - began:.0f} s")
        self.say(f"  {out_dir / 'index.html'}  (index of all {len(results)} notebooks: open it in a browser)")
        return results
