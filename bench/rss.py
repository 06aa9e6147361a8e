"""Run one command as a child and report its peak RSS: `python -m bench.rss OUT -- cmd ...`.

A wrapper of its own so that RUSAGE_CHILDREN holds exactly one child: the
command measured. stdout of the command goes to OUT; a JSON line with
maxrss_mb, seconds and returncode goes to our stdout.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    out_path, sep, *cmd = argv
    assert sep == "--" and cmd
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        rc = subprocess.run(cmd, stdout=out).returncode
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"maxrss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.monotonic() - t0, 2),
                      "returncode": rc}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
