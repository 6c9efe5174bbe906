"""What the contracts hold, as plain values: DID records, agreements and their conditions,
decoded events, and the 32-byte ids they are keyed by. Reading them needs no chain code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_hash.auto import keccak

from atoll.canonical import canonical_sha256
from atoll.signing import checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\x00" * 32


class ConditionState(IntEnum):
    """The state of one of an agreement's conditions on chain."""

    UNINITIALIZED = 0
    UNFULFILLED = 1
    FULFILLED = 2
    ABORTED = 3


class TemplateState(IntEnum):
    """The state of an agreement template in the template store."""

    UNINITIALIZED = 0
    PROPOSED = 1
    APPROVED = 2
    REVOKED = 3


@dataclass(frozen=True)
class DidRecord:
    """A DID as the registry holds it: owner, DDO checksum and providers."""

    did: bytes
    owner: str
    checksum: bytes
    providers: tuple[str, ...]
    updated_block: int


@dataclass(frozen=True)
class Condition:
    """One condition of an agreement. Times are block timestamps (seconds)."""

    condition_id: bytes
    agreement_id: bytes
    contract: str
    state: ConditionState
    #: Not fulfillable before this time.
    time_lock: int
    #: Only abortable after this time; 0 = no time out.
    time_out: int
    updated_at: int

    def timed_out(self, now: int) -> bool:
        return self.time_out != 0 and now > self.time_out


@dataclass(frozen=True)
class Agreement:
    """An agreement as stored on chain (conditions: lock, compute or access, escrow)."""

    agreement_id: bytes
    did: bytes
    template: str
    consumer: str
    max_jobs: int
    created_at: int
    created_block: int
    price: int
    receiver: str
    token: str
    conditions: tuple[Condition, ...]
    #: Hash of the result manifest recorded when compute was fulfilled, else None.
    result_hash: bytes | None = None
    #: "compute", or "access" for an agreement of the access template
    kind: str = "compute"

    @property
    def lock(self) -> Condition:
        return self.conditions[0]

    @property
    def compute(self) -> Condition:
        return self.conditions[1]

    @property
    def escrow(self) -> Condition:
        return self.conditions[2]

    @property
    def access(self) -> Condition:
        """The access condition of an access agreement (the compute condition's place)."""
        return self.conditions[1]

    @property
    def deadline(self) -> int:
        """When the compute (or access) condition times out (block timestamp)."""
        return self.compute.time_out

    def compute_allowed(self, consumer: str, now: int) -> bool:
        """May ``consumer`` start jobs now (job counting against max_jobs aside)?"""
        return (
            checksum_address(consumer) == self.consumer
            and self.lock.state is ConditionState.FULFILLED
            and self.compute.state is ConditionState.UNFULFILLED
            and not self.compute.timed_out(now)
        )


@dataclass(frozen=True)
class ChainEvent:
    """A decoded event of one of the deployment's contracts."""

    contract: str
    name: str
    address: str
    block_number: int
    tx_hash: bytes
    log_index: int
    args: dict[str, Any] = field(default_factory=dict)


def did_bytes(did: str | bytes) -> bytes:
    """The 32-byte on-chain id of a DID.

    32 bytes pass through; ``did:<method>:<64 hex>`` and bare 64-hex strings are
    decoded; any other string is hashed (keccak256 of its UTF-8).
    """
    if isinstance(did, bytes | bytearray):
        if len(did) != 32:
            raise ValueError("a DID id is 32 bytes")
        return bytes(did)
    tail = did.rsplit(":", 1)[-1].removeprefix("0x")
    if len(tail) == 64:
        try:
            return bytes.fromhex(tail)
        except ValueError:
            pass
    return bytes(keccak(did.encode()))


def new_agreement_id() -> bytes:
    return os.urandom(32)


def ddo_checksum(ddo: dict[str, Any]) -> bytes:
    """What the DID registry records: sha256 of the DDO's canonical JSON."""
    return bytes.fromhex(canonical_sha256(ddo))
