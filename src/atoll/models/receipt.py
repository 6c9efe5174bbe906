"""Signed execution receipts: what ran, on what, how, and what came out, signed by the
provider so that anyone can check a result without trusting whoever shows it.

The signature is EIP-191 over keccak256 of the receipt's canonical JSON (sorted keys, no
spaces), by the provider's key; the sha256 of the same canonical JSON is what the keeper
records on chain when it fulfils compute.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from atoll import signing
from atoll.canonical import canonical_json, canonical_sha256

RECEIPT_VERSION = 1


class ReceiptInput(BaseModel):
    did: str
    #: the dataset's files checksum as published (sha256 over its files' sha256)
    checksum: str
    agreementId: str = ""


class ReceiptAlgorithm(BaseModel):
    did: str = ""
    #: sha256 of the code that ran
    checksum: str


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

    def canonical(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    def sha256(self) -> str:
        return canonical_sha256(self.model_dump(mode="json"))


class SignedReceipt(BaseModel):
    """A job's execution receipt with the provider's signature over it."""

    receipt: Receipt
    signature: str

    @classmethod
    def sign(cls, receipt: Receipt, key: signing.Key) -> SignedReceipt:
        return cls(receipt=receipt, signature=key.sign(receipt.canonical()))

    def signer(self) -> str:
        return signing.recover(self.receipt.canonical(), self.signature)
