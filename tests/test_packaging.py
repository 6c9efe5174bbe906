"""One version, written once in pyproject.toml; the license declared as SPDX, with its text."""

from __future__ import annotations

import tomllib
from importlib.metadata import metadata, version
from pathlib import Path

import atoll

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert atoll.__version__ == version("atoll") == project["version"]


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    # the installed metadata, as pip wrote it: a table here would have made it warn
    meta = metadata("atoll")
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
