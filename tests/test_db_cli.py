"""`opsbench db url | seed | down` as a user runs them: a subprocess of the project's Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.core.settings import PROJECT_ROOT

PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"


def opsbench(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([python, "-m", "ops", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=os.getcwd())


def test_db_url_masks_passwords():
    env = {
        "DATABASE_URL": "postgresql://alice:s3cret-analytics@db.example.com:5432/app",
        "MAINTENANCE_DATABASE_URL": "postgresql://janitor:s3cret-maint@db.example.com:5432/app",
        "OPSBENCH_STATE_URL": "postgresql://ops:s3cret-state@state.example.com/opsbench",
    }
    r = opsbench("db", "url", env=env)
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("analytics") and "alice:***@db.example.com:5432/app" in line for line in lines)
    assert any(line.startswith("maintenance") and "janitor:***@db.example.com" in line for line in lines)
    assert any(line.startswith("state") and "ops:***@state.example.com/opsbench" in line for line in lines)


def test_bad_scale_is_one_line_and_exit_2(tmp_path):
    r = opsbench("db", "seed", "--scale", "huge", env={"OPSBENCH_HOME": str(tmp_path / "home")})
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "huge" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "home" / "pg").exists()  # nothing was started


@pytest.fixture
def home(tmp_path):
    """An OPSBENCH_HOME of its own; its embedded server is stopped afterwards."""
    home = tmp_path / "home"
    yield home
    opsbench("db", "down", env={"OPSBENCH_HOME": str(home)}, timeout=60)


def test_db_seed_writes_the_manifest_and_reuses_the_data(home: Path):
    env = {"OPSBENCH_HOME": str(home)}
    r = opsbench("db", "seed", "--scale", "small", "--seed", "3", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("seeded scale=small seed=3")
    manifest = json.loads((home / "demo-manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["scale"] == "small"
    assert manifest["seconds"] > 0 and manifest["users"] > 9_000
    # a planted count for every shipped check (the four added with checks-as-files among them)
    shipped = {p.stem for p in (Path(__file__).resolve().parents[1] / "queries" / "checks").glob("*.sql")}
    # all but negative_model_margin, which judges nothing without the founder's costs file (not a ledger fault)
    assert set(manifest["checks"]) == shipped - {"negative_model_margin"}
    assert {"balance_vs_ledger", "negative_balances", "duplicate_transactions", "purchase_credit_mismatch",
            "failed_jobs_without_refund", "ledger_missing_jobs", "purchase_credited_to_other_user",
            "generation_refund_mismatch", "completed_job_refunded", "iap_refund_mismatch",
            "negative_model_margin"} == shipped
    assert (home / "pg").is_dir()

    again = opsbench("db", "seed", "--seed", "4", env=env)  # already seeded: kept, not regenerated
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already seeded: scale=small seed=3")
    assert json.loads((home / "demo-manifest.json").read_text()) == manifest

    down = opsbench("db", "down", env=env)
    assert (down.returncode, down.stdout.strip()) == (0, "stopped")
