"""Receipts: the checks they bind, and receipts made before there were checks."""

from __future__ import annotations

from atoll.canonical import canonical_sha256
from atoll.models.receipt import (
    Receipt,
    ReceiptAlgorithm,
    ReceiptChecks,
    ReceiptContainer,
    ReceiptEnvironment,
    ReceiptPolicy,
    Release,
    SignedRelease,
)
from atoll.signing import Key


def receipt(checks: ReceiptChecks | None = None) -> Receipt:
    return Receipt(
        provider="0x" + "1" * 40,
        chainId=1,
        jobId="j",
        consumer="0x" + "2" * 40,
        inputs=[],
        algorithm=ReceiptAlgorithm(checksum="c"),
        environment=ReceiptEnvironment(
            id="default", runtimeChecksum="r", cpu=1, memoryMb=1, diskMb=1, maxDuration=1
        ),
        policy=ReceiptPolicy(trust="raw"),
        started="",
        finished="",
        status=70,
        statusText="Job finished",
        results=[],
        checks=checks,
    )


def test_a_receipt_without_checks_hashes_as_before() -> None:
    old = receipt()
    body = old.model_dump(mode="json")
    del body["checks"]
    del body["algorithm"]["container"]  # nor an image, which came later still
    assert old.sha256() == canonical_sha256(body)


def test_the_image_and_entrypoint_are_part_of_what_is_signed() -> None:
    def ran(image: str, entrypoint: str) -> Receipt:
        r = receipt()
        r.algorithm.container = ReceiptContainer(
            image=image, entrypoint=entrypoint, containerSectionChecksum="x"
        )
        return r

    a = ran("r.example/a@sha256:" + "1" * 64, "python3 $ALGO")
    b = ran("r.example/a@sha256:" + "2" * 64, "python3 $ALGO")
    c = ran("r.example/a@sha256:" + "1" * 64, "python3 -I $ALGO")
    assert len({a.sha256(), b.sha256(), c.sha256(), receipt().sha256()}) == 4
    assert "sha256:" + "1" * 64 in a.canonical()


def test_the_checks_are_part_of_what_is_signed() -> None:
    a = receipt(ReceiptChecks(mode="auto", reportDigest="d1", released=[0], held=[1]))
    b = receipt(ReceiptChecks(mode="auto", reportDigest="d2", released=[0], held=[1]))
    assert a.sha256() != b.sha256() != receipt().sha256()


def test_a_release_record_is_signed_by_the_provider() -> None:
    key = Key.generate()
    release = Release(
        jobId="j",
        receiptSha256="r",
        reportDigest="d",
        index=1,
        filename="f.csv",
        filesize=3,
        sha256="s",
        decisions=[],
    )
    signed = SignedRelease.sign(release, key)
    assert signed.signer() == key.address
    forged = signed.model_copy(update={"release": release.model_copy(update={"index": 2})})
    assert forged.signer() != key.address
