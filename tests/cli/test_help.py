"""Help at 80 columns: every option's name whole, and the exit statuses listed."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from atoll.cli.main import app

runner = CliRunner()


def commands() -> list[tuple[list[str], Any]]:
    out: list[tuple[list[str], Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


@pytest.mark.parametrize(
    ("path", "command"), commands(), ids=lambda p: " ".join(p) if isinstance(p, list) else ""
)
def test_option_names_are_never_cut(path: list[str], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    names = [
        name
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    ]
    words = set(result.output.replace(",", " ").replace("/", " ").split())
    for name in names:
        assert name in words, f"{name} is not shown whole in:\n{result.output}"
    assert "…" not in result.output


def test_job_ids_are_whole_in_the_job_list_at_80_columns() -> None:
    from rich.console import Console

    from atoll.cli.compute import jobs_table
    from atoll.models.job import JobInfo
    from atoll.models.status import JobStatus

    jobs = [
        JobInfo(
            jobId=f"{i:x}" * 32,
            owner="0x" + "ab" * 20,
            did="did:atoll:" + "cd" * 32,
            inputDID=[],
            status=int(status),
            statusText=status.text,
            dateCreated="2026-11-28T19:41:16Z",
        )
        for i, status in enumerate(
            [JobStatus.SANDBOX_UNAVAILABLE, JobStatus.FINISHED, JobStatus.DISK_QUOTA_EXCEEDED]
        )
    ]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(jobs_table(jobs))
    shown = console.export_text()
    assert max(len(line) for line in shown.splitlines()) <= 80
    for job in jobs:
        assert job.jobId in shown, shown
    # the rest folds onto more lines, nothing is cut
    assert "…" not in shown
