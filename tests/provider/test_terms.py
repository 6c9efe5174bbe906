"""The agreement's terms are the dataset's, and the DID is its owner's: agreements with
other jobs, time out or price are refused at start; a DID registered by someone else can
neither be published nor paid to whoever holds it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import BadRequest, Conflict, Forbidden, NotFound
from atoll.models.ddo import ComputePolicy, Metadata, files_checksum, make_did
from tests.helpers import Running, require_sandbox, running_provider

TOKEN = 10**18
CODE = "print('ok')"
YEAR = 365 * 24 * 3600


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def ordered(p: Running, did: str, price: int, max_jobs: int = 1, timeout: int = 3600) -> str:
    c = p.consumer.wallet.contracts
    key = p.consumer.key.private_key
    aid = c.create_agreement(key, did, price, max_jobs=max_jobs, timeout=timeout)
    c.lock_payment(key, aid)
    return "0x" + aid.hex()


def test_terms_other_than_the_datasets_are_refused_at_start(
    provider: Running, tmp_path: Path
) -> None:
    con = provider.consumer
    did = provider.dataset(
        tmp_path, price=2 * TOKEN, policy=ComputePolicy(allowRawAlgorithm=True, maxJobs=2)
    )

    def start(aid: str) -> None:
        con.start(did, rawcode=CODE, agreement_id=aid)

    many = ordered(provider, did, 2 * TOKEN, max_jobs=50)
    with pytest.raises(Forbidden, match="allows 50 job"):
        start(many)
    forever = ordered(provider, did, 2 * TOKEN, max_jobs=2, timeout=31 * YEAR)
    with pytest.raises(Forbidden, match=r"times out after \d+ s, not the 3600 s"):
        start(forever)
    short = ordered(provider, did, 2 * TOKEN, max_jobs=2, timeout=60)
    with pytest.raises(Forbidden, match="times out after 60 s"):
        start(short)
    dear = ordered(provider, did, 3 * TOKEN, max_jobs=2)
    with pytest.raises(Forbidden, match="pays more than the price"):
        start(dear)
    cheap = ordered(provider, did, TOKEN, max_jobs=2)
    with pytest.raises(Forbidden, match="pays less than the price"):
        start(cheap)
    assert con.jobs() == []
    # the dataset's own terms are accepted (the SDK orders with them)
    good = con.order(did)
    start(good)
    assert len(con.jobs()) == 1


def test_a_squatted_did_cannot_be_published(provider: Running, tmp_path: Path) -> None:
    pub, stranger = provider.publisher, provider.other
    data = provider.data_dir() / "data.csv"
    data.write_text("a,b\n1,2\n")
    data.chmod(0o644)
    meta = Metadata(name="sales", type="dataset")
    # anyone who knows the content can work the DID out, and register it first
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    did = make_did(pub.key.address, meta, files_checksum([digest]))
    stranger.wallet.contracts.register_did(
        stranger.key.private_key, did, b"\1" * 32, [stranger.key.address]
    )
    with pytest.raises(Conflict, match="already registered on chain by another address"):
        pub.publish(meta, [str(data)], ComputePolicy(allowRawAlgorithm=True), price=TOKEN)
    with pytest.raises(NotFound):
        pub.asset(did)  # never made public


def test_a_did_registered_by_its_owner_first_is_published(
    provider: Running, tmp_path: Path
) -> None:
    pub = provider.publisher
    data = provider.data_dir() / "data.csv"
    data.write_text("x\n1\n")
    data.chmod(0o644)
    meta = Metadata(name="mine", type="dataset")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    did = make_did(pub.key.address, meta, files_checksum([digest]))
    pub.wallet.contracts.register_did(
        pub.key.private_key, did, b"\1" * 32, [provider.node.key.address]
    )
    assert pub.publish(meta, [str(data)], ComputePolicy()).id == did


def test_published_did_is_the_publishers_on_chain(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    record = provider.publisher.wallet.contracts.did_record(did)
    assert record is not None
    assert record.owner.lower() == provider.publisher.key.address.lower()
    assert [p.lower() for p in record.providers] == [provider.node.key.address.lower()]


def test_no_job_pays_anyone_but_the_owner(provider: Running, tmp_path: Path) -> None:
    pub, con, stranger = provider.publisher, provider.consumer, provider.other
    did = provider.dataset(tmp_path, price=TOKEN)
    before = con.order(did)  # pays the publisher
    # the DID passes to someone else on chain: agreements would now pay them
    c = pub.wallet.contracts
    c.transfer_did(pub.key.private_key, did, stranger.key.address)
    with pytest.raises(BadRequest, match="not registered on chain to its owner"):
        con.order(did)  # the SDK does not order what would pay someone else
    c2 = con.wallet.contracts
    after = "0x" + c2.create_agreement(con.key.private_key, did, TOKEN).hex()
    c2.lock_payment(con.key.private_key, bytes.fromhex(after[2:]))
    for aid in (before, after):
        with pytest.raises(Forbidden, match="registered on chain to"):
            con.start(did, rawcode=CODE, agreement_id=aid)
    assert con.jobs() == []
    # handed back: the agreement made meanwhile still pays the other address, and is refused
    stranger.wallet.contracts.transfer_did(stranger.key.private_key, did, pub.key.address)
    with pytest.raises(Forbidden, match="pays another address than the owner"):
        con.start(did, rawcode=CODE, agreement_id=after)
    con.start(did, rawcode=CODE, agreement_id=before)
    assert len(con.jobs()) == 1
