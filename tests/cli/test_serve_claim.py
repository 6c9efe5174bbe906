"""``atoll serve`` (or ``atoll operator serve``) of a node directory whose sandbox another
process runs jobs under (the same directory served twice: on PostgreSQL and an external chain
nothing else stops it) refuses in one line before it serves, and the other process's jobs run
on untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from atoll.cli.serve import init_home
from atoll.config import load_settings
from atoll.engine.sandbox import SandboxExecutor
from atoll.engine.sandbox.claim import TAKEN
from atoll.node import sandbox_name
from tests.engine.conftest import host_processes_with
from tests.engine.test_sandbox_claim import HOLDER
from tests.helpers import require_sandbox


def test_a_node_directory_whose_sandbox_runs_jobs_elsewhere_is_not_served(tmp_path: Path) -> None:
    require_sandbox()
    home = tmp_path / "home"
    init_home(home, own_data_root=str(tmp_path / "data"))
    name, marker = sandbox_name(load_settings(home)), uuid.uuid4().hex
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), name, marker, str(tmp_path / "job")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        running = host_processes_with(marker)
        assert running
        done = subprocess.run(
            [sys.executable, "-m", "atoll", "serve", "--port", "0", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: this node cannot run jobs: {TAKEN}"]
        left = host_processes_with(marker)
        assert left and set(left) <= set(running)
        assert not (home / "provider.json").exists()
        # nor the standalone Operator-Service of that directory
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "atoll",
                "operator",
                "serve",
                "--home",
                str(home),
                "--port",
                "0",
                "--allow",
                "0x" + "11" * 20,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: this node cannot run jobs: {TAKEN}"]
        left = host_processes_with(marker)
        assert left and set(left) <= set(running)
    finally:
        holder.kill()
        holder.wait()
        last = SandboxExecutor(cgroup_name=name)
        last.recover()
        last.close()
