"""The README's demo: the whole flow on the embedded chain, publish (a pandas algorithm in
the sample image, by digest) → order (agreement + payment locked) → run in the sandbox, in
the image → result → escrow released to the publisher."""

from __future__ import annotations

import re
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
        # scripts/setup builds the sample image; built here instead, it takes a minute more
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "published and registered on chain" in out and "did:atoll:" in out
    assert re.search(r"image 127\.0\.0\.1:\d+/atoll/pandas@sha256:[0-9a-f]{12}", out)
    assert re.search(r"ordered agreement\s+0x[0-9a-f]{64}", out)
    assert "70 Job finished" in out
    # the mean of the sample's three "south" months, computed inside the sandbox
    assert '"mean_temperature_c": 10.17' in out
    assert "wrote summary.json" in out
    # pandas came from the image: the provider's host interpreter has none
    assert re.search(r"with pandas \d+\.\d+", out)
    assert "escrow released to the publisher" in out
    before = re.search(r"before\s+publisher\s+([\d.]+) ATL\s+consumer\s+([\d.]+) ATL", out)
    after = re.search(r"after\s+publisher\s+([\d.]+) ATL\s+consumer\s+([\d.]+) ATL", out)
    assert before and after, out
    paid = float(after[1]) - float(before[1])
    assert paid == 5.0 and float(before[2]) - float(after[2]) == 5.0
