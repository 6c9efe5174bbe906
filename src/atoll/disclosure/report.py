"""What the checks found: a report per file, and the digest a receipt binds.

A finding's detail is shown to the consumer of a held file, so it names only positions (row
and column numbers), counts and thresholds, never a file name, text or value the job wrote.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from atoll.canonical import canonical_sha256

CheckName = Literal[
    "type",
    "size",
    "rows",
    "echo",
    "small_cells",
    "dominance",
    "small_group",
    "encoded",
    "precision",
    "unparsed",
    "name",
]


def and_more(count: int) -> str:
    """What a finding says after the first of ``count`` places: `` and N more``, or
    nothing for one."""
    return f" and {count - 1} more" if count > 1 else ""


class Finding(BaseModel):
    """One reason to hold a file."""

    check: CheckName
    detail: str


class FileReport(BaseModel):
    """One output or log: its identity (index, size, sha256) and the checks' verdict on it."""

    index: int
    kind: Literal["output", "log"]
    size: int
    sha256: str
    verdict: Literal["pass", "hold"]
    findings: list[Finding]


class CheckReport(BaseModel):
    """Every file a job wrote, checked."""

    files: list[FileReport]

    def digest(self) -> str:
        """sha256 of the report's canonical JSON: what a receipt binds."""
        return canonical_sha256(self.model_dump(mode="json"))

    @property
    def held(self) -> list[FileReport]:
        return [f for f in self.files if f.verdict == "hold"]
