"""Checking the image a receipt says its job ran in."""

from __future__ import annotations

from atoll.images.trust import container_section_checksum
from atoll.models.ddo import DDO, AlgorithmContainer, AlgorithmInfo, Metadata
from atoll.models.receipt import (
    Receipt,
    ReceiptAlgorithm,
    ReceiptContainer,
    ReceiptEnvironment,
    ReceiptPolicy,
    SignedReceipt,
)
from atoll.sdk.verify import check_container

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
IMAGE = "registry.example/algo/pandas"


def signed(container: ReceiptContainer | None) -> SignedReceipt:
    receipt = Receipt(
        provider="0x" + "1" * 40,
        chainId=1,
        jobId="j",
        consumer="0x" + "2" * 40,
        inputs=[],
        algorithm=ReceiptAlgorithm(did="did:atoll:a", checksum="c", container=container),
        environment=ReceiptEnvironment(
            id="e", runtimeChecksum="r", cpu=1, memoryMb=1, diskMb=1, maxDuration=1
        ),
        policy=ReceiptPolicy(trust="raw"),
        started="",
        finished="",
        status=70,
        statusText="Job finished",
        results=[],
    )
    return SignedReceipt(receipt=receipt, signature="0x")


def ran(digest: str = DIGEST, entrypoint: str = "python3 $ALGO") -> ReceiptContainer:
    return ReceiptContainer(
        image=f"{IMAGE}@{digest}",
        entrypoint=entrypoint,
        containerSectionChecksum=container_section_checksum(entrypoint, digest),
    )


def algorithm(container: AlgorithmContainer | None) -> DDO:
    meta = Metadata(name="a", type="algorithm", algorithm=AlgorithmInfo(container=container))
    return DDO(
        id="did:atoll:a",
        created="",
        owner="0x",
        metadata=meta,
        files=[],
        filesChecksum="",
        services=[],
    )


def test_a_receipt_matches_the_image_its_algorithm_declares() -> None:
    declared = AlgorithmContainer(entrypoint="python3 $ALGO", image=IMAGE, checksum=DIGEST)
    assert check_container(signed(ran()), algorithm(declared)) == []
    assert check_container(signed(None), algorithm(None)) == []


def test_another_digest_or_entrypoint_is_reported() -> None:
    declared = AlgorithmContainer(entrypoint="python3 $ALGO", image=IMAGE, checksum=DIGEST)
    assert check_container(signed(ran(OTHER)), algorithm(declared))
    assert check_container(signed(ran(entrypoint="python3 -I $ALGO")), algorithm(declared))
    assert check_container(signed(None), algorithm(declared))
    assert check_container(signed(ran()), algorithm(None))


def test_a_checksum_that_is_not_of_the_image_is_reported() -> None:
    forged = ran().model_copy(update={"image": f"{IMAGE}@{OTHER}"})
    assert check_container(signed(forged)) == [
        "container: containerSectionChecksum is not that of its image"
    ]
    tagged = ran().model_copy(update={"image": f"{IMAGE}:latest"})
    assert "not pinned by a digest" in check_container(signed(tagged))[0]
