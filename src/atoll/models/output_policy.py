"""A dataset's output policy: what its jobs' outputs and logs must pass before a consumer may
read them, and who reviews what the checks hold.

Kept in the dataset's compute service; the checks' thresholds follow ACRO's defaults (cell
threshold 10, N-K dominance 2 records at 90 %) and OpenSAFELY's gate (16 MiB, 5,000 CSV rows).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: the kinds of file the checks can recognise by content; an allowlist names some of them
KNOWN_TYPES = ("csv", "tsv", "json", "txt", "md", "png", "svg")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class OutputChecks(BaseModel):
    """The automatic disclosure checks' settings."""

    model_config = ConfigDict(extra="forbid")

    allowedTypes: list[str] = Field(default_factory=lambda: list(KNOWN_TYPES), max_length=16)
    maxBytes: int = Field(default=16 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    maxCsvRows: int = Field(default=5000, ge=1, le=10_000_000)
    #: the smallest count a table cell or a group behind a statistic may have
    threshold: int = Field(default=10, ge=2, le=10_000)
    #: N-K dominance: a cell is held when its N largest contributions make K of its total
    dominanceN: int = Field(default=2, ge=1, le=10)
    dominanceK: float = Field(default=0.9, gt=0.0, le=1.0)
    #: column names the publisher marks as identifying a person on their own
    identifiers: list[str] = Field(default_factory=list, max_length=256)
    #: column names that single a person out when taken together
    quasiIdentifiers: list[str] = Field(default_factory=list, max_length=256)
    #: also treat columns as identifiers by their names (id, email, dob, ...) and values
    #: (a different value on every row) and, where no quasi-identifier is marked, as
    #: quasi-identifiers by their names (age, sex, region, ...), whose values together
    #: single a person out where fewer than the threshold records share them
    guessIdentifiers: bool = True

    @field_validator("allowedTypes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(KNOWN_TYPES))
        if unknown:
            raise ValueError(f"unknown file types {unknown}; known: {list(KNOWN_TYPES)}")
        return value

    @field_validator("identifiers", "quasiIdentifiers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not 0 < len(name) <= 128 for name in value):
            raise ValueError("column names are 1 to 128 characters")
        return value


class OutputPolicy(BaseModel):
    """``auto``: what passes every check is released at once, the rest is held for review;
    ``review``: everything is held; ``off``: nothing is checked (open data only)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "review", "off"] = "auto"
    #: addresses that may review, besides the dataset's owner
    reviewers: list[str] = Field(default_factory=list, max_length=32)
    #: distinct reviewers who must approve a file before it is released
    reviewersRequired: int = Field(default=1, ge=1, le=2)
    checks: OutputChecks = Field(default_factory=OutputChecks)

    @field_validator("reviewers")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if any(not _ADDRESS.fullmatch(a) for a in value):
            raise ValueError("reviewers are 0x-prefixed 20-byte addresses")
        return value
