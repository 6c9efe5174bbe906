"""Node commands where only the client is installed: one line naming the extra to install."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec

import pytest

from atoll.cli.exits import ERROR
from atoll.cli.main import run


@pytest.mark.parametrize(
    "args",
    [["serve"], ["init"], ["demo"], ["backup", "somewhere"], ["chain", "deploy"]],
)
def test_a_node_command_without_the_provider_extra_says_what_to_install(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def client_only(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "sqlalchemy" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", client_only)
    assert run(args) == ERROR
    err = capsys.readouterr().err
    assert "pip install 'atoll[provider]'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
