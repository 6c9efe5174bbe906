"""The README's "A short tour", run as written: each command of its code block, in order,
through a shell, against a real ``atoll serve``, in a fresh ATOLL_HOME, at 80 columns."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.sdk.endpoint import RECORD
from atoll.server import free_port
from tests.helpers import public_dir, require_sandbox

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
JOB_ID = re.compile(r"\b[0-9a-f]{32}\b")

SALES = "region,amount\nnorth,2\nsouth,5\nnorth,4\n"
ALGORITHM = (
    "import json, os\n"
    "did = json.loads(os.environ['DIDS'])[0]\n"
    "p = json.load(open('/data/inputs/algoCustomData.json'))\n"
    "rows = open(f'/data/inputs/{did}/0').read().splitlines()[1:]\n"
    "big = [r for r in rows if int(r.split(',')[1]) >= int(p['threshold'])]\n"
    "open('/data/outputs/big.csv', 'w').write('\\n'.join(big))\n"
    "print(f'{len(big)} rows at or over the threshold')\n"
)


def tour_commands() -> list[str]:
    """The tour's code block, one command per entry: continued lines joined, comments and
    blank lines dropped."""
    text = README.read_text()
    block = text.split("## A short tour", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    pending = ""
    for line in block.splitlines():
        code = _strip_comment(line).rstrip()
        if pending:
            code = pending + " " + code.strip()
            pending = ""
        if code.endswith("\\"):
            pending = code[:-1].rstrip()
            continue
        if code.strip():
            commands.append(code.strip())
    assert not pending
    return commands


def _strip_comment(line: str) -> str:
    # a # that starts a word begins a comment (none of the tour's arguments hold one)
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


class Shell:
    """Runs the tour's commands one by one as bash would, keeping the variables they set."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.server: subprocess.Popen[bytes] | None = None

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        assign = re.fullmatch(r"([A-Z_]+)=\$\((.*)\)", command)
        script = assign.group(2) if assign else command
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if assign and done.returncode == 0:
            self.env[assign.group(1)] = done.stdout.strip()
        return done

    def start(self, command: str) -> None:
        log = (self.cwd / "serve.log").open("wb")
        argv = shlex.split(command.removesuffix("&"))
        self.server = subprocess.Popen(
            argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            # as a service manager stops it (SIGINT may be ignored in a background test run)
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    require_sandbox()
    # the working folder is where the tour publishes from: a job's user must get through it
    home, work = tmp_path / "home", public_dir()
    (work / "sales.csv").write_text(SALES)
    (work / "my_algo.py").write_text(ALGORITHM)
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ATOLL_HOME": str(home),
        # a free port instead of 8030, which another node on this machine may hold: the tour's
        # commands find it through the URL `atoll serve` records in ATOLL_HOME
        "ATOLL_PORT": str(free_port()),
        "COLUMNS": "80",
    }
    for name in ("ATOLL_DATABASE_URL", "ATOLL_TEST_POSTGRES_URL"):
        env.pop(name, None)
    sh = Shell(work, env)
    try:
        yield sh
    finally:
        sh.stop()


def wait_for_record(home: Path, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not (home / RECORD).exists():
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "atoll serve did not start"
        time.sleep(0.2)
    # the record is written as the server starts listening; wait for it to answer
    while (
        subprocess.run(
            [BIN / "atoll", "assets", "list"],
            env={**os.environ, "ATOLL_HOME": str(home)},
            capture_output=True,
        ).returncode
        != 0
    ):
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "atoll serve does not answer"
        time.sleep(0.2)


def test_the_readme_tour_runs_as_written(shell: Shell) -> None:
    commands = tour_commands()
    assert commands[0] == "source .venv/bin/activate"
    home = Path(shell.env["ATOLL_HOME"])
    job_id = ""
    ran: list[tuple[str, str]] = []
    for command in commands[1:]:
        if command.endswith("&"):
            assert command == "atoll serve &"
            shell.start(command)
            assert shell.server is not None
            wait_for_record(home, shell.server, shell.cwd / "serve.log")
            continue
        if "JOB_ID" in command:
            assert job_id, "the tour needs a job id before this command"
            shell.env["JOB_ID"] = job_id
            command = command.replace("JOB_ID", "$JOB_ID")
        done = shell.run(command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        ran.append((command, done.stdout))
        if "compute list" in command:
            listed = JOB_ID.findall(done.stdout)
            assert listed, done.stdout
            job_id = listed[0]

    def output(start: str) -> str:
        [out] = [o for c, o in ran if c.startswith(start)]
        return out

    env = shell.env
    did, agreement = env["DID"], env["AGREEMENT"]
    assert re.fullmatch(r"did:atoll:[0-9a-f]{64}", did)
    assert re.fullmatch(r"0x[0-9a-f]{64}", agreement)
    # the dataset is found by its tag alone, its DID whole on one line
    assert did in output("atoll assets list retail").splitlines()
    # the run printed the id the list shows, whole, and the job finished
    run = output("atoll compute run")
    assert f"job      {job_id}" in run.splitlines() and "70 Job finished" in run
    # results and receipt downloaded, the receipt verified in full
    work = shell.cwd
    assert (work / "out" / "big.csv").read_text() == "south,5\nnorth,4"
    assert "verifies (signature, chain record, files)" in output("atoll receipt verify")
    assert "2 rows at or over the threshold" in output("atoll compute logs")
    assert "out/big.csv" in output("atoll compute results").splitlines()
    assert "70 Job finished" in output("atoll compute stop")
    assert "chain id" in output("atoll chain status")
    assert "results and logs removed" not in output("atoll compute delete")

    # the server removes its record when it stops
    shell.stop()
    assert not (home / RECORD).exists()
