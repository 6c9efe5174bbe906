"""Reports begun before a job's end is heard: taken once, and only for what they were made
for; anything else is checked again by the caller."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator

import pytest

from atoll.disclosure import CheckReport, FileReport
from atoll.provider.early_checks import ByJob, EarlyChecks

Made = tuple[Hashable, CheckReport] | None


def _report(verdict: str) -> CheckReport:
    return CheckReport(
        files=[
            FileReport(index=0, kind="log", size=1, sha256="ab" * 32, verdict=verdict, findings=[])
        ]
    )


@pytest.fixture
def early() -> Iterator[EarlyChecks[CheckReport]]:
    made: EarlyChecks[CheckReport] = EarlyChecks(workers=1, kept=3)
    yield made
    made.close()


def test_a_report_begun_early_is_taken_once_for_its_key(early: EarlyChecks[CheckReport]) -> None:
    report = _report("pass")
    early.start("job-1", lambda: ("files-1", report))
    assert early.take("job-1", "files-1") == report
    assert early.take("job-1", "files-1") is None
    assert early.pending() == 0


def test_a_report_made_for_other_files_is_not_used(early: EarlyChecks[CheckReport]) -> None:
    early.start("job-1", lambda: ("files as first kept", _report("pass")))
    assert early.take("job-1", "files as at the end") is None
    assert early.take("job-2", "files as first kept") is None


def test_the_end_waits_for_a_check_under_way(early: EarlyChecks[CheckReport]) -> None:
    began, go = threading.Event(), threading.Event()
    report = _report("hold")

    def slow() -> Made:
        began.set()
        go.wait(10)
        return "key", report

    early.start("job-1", slow)
    assert began.wait(10)
    threading.Timer(0.2, go.set).start()
    assert early.take("job-1", "key") == report


def test_a_check_not_begun_is_left_to_the_caller(early: EarlyChecks[CheckReport]) -> None:
    go = threading.Event()
    ran: list[str] = []

    def blocking() -> Made:
        go.wait(10)
        return None

    def queued() -> Made:
        ran.append("queued")
        return "key", _report("pass")

    early.start("job-1", blocking)  # the one worker is busy with it
    early.start("job-2", queued)
    assert early.take("job-2", "key") is None
    go.set()
    assert early.take("job-1", "key") is None  # nothing to check: None
    early.close()
    assert ran == []


def test_a_failed_or_empty_check_is_left_to_the_caller(early: EarlyChecks[CheckReport]) -> None:
    def fails() -> Made:
        raise ValueError("unreadable")

    early.start("job-1", fails)
    assert early.take("job-1", "key") is None
    early.start("job-2", lambda: None)
    assert early.take("job-2", "key") is None


def test_reports_never_taken_are_dropped_oldest_first(early: EarlyChecks[CheckReport]) -> None:
    for n in range(5):
        done = threading.Event()

        def check(n: int = n, done: threading.Event = done) -> Made:
            done.set()
            return f"key-{n}", _report("pass")

        early.start(f"job-{n}", check)
        assert done.wait(10)
    assert early.pending() == 3
    assert early.take("job-0", "key-0") is None
    assert early.take("job-1", "key-1") is None
    assert early.take("job-4", "key-4") == _report("pass")


def test_what_a_job_s_checks_make_ahead_is_taken_once_and_bounded() -> None:
    kept: ByJob[str] = ByJob(kept=2)
    kept.put("job-1", "plan 1")
    assert kept.take("job-1") == "plan 1"
    assert kept.take("job-1") is None
    for n in range(4):
        kept.put(f"job-{n}", f"plan {n}")
    # jobs that never come for theirs: the oldest dropped
    assert len(kept) == 2
    assert kept.take("job-0") is None and kept.take("job-3") == "plan 3"
