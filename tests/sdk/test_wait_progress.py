"""A client waiting for a job that pulls its image sees the pull's progress: the status text
changes while the status stays 11, and a long poll answers only a change of status, so the
client looks again every PROGRESS_POLL_SECONDS while the pull lasts.

The provider is a stand-in for ``status`` answers (scripted JobInfos): what is tested is the
client's waiting loop; the engine's tests show the texts a real pull writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from atoll.models.job import JobInfo
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.sdk.client import PROGRESS_POLL_SECONDS


def info(status: JobStatus, text: str = "") -> JobInfo:
    return JobInfo(
        jobId="j",
        owner="0x" + "0a" * 20,
        did="did:atoll:x",
        inputDID=["did:atoll:x"],
        status=int(status),
        statusText=text or status.text,
        dateCreated="2026-01-01T00:00:00Z",
    )


def test_waiting_shows_each_progress_of_a_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    script = [
        info(JobStatus.PULLING_IMAGE, "Pulling image: 1.0 of 9.0 MB"),
        info(JobStatus.PULLING_IMAGE, "Pulling image: 5.0 of 9.0 MB"),
        info(JobStatus.PULLING_IMAGE, "Unpacking image"),
        info(JobStatus.RUNNING),
        info(JobStatus.FINISHED),
    ]
    asked: list[dict[str, Any]] = []

    def status(job_id: str, wait: float = 0, since: int | None = None) -> JobInfo:
        asked.append({"wait": wait, "since": since})
        return script[len(asked) - 1]

    shown: list[str] = []
    with ProviderClient("http://127.0.0.1:9") as client:
        monkeypatch.setattr(client, "status", status)
        done = client.wait("j", on_change=lambda i: shown.append(i.statusText))
    assert done.status == JobStatus.FINISHED
    assert shown[:3] == ["Pulling image: 1.0 of 9.0 MB", "Pulling image: 5.0 of 9.0 MB",
                         "Unpacking image"]  # fmt: skip
    # short looks while pulling, a long poll once it runs
    assert [a["wait"] for a in asked[1:4]] == [PROGRESS_POLL_SECONDS] * 3
    assert asked[4]["wait"] == 30.0
