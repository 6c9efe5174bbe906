"""Workflows (what the provider asks the operator to run) and job status objects."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from atoll.errors import BadRequest
from atoll.models.environment import Resources
from atoll.models.status import JobStatus


class InputFile(BaseModel):
    """One dataset file as the provider found it at start; provider → operator only."""

    location: str
    #: the published checksum: the engine runs the job only on these bytes
    sha256: str
    #: size, mtime_ns, ctime_ns, ino, dev of the file when that checksum was last confirmed
    fingerprint: list[int] = Field(min_length=5, max_length=5)
    #: a file the provider keeps itself (a derived asset's), not a publisher's
    held: bool = False


class WorkflowInput(BaseModel):
    did: str
    #: the DDO as JSON, written to /data/ddos/<did>
    ddo: dict[str, Any]
    #: host locations of the files, in index order; provider → operator only
    locations: list[str]
    #: the same files with what they must still hold; a workflow without them does not run
    files: list[InputFile] = Field(default_factory=list)


class ContainerRun(BaseModel):
    """An algorithm's image runtime as the engine runs it: the image pinned by digest (the
    provider resolved any tag before the job was registered) and the entrypoint, in which
    ``$ALGO`` stands for the algorithm's path inside the job."""

    #: ``registry/repository@sha256:<64 hex>``; never a bare tag
    image: str = Field(min_length=1, max_length=512)
    #: e.g. ``python3 $ALGO``; split like a shell word list, never run through a shell
    entrypoint: str = Field(min_length=1, max_length=1024)


class WorkflowAlgorithm(BaseModel):
    did: str = ""
    rawcode: str = ""
    #: sha256 of the code that runs
    checksum: str = ""
    ddo: dict[str, Any] | None = None
    #: host location of a published algorithm's code; provider → operator only
    location: str = ""
    customData: dict[str, Any] = Field(default_factory=dict)
    #: run in this image instead of the environment's host interpreter
    container: ContainerRun | None = None


class PublishOutput(BaseModel):
    """Asked for at start: the job's outputs become a new asset owned by the consumer."""

    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=10_000)


class Workflow(BaseModel):
    #: chosen by the provider, so that its ledger and the operator name the job alike;
    #: empty: the operator chooses
    jobId: str = Field(default="", pattern=r"^([0-9a-f]{32})?$")
    owner: str
    agreementId: str = ""
    #: every agreement the job runs under, one per dataset, in input order
    agreements: list[str] = Field(default_factory=list)
    #: why the algorithm was allowed: "raw", "trusted-algorithm" or "trusted-publisher"
    trust: str = ""
    publishOutput: PublishOutput | None = None
    environment: str = "default"
    #: what the environment granted the job (the request, capped)
    resources: Resources = Field(default_factory=Resources)
    #: hosts the job may reach through the engine's proxy; empty: no network at all
    egress: list[str] = Field(default_factory=list)
    inputs: list[WorkflowInput] = Field(min_length=1)
    algorithm: WorkflowAlgorithm


#: a status lists at most this many results (the first ones); ``resultCount`` says how many
#: there are, and the provider's ``computeResults`` pages through all of them
STATUS_RESULTS = 64
#: a page of ``computeResults`` holds at most this many
RESULTS_PAGE = 1000
#: a status text is cut at this many characters
STATUS_TEXT_MAX = 1024


class ResultFile(BaseModel):
    """One file of a job's results: output or log, with its size and sha256."""

    index: int
    filename: str
    filesize: int
    type: Literal["output", "algorithmLog", "configurationLog", "publishLog"]
    sha256: str


def result_path(directory: Path, filename: str) -> Path:
    """Where a result named ``filename`` goes under ``directory``. A name that would leave
    the directory (absolute, or with ``..``) is refused: it comes from the provider."""
    rel = PurePosixPath(filename)
    if not filename or rel.is_absolute() or ".." in rel.parts:
        raise BadRequest(f"refusing result name {filename!r}")
    return directory.joinpath(*rel.parts)


class HeldFile(BaseModel):
    """What a consumer may know of an output or log the checks held: its index, size and why;
    never a name or text the job chose."""

    index: int
    kind: Literal["output", "log"]
    filesize: int
    #: "held" (waiting for reviewers), "rejected", or "changed" (its bytes moved after the check)
    state: str
    reasons: list[str] = Field(default_factory=list)
    #: distinct reviewers who approved so far, and how many are needed
    approvals: int = 0
    approvalsRequired: int = 1


class JobReview(BaseModel):
    """The disclosure checks' outcome for an ended job, as its consumer sees it."""

    #: "released" (everything), "awaiting review", or "reviewed" (decided, some not released)
    state: str
    #: the output policy's mode the job ran under
    mode: str
    #: sha256 of the check report, which the receipt binds
    reportDigest: str
    released: list[int] = Field(default_factory=list)
    held: list[HeldFile] = Field(default_factory=list)


class JobInfo(BaseModel):
    """The status object served to the job's owner (Ocean's field names)."""

    jobId: str
    owner: str
    agreementId: str = ""
    did: str
    inputDID: list[str]
    algoDID: str = ""
    environment: str = "default"
    status: int
    statusText: str
    dateCreated: str
    dateStarted: str = ""
    dateFinished: str = ""
    stopreq: int = 0
    removed: int = 0
    #: 1 for the next job to start in its environment; None once the job has left the queue
    queuePosition: int | None = None
    #: the first results (at most STATUS_RESULTS of them)
    results: list[ResultFile] = Field(default_factory=list)
    #: how many results the job has, and the sha256 of their whole list (canonical JSON)
    resultCount: int = 0
    resultsSha256: str = ""
    agreements: list[str] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    #: hosts the job could reach through the engine's proxy
    network: list[str] = Field(default_factory=list)
    algorithmChecksum: str = ""
    #: the image the algorithm runs in (pinned by digest) and its entrypoint; None: the
    #: environment's host interpreter
    container: ContainerRun | None = None
    trust: str = ""
    publishOutput: PublishOutput | None = None
    #: the asset the job's outputs became, when publishOutput was asked for
    derivedDID: str = ""
    #: what the disclosure checks released and held, once the job has ended
    review: JobReview | None = None
    #: when the job's results and logs are deleted (its environment's storage time after
    #: its end); empty: kept until the consumer deletes them
    dateExpires: str = ""
    #: the storage time has passed: results and logs were deleted (the receipt is kept)
    resultsExpired: bool = False

    @property
    def terminal(self) -> bool:
        return JobStatus(self.status).terminal

    @property
    def all_results_listed(self) -> bool:
        return len(self.results) >= self.resultCount


class ResultsPage(BaseModel):
    """A page of a job's results, in index order."""

    jobId: str
    resultCount: int
    resultsSha256: str
    offset: int
    results: list[ResultFile]
