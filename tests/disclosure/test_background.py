"""Work started beside the checks, or done at once where it is too small for a thread."""

from __future__ import annotations

import threading

import pytest

from atoll.disclosure.background import Background


def _where() -> str:
    return threading.current_thread().name


def test_work_runs_on_a_thread_of_its_own_and_its_result_is_waited_for() -> None:
    assert Background(_where, name="atoll-test").result() == "atoll-test"


def test_small_work_is_done_at_once_on_the_caller_s_thread() -> None:
    assert Background(_where, now=True).result() == threading.current_thread().name


@pytest.mark.parametrize("now", [False, True])
def test_what_the_work_raised_is_raised_where_its_result_is_asked(now: bool) -> None:
    def fails() -> None:
        raise ValueError("unreadable")

    work = Background(fails, now=now)
    with pytest.raises(ValueError, match="unreadable"):
        work.result()
