"""Open local pages in real headless Chromium at a phone's width and report what went wrong.

One browser (Debian's /usr/bin/chromium, driven over the DevTools protocol by
choreographer, the library kaleido already uses) opens each page in its own
tab with a 390 x 844 mobile viewport and records:

* console errors (`console.error`, uncaught exceptions, the browser's own error log entries);
* failed requests (a file that is not there, a blocked or refused fetch, an HTTP status >= 400);
* the document's width (`scrollWidth` of the root element) against the viewport's, and the widest
  elements that stick out, so a failure says what to fix;
* how many plotly charts were drawn (a `.js-plotly-plot` with its `.main-svg` inside);
* optionally a full-page PNG screenshot, to look at.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

WIDTH, HEIGHT = 390, 844


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    path: Path
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    document_width: int = 0
    viewport_width: int = 0
    too_wide: list[str] = field(default_factory=list)    # the elements wider than the viewport
    charts: int = 0
    screenshot: Path | None = None

    @property
    def problems(self) -> list[str]:
        out = [f"console: {e}" for e in self.console_errors] + [f"request: {r}" for r in self.failed_requests]
        if self.document_width > self.viewport_width:
            out.append(f"document {self.document_width} px wide in a {self.viewport_width} px viewport; "
                       f"wide: {'; '.join(self.too_wide[:5])}")
        return out


_MEASURE = """(() => {
  const vw = %d;   // the phone's width: a mobile viewport grows to fit a page that is too wide
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 && r.width > 0) {
      const parent = el.parentElement;
      const pr = parent ? parent.getBoundingClientRect() : null;
      if (!pr || pr.right <= vw + 1) {   // the outermost element that sticks out, not all its children
        wide.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ?
          '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '') + ' ' + Math.round(r.right) + 'px');
      }
    }
  }
  return JSON.stringify({doc: document.documentElement.scrollWidth, vw: vw, inner: window.innerWidth,
                         charts: [...document.querySelectorAll('.js-plotly-plot')]
                           .filter(d => d.querySelector('.main-svg')).length, wide: wide.slice(0, 10)});
})()""" % WIDTH


async def _check(browser, path: Path, screenshot_dir: Path | None, settle_s: float, segment_px: int = 0) -> PageCheck:
    import json

    result = PageCheck(path)
    tab = await browser.create_tab("about:blank")
    session = tab.get_session()

    async def on_console(msg):
        p = msg.get("params", {})
        if p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            result.console_errors.append(args[:300])

    async def on_exception(msg):
        d = msg.get("params", {}).get("exceptionDetails", {})
        result.console_errors.append((d.get("exception", {}).get("description") or d.get("text", ""))[:300])

    async def on_log(msg):
        e = msg.get("params", {}).get("entry", {})
        if e.get("level") == "error":
            result.console_errors.append(f"{e.get('source')}: {e.get('text', '')[:250]} {e.get('url', '')}")

    urls: dict[str, str] = {}

    async def on_request(msg):
        p = msg.get("params", {})
        urls[p.get("requestId", "")] = p.get("request", {}).get("url", "")

    async def on_failed(msg):
        p = msg.get("params", {})
        result.failed_requests.append(f"{p.get('errorText')} {urls.get(p.get('requestId', ''), '')}")

    async def on_response(msg):
        r = msg.get("params", {}).get("response", {})
        if int(r.get("status") or 0) >= 400:
            result.failed_requests.append(f"HTTP {r.get('status')} {r.get('url')}")

    for event, cb in (("Runtime.consoleAPICalled", on_console), ("Runtime.exceptionThrown", on_exception),
                      ("Log.entryAdded", on_log), ("Network.requestWillBeSent", on_request),
                      ("Network.loadingFailed", on_failed), ("Network.responseReceived", on_response)):
        session.subscribe(event, cb)
    for domain in ("Runtime", "Log", "Network", "Page"):
        await session.send_command(f"{domain}.enable")
    await session.send_command("Emulation.setDeviceMetricsOverride",
                               params={"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 2, "mobile": True})
    loaded = session.subscribe_once("Page.loadEventFired")
    await session.send_command("Page.navigate", params={"url": path.resolve().as_uri()})
    await asyncio.wait_for(loaded, 60)
    await asyncio.sleep(settle_s)      # plotly draws after load; responsive charts resize once
    answer = await session.send_command("Runtime.evaluate", params={"expression": _MEASURE, "returnByValue": True})
    measured = json.loads(answer["result"]["result"]["value"])
    result.document_width, result.viewport_width = measured["doc"], measured["vw"]
    result.charts, result.too_wide = measured["charts"], measured["wide"]
    if screenshot_dir is not None:
        shot = await session.send_command("Page.captureScreenshot",
                                          params={"format": "png", "captureBeyondViewport": True})
        result.screenshot = screenshot_dir / f"{path.stem}.png"
        result.screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
        if segment_px:   # phone-screen-sized pieces, easier to look at than one long strip
            height = (await session.send_command("Runtime.evaluate", params={
                "expression": "document.documentElement.scrollHeight", "returnByValue": True}))
            height = int(height["result"]["result"]["value"])
            for k, top in enumerate(range(0, height, segment_px)):
                clip = {"x": 0, "y": top, "width": WIDTH, "height": min(segment_px, height - top), "scale": 1}
                piece = await session.send_command("Page.captureScreenshot", params={
                    "format": "png", "captureBeyondViewport": True, "clip": clip})
                (screenshot_dir / f"{path.stem}-{k}.png").write_bytes(base64.b64decode(piece["result"]["data"]))
    await browser.close_tab(tab.target_id)
    return result


def check_pages(paths: list[Path], *, screenshot_dir: Path | None = None, settle_s: float = 1.5,
                timeout_s: float = 240, segment_px: int = 0) -> list[PageCheck]:
    """Open each page in one headless Chromium at 390 px; a PageCheck per page, in order."""
    from choreographer import Browser

    async def run() -> list[PageCheck]:
        async with Browser(path=chromium(), headless=True) as browser:
            return [await _check(browser, p, screenshot_dir, settle_s, segment_px) for p in paths]

    return asyncio.run(asyncio.wait_for(run(), timeout_s))


# -- the finished-page inspection: every rendered page at a phone's and a laptop's width ------------------

PHONE, LAPTOP = 390, 1280
PY_LITERALS = ("True", "False", "None", "NaN", "NaT", "nan", "<NA>")

_INSPECT = r"""((vw, literals) => {
  const out = {doc: document.documentElement.scrollWidth, warnings: [], traces: [], overflow: [], literals: [],
               text: document.body.innerText, hints: document.querySelectorAll('.ob-scroll-hint').length};
  const scrollable = el => { const s = getComputedStyle(el); return s.overflowX === 'auto' || s.overflowX === 'scroll'; };
  // the output a kernel wrote to stderr, and the error outputs (a traceback)
  for (const el of document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]'))
    out.warnings.push(el.innerText.slice(0, 200));
  for (const el of document.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]'))
    out.traces.push(el.innerText.slice(0, 200));
  // every piece of text that reaches past the viewport's edge must sit in a box that scrolls sideways and
  // itself fits (a table in its output area), never cut off or widening the page
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.width === 0 || (r.right <= vw + 1 && r.left >= -1)) continue;
    let ok = false;
    for (let a = n.parentElement; a && a !== document.body; a = a.parentElement) {
      const ar = a.getBoundingClientRect();
      if (scrollable(a) && ar.right <= vw + 1 && ar.left >= -1 && a.scrollWidth > a.clientWidth) { ok = true; break; }
    }
    if (!ok && out.overflow.length < 10)
      out.overflow.push(`${n.parentElement.tagName.toLowerCase()} "${n.textContent.trim().slice(0, 60)}" ` +
                        `${Math.round(r.left)}..${Math.round(r.right)} px`);
  }
  for (const cell of document.querySelectorAll('td, th')) {
    const t = cell.innerText.trim();
    if (literals.includes(t) && out.literals.length < 10) out.literals.push(t);
  }
  return JSON.stringify(out);
})"""


@dataclass
class Inspection:
    path: Path
    width: int
    console_errors: list[str] = field(default_factory=list)
    document_width: int = 0
    warnings: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)
    literals: list[str] = field(default_factory=list)
    text: str = ""
    scroll_hints: int = 0
    screenshot: Path | None = None


async def _inspect(browser, path: Path, width: int, settle_s: float, shots: Path | None) -> Inspection:
    import json

    result = Inspection(path, width)
    tab = await browser.create_tab("about:blank")
    session = tab.get_session()

    async def on_exception(msg):
        d = msg.get("params", {}).get("exceptionDetails", {})
        result.console_errors.append((d.get("exception", {}).get("description") or d.get("text", ""))[:300])

    session.subscribe("Runtime.exceptionThrown", on_exception)
    for domain in ("Runtime", "Page"):
        await session.send_command(f"{domain}.enable")
    await session.send_command("Emulation.setDeviceMetricsOverride", params={
        "width": width, "height": 844 if width < 600 else 900, "deviceScaleFactor": 2 if width < 600 else 1,
        "mobile": width < 600})
    loaded = session.subscribe_once("Page.loadEventFired")
    await session.send_command("Page.navigate", params={"url": path.resolve().as_uri()})
    await asyncio.wait_for(loaded, 60)
    await asyncio.sleep(settle_s)
    expr = f"{_INSPECT}({width}, {json.dumps(list(PY_LITERALS))})"
    answer = await session.send_command("Runtime.evaluate", params={"expression": expr, "returnByValue": True})
    got = json.loads(answer["result"]["result"]["value"])
    result.document_width, result.warnings, result.traces = got["doc"], got["warnings"], got["traces"]
    result.overflow, result.literals, result.text = got["overflow"], got["literals"], got["text"]
    result.scroll_hints = got["hints"]
    if shots is not None:
        shot = await session.send_command("Page.captureScreenshot",
                                          params={"format": "png", "captureBeyondViewport": True})
        result.screenshot = shots / f"{path.stem}-{width}.png"
        result.screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
    await browser.close_tab(tab.target_id)
    return result


def inspect_pages(paths: list[Path], widths: tuple[int, ...] = (PHONE, LAPTOP), *, settle_s: float = 1.5,
                  timeout_s: float = 400, screenshot_dir: Path | None = None) -> list[Inspection]:
    """Open each page at each width in one headless Chromium; an Inspection per (page, width)."""
    from choreographer import Browser

    async def run() -> list[Inspection]:
        async with Browser(path=chromium(), headless=True) as browser:
            return [await _inspect(browser, p, w, settle_s, screenshot_dir) for p in paths for w in widths]

    return asyncio.run(asyncio.wait_for(run(), timeout_s))


# a path on this machine, a connection string: what a shared page must never show
LOCAL = re.compile(r"postgres(ql)?://|host=/|file://|(?<![\w.])/(tmp|home|root|Users|work|var|opt|srv|mnt|run)/")


def page_problems(page: "Inspection", forbidden: list[str]) -> list[str]:
    """What makes a page look unfinished: warning output, a traceback, text past the edge outside a
    scrolling box, a Python literal in a table, a local path or connection string, a forbidden text."""
    out = [f"warning output: {w}" for w in page.warnings] + [f"traceback: {t}" for t in page.traces]
    out += [f"script error: {e}" for e in page.console_errors]
    out += [f"past the edge, not in a scrolling box: {o}" for o in page.overflow]
    out += [f"Python literal in a table: {v}" for v in page.literals]
    if page.document_width > page.width:
        out.append(f"page {page.document_width} px wide")
    if re.search(r"Traceback \(most recent call last\)|\b\w+Warning\b:", page.text):
        out.append("a warning or traceback in the text")
    local = LOCAL.search(page.text)
    if local:
        out.append(f"local path: {page.text[max(0, local.start() - 40): local.end() + 40]!r}")
    out += [f"names {f!r}" for f in forbidden if f in page.text]
    return out
