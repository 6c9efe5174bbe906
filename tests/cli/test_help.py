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
