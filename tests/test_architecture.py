"""The house rules, read from the code with `ast`: imports run one way, no hidden doors."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Lower layers never import higher ones (README, "Architecture"). Rooms on the
# same layer may not import each other either, except within the room.
LAYERS = {
    "ops.core": 0,
    "queries": 1,
    "ops.data": 2,
    "ops.contract": 3,
    "ops.alerting": 4,
    "ops.reports": 5,
    "ops.daemon": 5,
    "ops.notebook": 6,
    "ops.workbench": 6,
    "ops.cli": 7,
    "ops.__main__": 8,
    "jobs": 9,  # jobs stand above the contract and use any room below the CLI
}


def _room(module: str) -> str | None:
    best = None
    for room in LAYERS:
        if module == room or module.startswith(room + "."):
            if best is None or len(room) > len(best):
                best = room
    return best


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return sorted(p for top in ("ops", "jobs", "queries") for p in (REPO / top).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module this file imports (module level or inside functions), resolved to dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.append((node.lineno, base))
            # `from ops import db` names a submodule: count it as importing that module
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if _room(f"{base}.{a.name}")]
    return out


def test_the_rules_see_every_source_file():
    names = {_module_name(p) for p in _sources()}
    assert {"ops.contract", "ops.alerting.manager", "ops.daemon.runner", "jobs.probes", "queries.loader"} <= names
    assert not [n for n in names if n.startswith("ops.") and _room(n) is None and n != "ops"], \
        "a module outside every room: add its room to LAYERS"


def test_nothing_under_ops_imports_jobs():
    offenders = [f"{p.relative_to(REPO)}:{line} imports {name}"
                 for p in _sources() if p.parts[len(REPO.parts)] in ("ops", "queries")
                 for line, name in _imports(p) if name == "jobs" or name.startswith("jobs.")]
    assert offenders == []


def test_imports_run_one_way():
    offenders = []
    for p in _sources():
        mine = _room(_module_name(p))
        if mine is None:
            continue
        for line, name in _imports(p):
            theirs = _room(name)
            if theirs is None or theirs == mine:
                continue
            if LAYERS[theirs] >= LAYERS[mine]:
                offenders.append(f"{p.relative_to(REPO)}:{line}: {mine} (layer {LAYERS[mine]}) imports "
                                 f"{name} (layer {LAYERS[theirs]})")
    assert offenders == []


def test_no_hidden_doors():
    """importlib only where the jobs file names a callable; no __import__ anywhere."""
    allowed = {REPO / "ops" / "daemon" / "jobspec.py"}
    offenders = []
    for p in _sources():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = (isinstance(node, ast.Name) and node.id == "__import__") or \
                    (isinstance(node, (ast.Import, ast.ImportFrom)) and
                     any(a.name == "importlib" or a.name.startswith("importlib.") for a in node.names)) or \
                    (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("importlib"))
            if named and not (p in allowed and not isinstance(node, ast.Name)):
                offenders.append(f"{p.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


# Import cycles other work of issue 25 is taking apart: tolerated until it lands, never to grow (a cycle is
# reported unless all its modules are inside one of these; "x.*" is every module under package x).
# Empty this list as they go.
KNOWN_CYCLES = [
    # the commands import helpers from ops/cli/__init__.py, which registers the commands (the lazy-start work)
    {"ops.cli", "ops.cli.*"},
    {"queries", "queries.loader", "queries.checkfile"},      # internal SQL apart from the public subjects
    {"ops.workbench.doctor", "ops.workbench.doctor_pooler"},
]


def _tolerated(cycle: set[str]) -> bool:
    def inside(module: str, known: set[str]) -> bool:
        return module in known or any(k.endswith(".*") and module.startswith(k[:-1]) for k in known)
    return any(all(inside(m, known) for m in cycle) for known in KNOWN_CYCLES)


def _annotation_only_lines(path: Path) -> set[int]:
    """The lines inside `if TYPE_CHECKING:` blocks: imports there never run, so they close no circle."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING"):
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def _graph() -> dict[str, set[str]]:
    """module -> the modules it imports when it runs (module level or inside functions, not under TYPE_CHECKING);
    a name that is not a module counts as its module's."""
    names = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        skip = _annotation_only_lines(path)
        for line, imported in _imports(path):
            if line in skip:
                continue
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                deps.add(imported)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(group)
    return found


