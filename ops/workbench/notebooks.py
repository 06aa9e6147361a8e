"""Execute the notebooks and write them as self-contained HTML.

Each notebook runs top to bottom in a fresh kernel of *this* Python (the
project's venv), with the caller's environment, so it reads the same database
as the CLI. Parameters are injected the way papermill does it: a new cell
tagged `injected-parameters` right after the cell tagged `parameters`, so the
notebook's own defaults stay visible and are overridden in one place.

The HTML uses nbconvert's lab template without the require.js and MathJax
<script> tags it loads from a CDN: plotly.js is already inlined in the
notebook (see `ops.notebook`), so the file opens and draws offline.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from ops.core.clock import utc_now
from ops.core.errors import RenderError
from ops.core.settings import PLOTLYJS_SRC_ENV, PROJECT_ROOT

log = logging.getLogger("opsbench.notebooks")

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
# The order a reader meets them in an index: the dashboard first.
ORDER = ("overview", "revenue", "activity", "errors", "reconciliation")

# On a phone a wide table scrolls inside its output box (JupyterLab's CSS), but nothing says so: the
# columns past the edge look cut off. A box that scrolls sideways gets a line above it saying so and a
# shadow on the side that has more; stdout keeps its lines whole by wrapping.
_SCROLL_CSS = """<style>
.jp-OutputArea-output.ob-scrolls { box-shadow: inset -12px 0 10px -10px rgba(0,0,0,.35); }
.jp-OutputArea-output.ob-scrolls.ob-at-end { box-shadow: inset 12px 0 10px -10px rgba(0,0,0,.35); }
.ob-scroll-hint { font: 12px system-ui, sans-serif; color: #666; margin: 2px 0 2px var(--jp-notebook-padding, 0); }
.jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>"""
_SCROLL_JS = """<script>
(function () {
  function mark() {
    document.querySelectorAll('.jp-OutputArea-output').forEach(function (box) {
      var wide = box.scrollWidth > box.clientWidth + 2 && !box.querySelector('.js-plotly-plot');
      var hint = box.previousElementSibling;
      var has = hint && hint.classList.contains('ob-scroll-hint');
      box.classList.toggle('ob-scrolls', wide);
      if (wide && !has) {
        hint = document.createElement('div');
        hint.className = 'ob-scroll-hint';
        hint.textContent = 'swipe sideways for more columns \u2192';
        box.parentNode.insertBefore(hint, box);
      } else if (!wide && has) {
        hint.remove();
      }
      box.classList.toggle('ob-at-end', wide && box.scrollLeft + box.clientWidth >= box.scrollWidth - 2);
    });
  }
  document.addEventListener('scroll', function (e) {
    if (e.target.classList && e.target.classList.contains('ob-scrolls')) {
      e.target.classList.toggle('ob-at-end', e.target.scrollLeft + e.target.clientWidth >= e.target.scrollWidth - 2);
    }
  }, true);
  window.addEventListener('load', mark);
  window.addEventListener('resize', mark);
})();
</script>"""
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{% block extra_css %}{{ super() }}""" + _SCROLL_CSS + """{% endblock extra_css %}
{% block body_footer %}{{ super() }}""" + _SCROLL_JS + """{% endblock body_footer %}
"""


PLOTLYJS_FILE = "plotly.min.js"   # beside the pages, shared by all of them

_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>opsbench notebooks</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;line-height:1.5}}
li{{margin:.6rem 0}} small{{color:#555}}</style></head>
<body><h1>opsbench notebooks</h1>
<ul>
{items}
</ul></body></html>
"""


@dataclass(frozen=True)
class Rendered:
    name: str
    html: Path | None
    error: str | None = None
    seconds: float = 0.0
    ran_at: dt.datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def notebook_paths(directory: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The notebooks in `directory`, dashboard first; `only` selects by name (stem)."""
    found = {p.stem: p for p in sorted(directory.glob("*.ipynb"))}
    names = sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    if only:
        unknown = [n for n in only if n.removesuffix(".ipynb") not in found]
        if unknown:
            raise RenderError(f"no notebook {unknown[0]!r} in {directory} (have: {', '.join(names)})")
        wanted = {n.removesuffix(".ipynb") for n in only}
        names = [n for n in names if n in wanted]
    return [found[n] for n in names]


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def parameters_cell(nb: NotebookNode) -> int:
    """Index of the one cell tagged `parameters`."""
    idx = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(idx) != 1:
        raise RenderError(f"expected exactly one cell tagged {PARAMETERS_TAG!r}, found {len(idx)}")
    return idx[0]


def parameter_names(nb: NotebookNode) -> list[str]:
    """Names assigned in the parameters cell, in order."""
    source = nb.cells[parameters_cell(nb)].source
    names: list[str] = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name) and t.id not in names:
                names.append(t.id)
    return names


def parse_value(text: str) -> Any:
    """A `-p key=value` value: a Python literal (14, 0.5, True, None, 'x') or else the text itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def inject_parameters(nb: NotebookNode, params: dict[str, Any]) -> NotebookNode:
    """Insert an `injected-parameters` cell after the `parameters` cell (papermill's convention)."""
    if not params:
        return nb
    at = parameters_cell(nb)
    known = parameter_names(nb)
    unknown = [k for k in params if k not in known]
    if unknown:
        raise RenderError(f"unknown parameter {unknown[0]!r} (this notebook takes: {', '.join(known)})")
    lines = ["# Parameters injected by `opsbench notebooks render`"]
    for key, value in params.items():
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        lines.append(f"{key} = {value!r}")
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(at + 1, cell)
    return nb


def _kernel_manager():
    """A kernel manager that starts ipykernel on this very interpreter.

    Naming a kernelspec would pick whatever `python3` spec comes first on the
    Jupyter path (possibly another Python); the notebooks must run in the
    project's environment.
    """
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir="", **get_kernel_dict())

    import zmq

    km = KernelManager(kernel_name="opsbench", kernel_spec_manager=ThisPython())
    if zmq.has("curve"):
        # encrypt the loopback channels when libzmq can (ipykernel warns otherwise)
        km.transport_encryption = "auto"
    return km


@contextmanager
def _kernel_env(extra: dict[str, str]):
    """Environment variables for the kernel this block starts (it inherits ours at launch)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _error_line(exc: Exception) -> str:
    """The last line of a cell's traceback: `ValueError: ...`."""
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".strip()
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def execute(
    path: Path,
    params: dict[str, Any] | None = None,
    *,
    timeout: int = 300,
    ignore_unknown: bool = False,
    plotlyjs_src: str | None = None,
) -> NotebookNode:
    """Run the notebook in a fresh kernel; the working directory is the notebook's folder.

    Raises RenderError naming the notebook and the failing cell's error.
    `ignore_unknown` drops parameters this notebook does not declare (for
    rendering several notebooks with one set of -p values). `plotlyjs_src`:
    the charts load plotly.js from this URL (a file beside the page) instead
    of embedding it.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = read(path)
    params = dict(params or {})
    if ignore_unknown:
        known = set(parameter_names(nb))
        params = {k: v for k, v in params.items() if k in known}
    try:
        inject_parameters(nb, params)
    except RenderError as e:
        raise RenderError(f"{path.name}: {e}") from None
    client = NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=timeout,
        startup_timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        with _kernel_env({PLOTLYJS_SRC_ENV: plotlyjs_src} if plotlyjs_src else {}):
            client.execute()
    except CellTimeoutError:
        raise RenderError(f"{path.name}: a cell ran longer than {timeout} s") from None
    except DeadKernelError as e:
        raise RenderError(f"{path.name}: the kernel died ({e})") from None
    except CellExecutionError as e:
        raise RenderError(f"{path.name}: {_error_line(e)}") from None
    finally:
        _shut_down(client)
    return nb


def _shut_down(client) -> None:
    """Stop the kernel now: nbclient leaves a kernel it did not create running (we pass our own manager),
    and it lingered until this process exited ("[IPKernelApp] WARNING | Parent appears to have exited")."""
    try:
        if client.kc is not None:
            client.kc.stop_channels()
        if client.km is not None and client.km.has_kernel:
            client.km.shutdown_kernel(now=False)
    except Exception as e:  # noqa: BLE001 - the page is rendered; a kernel that will not stop dies with us
        log.debug("kernel shutdown: %s", e)


def to_html(nb: NotebookNode, title: str | None = None) -> str:
    """Self-contained HTML: inline CSS, plotly.js from the notebook, no CDN scripts."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"opsbench.html.j2": _TEMPLATE})],
        template_file="opsbench.html.j2",
    )
    # a shared report is read, not re-run: the story, the tables and the charts, no code
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    resources = {"metadata": {"name": title or nb.metadata.get("title", "opsbench")}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def render(
    paths: list[Path],
    out_dir: Path,
    params: dict[str, Any] | None = None,
    *,
    timeout: int = 300,
    index: bool = True,
) -> list[Rendered]:
    """Execute each notebook and write `<out_dir>/<name>.html`; one failure does not stop the rest.

    index: write `<out_dir>/index.html` listing these notebooks (a caller rendering notebooks one by
    one in parallel passes False and writes one index of all of them with `write_index`).
    """
    import time

    params = dict(params or {})
    if params:
        declared = {n for p in paths for n in parameter_names(read(p))}
        unknown = [k for k in params if k not in declared]
        if unknown:
            raise RenderError(
                f"unknown parameter {unknown[0]!r}: no selected notebook takes it (they take: "
                f"{', '.join(sorted(declared))})"
            )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_plotlyjs(out_dir)
    results: list[Rendered] = []
    for path in paths:
        began = time.monotonic()
        ran_at = utc_now()
        used = {k: v for k, v in params.items() if k in set(parameter_names(read(path)))}
        try:
            nb = execute(path, params, timeout=timeout, ignore_unknown=True, plotlyjs_src=PLOTLYJS_FILE)
        except RenderError as e:
            results.append(Rendered(path.stem, None, str(e), time.monotonic() - began, ran_at, used))
            continue
        target = out_dir / f"{path.stem}.html"
        target.write_text(to_html(nb, title=f"opsbench · {path.stem}"), encoding="utf-8")
        results.append(Rendered(path.stem, target, None, time.monotonic() - began, ran_at, used))
    if index:
        write_index(out_dir, results)
    return results


def _write_plotlyjs(out_dir: Path) -> Path:
    """One copy of plotly.js for every page in the folder (written again only when it differs)."""
    from plotly.offline import get_plotlyjs

    target = out_dir / PLOTLYJS_FILE
    js = get_plotlyjs()
    if not target.exists() or target.stat().st_size != len(js.encode("utf-8")):
        target.write_text(js, encoding="utf-8")
    return target


def write_index(out_dir: Path, results: list[Rendered]) -> Path:
    """index.html: a link to each rendered notebook with its parameters and when it ran."""
    import html

    rows = []
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())) or "defaults"
        when = r.ran_at.strftime("%Y-%m-%d %H:%M UTC") if r.ran_at else ""
        name = (f'<a href="{html.escape(r.html.name, quote=True)}">{html.escape(r.name)}</a>' if r.ok and r.html
                else f"{html.escape(r.name)} <em>(failed: {html.escape(r.error or '')})</em>")
        rows.append(f"<li>{name}<br><small>{html.escape(params)} · ran {html.escape(when)} · "
                    f"{r.seconds:.1f} s</small></li>")
    page = _INDEX.format(items="\n".join(rows))
    target = out_dir / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
