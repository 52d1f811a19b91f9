"""The benchmark scripts run (figures are not asserted: speed is measured, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_crawl_extract_benchmark_quick_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "crawl_extract.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["extraction"]["pages"] > 0
    assert [c["concurrency"] for c in figures["crawl"]] == [1, 1, 4]
    assert all(c["requests"] > 0 for c in figures["crawl"])
