"""Checking a signed execution receipt: its signature, its on-chain record and the result
files it names. Offline but for the chain; every mismatch is reported, named."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from atoll import signing
from atoll.errors import AuthError, BadRequest
from atoll.images.reference import is_digest
from atoll.images.trust import container_section_checksum
from atoll.models.ddo import DDO
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
    return check_releases(signed)


def check_container(signed: SignedReceipt, algorithm: DDO | None = None) -> list[str]:
    """The image the receipt says the job ran in: pinned by digest, its
    containerSectionChecksum that of this digest and entrypoint and, given the algorithm's
    DDO, the image and entrypoint the DDO declares (a job on the host interpreter names
    none, and matches only an algorithm without a container)."""
    ran = signed.receipt.algorithm.container
    info = algorithm.metadata.algorithm if algorithm is not None else None
    declared = info.container if info is not None else None
    problems = []
    if ran is not None:
        name, _, digest = ran.image.rpartition("@")
        if not name or not is_digest(digest):
            problems.append(f"container: image {ran.image} is not pinned by a digest")
        elif container_section_checksum(ran.entrypoint, digest) != ran.containerSectionChecksum:
            problems.append("container: containerSectionChecksum is not that of its image")
    if algorithm is None:
        return problems
    if declared is None:
        if ran is not None:
            problems.append(f"container: {algorithm.id} declares none, the job ran in one")
    elif ran is None:
        problems.append(f"container: the job did not run in the image {algorithm.id} declares")
    elif (
        ran.image != f"{declared.image}@{declared.checksum}"
        or ran.entrypoint != declared.entrypoint
    ):
        problems.append(
            f"container: the job ran {ran.image} ({ran.entrypoint!r}), {algorithm.id} "
            f"declares {declared.image}@{declared.checksum} ({declared.entrypoint!r})"
        )
    return problems


def check_releases(signed: SignedReceipt) -> list[str]:
    """Each release after review: signed by the receipt's provider, for this receipt and its
    check report, of a result the receipt held with the same bytes, and each decision in it
    signed by the reviewer it names."""
    problems = []
    receipt = signed.receipt
    digest = receipt.sha256()
    held = set(receipt.checks.held) if receipt.checks is not None else set()
    results = {r.index: r for r in receipt.results}
    for s in signed.releases:
        r = s.release
        where = f"release of result {r.index}"
        try:
            signer = s.signer()
        except AuthError:
            problems.append(f"{where}: malformed signature")
            continue
        if signer.lower() != receipt.provider.lower():
            problems.append(f"{where}: not signed by the provider ({signer})")
        if r.jobId != receipt.jobId or r.receiptSha256 != digest:
            problems.append(f"{where}: made for another receipt")
        if receipt.checks is None or r.reportDigest != receipt.checks.reportDigest:
            problems.append(f"{where}: made for another check report")
        entry = results.get(r.index)
        if r.index not in held or entry is None or entry.sha256 != r.sha256:
            problems.append(f"{where}: not a held result of this receipt, or other bytes")
        approvals = set()
        for d in r.decisions:
            try:
                ok = signing.recover(d.signed_text(r.jobId, r.index), d.signature)
            except AuthError:
                ok = ""
            if ok.lower() != d.reviewer.lower():
                problems.append(f"{where}: the decision of {d.reviewer} is not signed by them")
            elif d.decision == "approve":
                approvals.add(d.reviewer.lower())
        if not approvals or receipt.consumer.lower() in approvals:
            problems.append(f"{where}: no reviewer other than the consumer approved it")
    return problems


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
    """The released result files under ``directory`` against the receipt (held files are not
    expected; a file released after review is named by its release record)."""
    problems = []
    checks = signed.receipt.checks
    released = {s.release.index: s.release.filename for s in signed.releases}
    for r in signed.receipt.results:
        if checks is not None and r.index not in checks.released:
            if r.index not in released:
                continue
            r = r.model_copy(update={"filename": released[r.index]})
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
