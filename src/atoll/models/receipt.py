"""Signed execution receipts: what ran, on what, how, and what came out, signed by the
provider so that anyone can check a result without trusting whoever shows it.

The signature is EIP-191 over keccak256 of the receipt's canonical JSON (sorted keys, no
spaces), by the provider's key; the sha256 of the same canonical JSON is what the keeper
records on chain when it fulfils compute.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from atoll import signing
from atoll.canonical import canonical_json, canonical_sha256

RECEIPT_VERSION = 1


class ReceiptInput(BaseModel):
    did: str
    #: the dataset's files checksum as published (sha256 over its files' sha256)
    checksum: str
    agreementId: str = ""


class ReceiptContainer(BaseModel):
    """The image a job ran in: pinned by digest, with the entrypoint it ran, and Ocean's
    ``containerSectionChecksum`` of the two (what a trust list pins)."""

    #: ``registry/repository@sha256:<64 hex>``
    image: str
    entrypoint: str
    containerSectionChecksum: str


class ReceiptAlgorithm(BaseModel):
    did: str = ""
    #: sha256 of the code that ran
    checksum: str
    #: absent for a job on the environment's host interpreter
    container: ReceiptContainer | None = None


class ReceiptEnvironment(BaseModel):
    id: str
    runtimeChecksum: str
    cpu: float
    memoryMb: int
    diskMb: int
    maxDuration: float


class ReceiptPolicy(BaseModel):
    #: hosts the job could reach; empty: no network
    network: list[str] = Field(default_factory=list)
    #: why the algorithm was allowed to run
    trust: str


class ReceiptResult(BaseModel):
    index: int
    filename: str
    filesize: int
    type: str
    sha256: str


class ReceiptChecks(BaseModel):
    """The disclosure checks' decision at the job's end: the check report it binds, and which
    results were released at once (the others are held; a held result is named in the
    receipt by index, size and sha256 only)."""

    mode: str
    reportDigest: str
    released: list[int]
    held: list[int]


class Receipt(BaseModel):
    version: int = RECEIPT_VERSION
    provider: str
    chainId: int
    jobId: str
    consumer: str
    inputs: list[ReceiptInput]
    algorithm: ReceiptAlgorithm
    environment: ReceiptEnvironment
    policy: ReceiptPolicy
    started: str
    finished: str
    status: int
    statusText: str
    results: list[ReceiptResult]
    #: absent for a job whose outputs were not checked
    checks: ReceiptChecks | None = None

    def _body(self) -> dict[str, object]:
        # a receipt without checks, or of a job without an image, hashes as it did before
        # they existed
        exclude: dict[str, Any] = {}
        if self.checks is None:
            exclude["checks"] = True
        if self.algorithm.container is None:
            exclude["algorithm"] = {"container"}
        return self.model_dump(mode="json", exclude=exclude or None)

    def canonical(self) -> str:
        return canonical_json(self._body())

    def sha256(self) -> str:
        return canonical_sha256(self._body())


class ReviewDecision(BaseModel):
    """One reviewer's decision on a held result, with the signature of the request that made
    it: ``signing.message("review", reviewer, jobId, index, bodyDigest, nonce)``."""

    reviewer: str
    decision: Literal["approve", "reject"]
    reason: str
    bodyDigest: str
    nonce: int
    signature: str

    def signed_text(self, job_id: str, index: int) -> str:
        return signing.message("review", self.reviewer, job_id, index, self.bodyDigest, self.nonce)


class Release(BaseModel):
    """A held result released after review: what was checked (the report digest and the
    file's sha256), the decisions that released it, and its name, now that it may be known."""

    jobId: str
    receiptSha256: str
    reportDigest: str
    index: int
    filename: str
    filesize: int
    sha256: str
    decisions: list[ReviewDecision]

    def canonical(self) -> str:
        return canonical_json(self.model_dump(mode="json"))


class SignedRelease(BaseModel):
    """A release record signed by the provider, like the receipt it extends."""

    release: Release
    signature: str

    @classmethod
    def sign(cls, release: Release, key: signing.Key) -> SignedRelease:
        return cls(release=release, signature=key.sign(release.canonical()))

    def signer(self) -> str:
        return signing.recover(self.release.canonical(), self.signature)


class SignedReceipt(BaseModel):
    """A job's execution receipt with the provider's signature over it."""

    receipt: Receipt
    signature: str
    #: held results released since the receipt was signed, each signed on its own
    releases: list[SignedRelease] = Field(default_factory=list)

    @classmethod
    def sign(cls, receipt: Receipt, key: signing.Key) -> SignedReceipt:
        return cls(receipt=receipt, signature=key.sign(receipt.canonical()))

    def signer(self) -> str:
        return signing.recover(self.receipt.canonical(), self.signature)
