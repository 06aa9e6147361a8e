"""deploy/opsbench.service: systemd's own security analysis scores it below 3.0 (skipped without systemd-analyze)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "opsbench.service"


def _directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            found.setdefault(m.group(1), []).append(m.group(2))
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_security_scores_the_unit_below_3():
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    m = re.search(r"Overall exposure level for opsbench\.service: (\d+\.\d+)", out)
    assert m, out[-2000:]
    assert float(m.group(1)) < 3.0, out


def test_the_unit_keeps_its_hardening_and_reload():
    d = _directives()
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                       "ProtectKernelLogs": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
                       "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "SystemCallArchitectures": "native",
                       "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "UMask": "0077",
                       "ProtectProc": "invisible", "LockPersonality": "yes",
                       "ExecReload": "/bin/kill -HUP $MAINPID"}.items():
        assert d.get(key) == [value], (key, d.get(key))
    assert "@system-service" in d["SystemCallFilter"]
    assert "MemoryDenyWriteExecute" not in d  # Chromium's JIT (chart PNGs) needs W+X memory
