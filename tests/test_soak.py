"""bench/soak.py with three runs (seeded: an activity fault, a terminated backend, Neon 5xx; both modes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_soak_three_runs():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--runs", "3", "--seed", "5"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1].strip("|").split("|")
    runs, injected, *_, lost, others = (int(cell) for cell in summary)
    assert (runs, injected, lost, others) == (3, 3, 0, 0), done.stdout[-2000:]
