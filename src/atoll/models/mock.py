"""Mock data as the API shows it, and the status of a dry run on it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from atoll.models.job import JobInfo


class MockOffer(BaseModel):
    """Mock data a dataset offers to everyone: never the real file's location or values."""

    did: str
    source: Literal["uploaded", "generated"]
    sha256: str
    size: int
    rows: int
    columns: list[str]


class MockView(BaseModel):
    """The owner's view: a generated schema awaiting approval, or what is offered."""

    did: str
    source: Literal["uploaded", "generated"]
    state: Literal["proposed", "offered"]
    #: the generated schema (columns, types, coarsened ranges, common categories)
    mockSchema: dict[str, Any] | None = None
    #: what an approval names, so that it approves the schema that was shown
    schemaSha256: str = ""
    offer: MockOffer | None = None


class DryRunStatus(BaseModel):
    """A dry run: the job, and once it has ended, the check report a real job's outputs
    would have got. Every output and log of a dry run is the consumer's to read."""

    job: JobInfo
    report: dict[str, Any] | None = None
    #: files the checks would hold for review in a real job
    held: list[int] = Field(default_factory=list)
