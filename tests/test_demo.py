"""The README's demo: a sample dataset published, the sample algorithm run in the sandbox,
the result printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import require_sandbox


def test_demo_prints_the_result(tmp_path: Path) -> None:
    require_sandbox()
    result = subprocess.run(
        [sys.executable, "-m", "atoll", "demo", "--home", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "published dataset" in out and "did:atoll:" in out
    assert "70 Job finished" in out
    # the mean of the sample's three "south" months, computed inside the sandbox
    assert '"mean_temperature_c": 10.17' in out
    assert "wrote summary.json" in out
