"""``atoll serve`` (or ``atoll operator serve``) of a node directory whose sandbox another
process runs jobs under (the same directory served twice: on PostgreSQL and an external chain
nothing else stops it) refuses in one line before it serves, and the other process's jobs run
on untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from atoll.cli.serve import init_home
from atoll.config import load_settings
from atoll.engine.sandbox.claim import TAKEN
from atoll.node import sandbox_name
from tests.engine.conftest import host_processes_with
from tests.engine.test_sandbox_claim import holding
from tests.helpers import require_sandbox


def test_a_node_directory_whose_sandbox_runs_jobs_elsewhere_is_not_served(tmp_path: Path) -> None:
    require_sandbox()
    home = tmp_path / "home"
    init_home(home, own_data_root=str(tmp_path / "data"))
    with holding(sandbox_name(load_settings(home)), tmp_path / "job") as (_, marker):
        running = host_processes_with(marker)
        assert running

        def refused(*command: str) -> None:
            done = subprocess.run(
                [sys.executable, "-m", "atoll", *command, "--home", str(home), "--port", "0"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 1, done.stderr
            assert done.stderr.strip().splitlines() == [
                f"error: this node cannot run jobs: {TAKEN}"
            ]
            left = host_processes_with(marker)
            assert left and set(left) <= set(running)

        refused("serve")
        assert not (home / "provider.json").exists()
        # nor the standalone Operator-Service of that directory
        refused("operator", "serve", "--allow", "0x" + "11" * 20)
