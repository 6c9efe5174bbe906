"""Checking a signed execution receipt: its signature, its on-chain record and the result
files it names. Offline but for the chain; every mismatch is reported, named."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from atoll.errors import AuthError, BadRequest
from atoll.models.job import result_path
from atoll.models.receipt import SignedReceipt

if TYPE_CHECKING:
    from atoll.chain.contracts import Contracts


def check_signature(signed: SignedReceipt) -> list[str]:
    try:
        signer = signed.signer()
    except AuthError:
        return ["signature: malformed"]
    if signer.lower() != signed.receipt.provider.lower():
        return [
            "signature: not made by the provider the receipt names "
            f"({signed.receipt.provider}); the receipt was changed after signing, or "
            f"signed by {signer}"
        ]
    return []


def check_chain(signed: SignedReceipt, contracts: Contracts) -> list[str]:
    """The receipt's hash against the hash the keeper recorded for each of its agreements."""
    problems = []
    receipt = signed.receipt
    if contracts.chain.chain_id != receipt.chainId:
        return [
            f"chain: the receipt is for chain {receipt.chainId}, "
            f"connected to {contracts.chain.chain_id}"
        ]
    digest = receipt.sha256()
    agreements = [i.agreementId for i in receipt.inputs if i.agreementId]
    if not agreements:
        return ["chain: the receipt names no agreement to check against"]
    for aid in agreements:
        agreement = contracts.agreement(bytes.fromhex(aid.removeprefix("0x")))
        if agreement is None:
            problems.append(f"chain: agreement {aid} does not exist")
        elif agreement.result_hash is None:
            problems.append(f"chain: agreement {aid} has no result recorded (not settled yet?)")
        elif agreement.result_hash.hex() != digest:
            problems.append(
                f"chain: agreement {aid} records {agreement.result_hash.hex()}, "
                f"the receipt hashes to {digest}"
                + (" (the agreement covers several jobs)" if agreement.max_jobs > 1 else "")
            )
    return problems


def check_files(signed: SignedReceipt, directory: Path) -> list[str]:
    problems = []
    for r in signed.receipt.results:
        try:
            path = result_path(directory, r.filename)
        except BadRequest:
            problems.append(f"result {r.index}: unsafe name {r.filename!r}")
            continue
        if not path.is_file():
            problems.append(f"result {r.index} ({r.filename}): missing")
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != r.sha256 or len(data) != r.filesize:
            problems.append(
                f"result {r.index} ({r.filename}): sha256 {digest}, the receipt says {r.sha256}"
            )
    return problems
