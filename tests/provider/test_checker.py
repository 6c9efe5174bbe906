"""The checks' own process: it makes the reports the server's would and keeps the inputs
parsed there; one that dies is replaced and the check sent again, and when that one dies under
it too every file of the check is held, never released; it ends with its server."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atoll.disclosure import Candidate, check_files
from atoll.models.output_policy import OutputChecks
from atoll.provider.checker import ATTEMPTS, STOPPED, Checker
from tests.disclosure.conftest import HEADER, people


@pytest.fixture
def checker() -> Iterator[Checker]:
    made = Checker()
    yield made
    made.close()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *people(300)])
    return path


def _outputs(tmp_path: Path, dataset: Path) -> list[Candidate]:
    copy = tmp_path / "copy.csv"
    copy.write_bytes(dataset.read_bytes())
    counts = tmp_path / "counts.csv"
    counts.write_text("region,count\nnorth,75\nsouth,80\neast,70\nwest,75\n")
    return [
        Candidate(index=0, kind="output", name="copy.csv", path=copy),
        Candidate(index=1, kind="output", name="counts.csv", path=counts),
    ]


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_checks_run_in_a_process_of_their_own_with_the_same_verdicts(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    candidates = _outputs(tmp_path, dataset)
    report = checker.check(candidates, [dataset], OutputChecks())
    here = check_files(candidates, [dataset], OutputChecks())
    assert report == here
    assert [f.verdict for f in report.files] == ["hold", "pass"]
    assert report.files[0].findings[0].detail == "a copy of input 1"
    pid = checker.running()
    assert pid is not None and pid != os.getpid()


def test_a_check_begun_without_waiting_makes_the_report_a_check_makes(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    candidates = _outputs(tmp_path, dataset)
    begun = checker.begin(candidates, [dataset], OutputChecks())
    assert begun is not None
    assert begun.result(timeout=60) == checker.check(candidates, [dataset], OutputChecks())
    checker.close()
    # no process to send it to: nothing begun (the caller checks as it would have)
    assert checker.begin(candidates, [dataset], OutputChecks()) is None


def test_the_inputs_are_kept_parsed_in_the_checks_process(checker: Checker, dataset: Path) -> None:
    assert not checker.kept(dataset)
    assert checker.prepare([dataset], OutputChecks()) == 1
    assert checker.kept(dataset)
    # kept there once: prepared again, nothing is parsed
    assert checker.prepare([dataset], OutputChecks()) == 0


def test_a_process_that_died_between_checks_is_replaced(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    candidates = _outputs(tmp_path, dataset)
    checker.check(candidates, [dataset], OutputChecks())
    first = checker.running()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: _gone(first))
    report = checker.check(candidates, [dataset], OutputChecks())
    assert [f.verdict for f in report.files] == ["hold", "pass"]
    assert checker.running() not in (None, first)


def test_a_pool_shut_down_as_its_process_died_is_replaced_not_bypassed(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    """A pool that shut itself down (as one does when its process dies) refuses new calls;
    the check then goes to a new process, never to the caller's."""
    candidates = _outputs(tmp_path, dataset)
    checker.check(candidates, [dataset], OutputChecks())
    first = checker.running()
    checker._pool.shutdown(wait=True)  # type: ignore[union-attr]
    report = checker.check(candidates, [dataset], OutputChecks())
    assert [f.verdict for f in report.files] == ["hold", "pass"]
    assert checker.running() not in (None, first, os.getpid())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie until the pool reaps it
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_check_whose_process_dies_under_it_holds_every_file(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    # an aggregate that would pass, beside a text that takes the checks seconds to read
    rng = random.Random(5)
    slow = tmp_path / "slow.txt"
    slow.write_text("".join(rng.choice("αβγδεζηθικλμνξοπρστυφχψω") for _ in range(6_000_000)))
    counts = _outputs(tmp_path, dataset)[1]
    candidates = [counts, Candidate(index=2, kind="output", name="slow.txt", path=slow)]
    checker.prepare([dataset], OutputChecks())
    pid = checker.running()
    assert pid is not None

    def kill_each_once_busy() -> None:
        # each process the check is sent to, once its CPU time climbs (the check under way)
        killed: list[int] = []
        for _ in range(ATTEMPTS):
            _wait_for(lambda: checker.running() not in (None, *killed))
            busy = checker.running()
            assert busy is not None
            start = _cpu(busy)
            _wait_for(lambda busy=busy, start=start: _cpu(busy) > start + 0.3)
            os.kill(busy, signal.SIGKILL)
            killed.append(busy)

    killer = threading.Thread(target=kill_each_once_busy)
    killer.start()
    report = checker.check(candidates, [dataset], OutputChecks())
    killer.join()
    assert [f.verdict for f in report.files] == ["hold", "hold"]
    for file, candidate in zip(report.files, candidates, strict=True):
        assert [f.detail for f in file.findings] == [STOPPED]
        # the bytes it holds, as the release compares them
        data = candidate.path.read_bytes()
        assert (file.index, file.size) == (candidate.index, len(data))
        assert file.sha256 == hashlib.sha256(data).hexdigest()
    # the next check has a process of its own again
    again = checker.check([counts], [dataset], OutputChecks())
    assert [f.verdict for f in again.files] == ["pass"]
    assert checker.running() not in (None, pid)


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_after_close_the_checks_run_in_the_callers_process(
    checker: Checker, tmp_path: Path, dataset: Path
) -> None:
    candidates = _outputs(tmp_path, dataset)
    checker.check(candidates, [dataset], OutputChecks())
    pid = checker.running()
    checker.close()
    assert checker.running() is None
    report = checker.check(candidates, [dataset], OutputChecks())
    assert [f.verdict for f in report.files] == ["hold", "pass"]
    assert pid is not None
    _wait_for(lambda: _gone(pid))


SERVER = """
import os, sys
from pathlib import Path
from atoll.models.output_policy import OutputChecks
from atoll.provider.checker import Checker

if __name__ == "__main__":
    checker = Checker()
    checker.prepare([Path(sys.argv[1])], OutputChecks())
    print(checker.running(), flush=True)
    os.kill(os.getpid(), 9)
"""


def test_the_checks_process_ends_with_a_server_killed_outright(
    tmp_path: Path, dataset: Path
) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    done = subprocess.run(
        [sys.executable, str(script), str(dataset)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    pid = int(done.stdout.strip())
    _wait_for(lambda: _gone(pid), seconds=10)
