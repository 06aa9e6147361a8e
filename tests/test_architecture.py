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