def test_no_import_cycles():
    """No two modules of ops/, queries/ and jobs/ import each other, directly or around a circle (imports inside
    functions count: a circle is a circle whenever it closes; imports for annotations only do not)."""
    offenders = [sorted(c) for c in _cycles(_graph()) if not _tolerated(c)]
    assert offenders == []


def test_the_data_layer_has_no_import_cycle():
    """The circle the series read path once made (db -> runtime -> series -> rollups -> state -> db) stays gone:
    no cycle touches ops/data at all, whatever the list above tolerates."""
    assert [sorted(c) for c in _cycles(_graph()) if any(m.startswith("ops.data") for m in c)] == []


def test_the_cycle_rule_catches_a_planted_circle(tmp_path, monkeypatch):
    """A three-module circle, closed by an import inside a function, is reported."""
    room = tmp_path / "ops" / "data"
    room.mkdir(parents=True)
    (room / "a.py").write_text("from ops.data import b\n")
    (room / "b.py").write_text("import ops.data.c\n")
    (room / "c.py").write_text("def f():\n    from ops.data.a import thing\n")
    (room / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ops.data import e\n")
    (room / "e.py").write_text("from ops.data import d\n")           # d -> e only for annotations: no circle
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert [sorted(c) for c in _cycles(_graph())] == [["ops.data.a", "ops.data.b", "ops.data.c"]]
    with pytest.raises(AssertionError):
        test_no_import_cycles()
    with pytest.raises(AssertionError):
        test_the_data_layer_has_no_import_cycle()


@pytest.mark.parametrize("rule", ["test_nothing_under_ops_imports_jobs", "test_imports_run_one_way"])
def test_the_rules_catch_a_violation(tmp_path, monkeypatch, rule):
    """The checks above are not vacuous: a planted bad import is reported."""
    bad = tmp_path / "ops" / "core"
    bad.mkdir(parents=True)
    (bad / "planted.py").write_text("from jobs import probes\nfrom ops.cli import main\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(AssertionError):
        globals()[rule]()


def test_the_cli_starts_without_the_heavy_libraries():
    """`opsbench --help` and `query --list` import only what they use (start-up time is measured in the bench)."""
    import subprocess

    probe = ("import sys; from ops.cli import main; main(sys.argv[1:]); "
             "print(' '.join(m for m in ('pandas', 'plotly', 'nbclient', 'kaleido', 'psycopg', 'pydantic', "
             "'sqlalchemy', 'apscheduler') if m in sys.modules), file=sys.stderr)")
    for argv, allowed in ((["--help"], set()), (["query", "--list"], {"sqlalchemy"})):
        proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=REPO,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout=60)
        assert proc.returncode == 0, proc.stderr
        loaded = set(proc.stderr.strip().splitlines()[-1].split()) if proc.stderr.strip() else set()
        assert loaded <= allowed, (argv, loaded)


def test_each_probe_stands_alone():
    """jobs/probes/ holds one module per probe: they share only jobs/probes/common.py, never each other."""
    probes = sorted(p for p in (REPO / "jobs" / "probes").glob("*.py") if p.stem not in ("__init__", "common"))
    assert {p.stem for p in probes} >= {"http", "postgres"}
    offenders = [f"{p.relative_to(REPO)}:{line} imports {name}" for p in probes for line, name in _imports(p)
                 if name.startswith("jobs.probes") and name.split(".")[:3] not in (["jobs", "probes"],
                                                                                  ["jobs", "probes", "common"])]
    assert offenders == []


def test_the_readme_table_names_files_that_exist():
    """The README's "where things go" table points at real files (placeholders such as <name> aside)."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Three words, and where things go", 1)[1].split("\n#", 1)[0]
    paths = {m for m in re.findall(r"`([A-Za-z_./]+/[A-Za-z_./]*)`", section) if "." in m or m.endswith("/")}
    paths |= {m for m in re.findall(r"`((?:ops|jobs|queries|tests|notebooks)/[A-Za-z_/]+)`", section)}
    assert len(paths) >= 10, paths       # the table is there and names files
    missing = [p for p in sorted(paths)
               if not any((REPO / cand).exists() for cand in (p, p + ".py", p.rstrip("/")))]
    assert missing == []
