"""Assets as DDOs (DID documents).

A DDO is what consumers see. The locations of an asset's files are never part of it: they are
kept by the provider in :class:`PrivateFile` records, which no API serves.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atoll.canonical import canonical_sha256
from atoll.models.output_policy import OutputPolicy

DID_PREFIX = "did:atoll:"
ParamType = Literal["text", "number", "boolean", "select"]


class ConsumerParameter(BaseModel):
    """A parameter an algorithm declares, which the consumer gives for each job."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: ParamType = "text"
    label: str = ""
    required: bool = False
    # bool before int: exact types win, so True stays True and 3 stays 3
    default: bool | int | float | str | None = None
    options: list[str] = Field(default_factory=list)


class AlgorithmContainer(BaseModel):
    """The image an algorithm runs in, with Ocean's field names: ``image`` is
    ``registry/repository`` (the registry host always named), ``tag`` a name resolved once,
    ``checksum`` the image's digest (``sha256:<64 hex>``), which is what is trusted and run.
    ``$ALGO`` in the entrypoint stands for the algorithm's path in the job."""

    model_config = ConfigDict(extra="forbid")

    entrypoint: str = Field(min_length=1, max_length=1024)
    image: str = Field(min_length=1, max_length=255)
    tag: str = Field(default="", max_length=128)
    checksum: str = Field(default="", pattern=r"^(sha256:[0-9a-f]{64})?$")

    @property
    def reference(self) -> str:
        """``image[:tag][@checksum]``, as an image reference names it."""
        text = self.image + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.checksum}" if self.checksum else "")


class AlgorithmInfo(BaseModel):
    """An algorithm asset's language, the parameters it takes and, when it does not run on
    the environment's host interpreter, its container."""

    language: str = "python"
    version: str = ""
    consumerParameters: list[ConsumerParameter] = Field(default_factory=list)
    container: AlgorithmContainer | None = None


class Provenance(BaseModel):
    """Where a derived asset came from: the job, its inputs, its algorithm, and the job's
    signed receipt, which binds them to the files."""

    jobId: str
    inputs: list[str]
    algorithm: str
    receipt: dict[str, Any]
    #: the strictest policy of the inputs when the job ran: the asset's owner may narrow its
    #: policy from there, never widen it
    inheritedPolicy: ComputePolicy | None = None


class Metadata(BaseModel):
    """What a publisher says of an asset: name, description, author, licence, tags."""

    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=10_000)
    author: str = Field(default="", max_length=256)
    license: str = Field(default="", max_length=128)
    type: Literal["dataset", "algorithm"]
    tags: list[str] = Field(default_factory=list, max_length=64)
    algorithm: AlgorithmInfo | None = None
    #: set by the provider on assets derived from a job; never accepted from a publisher
    provenance: Provenance | None = None


class TrustedAlgorithm(BaseModel):
    """An algorithm a dataset lets run on it, pinned by the checksum of its files."""

    did: str
    filesChecksum: str
    containerSectionChecksum: str = ""


class ComputePolicy(BaseModel):
    """What a dataset allows jobs: which algorithms, which network, how many jobs per
    agreement."""

    allowRawAlgorithm: bool = False
    allowNetworkAccess: bool = False
    #: with allowNetworkAccess: the only hosts ("host" or "host:port") a job may reach
    networkAllowlist: list[str] = Field(default_factory=list, max_length=64)
    publisherTrustedAlgorithms: list[TrustedAlgorithm] = Field(default_factory=list)
    publisherTrustedAlgorithmPublishers: list[str] = Field(default_factory=list)
    #: how many jobs one agreement allows
    maxJobs: int = Field(default=1, ge=1)
    #: what a job's outputs and logs must pass before its consumer may read them
    outputPolicy: OutputPolicy = Field(default_factory=OutputPolicy)


class Service(BaseModel):
    id: str
    type: Literal["access", "compute"]
    serviceEndpoint: str
    timeout: int = Field(default=3600, ge=0)
    #: what one agreement costs, in the token's smallest unit
    price: int = Field(default=0, ge=0)
    compute: ComputePolicy | None = None


class AccessOffer(BaseModel):
    """What a publisher asks for downloading an asset's files: the price of one access
    agreement and how long it serves (the provider's default time out if absent)."""

    price: int = Field(default=0, ge=0, lt=2**256)
    timeout: int | None = Field(default=None, gt=0)


class FileInfo(BaseModel):
    """What a consumer may know of a file: never its location."""

    index: int
    contentType: str = "application/octet-stream"
    contentLength: int


class DDO(BaseModel):
    """An asset's public description (DID document): metadata, files (never their location),
    services."""

    model_config = ConfigDict(populate_by_name=True)

    context: list[str] = Field(default=["https://w3id.org/did/v1"], alias="@context")
    id: str
    version: str = "4.1.0"
    created: str
    owner: str
    metadata: Metadata
    files: list[FileInfo]
    #: sha256 over the files' own sha256 digests, in order: lets a trust list pin content
    filesChecksum: str
    services: list[Service]

    def service(self, kind: Literal["access", "compute"]) -> Service | None:
        return next((s for s in self.services if s.type == kind), None)

    def public_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class PrivateFile(BaseModel):
    """A file of an asset as the provider knows it. Never leaves the provider."""

    index: int
    location: str
    sha256: str
    size: int
    contentType: str = "application/octet-stream"


def files_checksum(digests: list[str]) -> str:
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def make_did(owner: str, metadata: Metadata, checksum: str) -> str:
    """A DID derived from content: the same owner, metadata and files give the same DID."""
    return DID_PREFIX + canonical_sha256(
        {"owner": owner.lower(), "metadata": metadata.model_dump(mode="json"), "files": checksum}
    )


def iso_time(ts: float) -> str:
    """A POSIX time as the ISO 8601 UTC text used in DDOs and status objects."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso_time(time.time())
