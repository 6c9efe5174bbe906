"""On-chain Service Agreements at the provider: the whole paid flow on the embedded chain
and on anvil, every refusal with its own message and no state change, and escrow outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll import signing
from atoll.chain.errors import ChainRevert
from atoll.chain.records import ConditionState
from atoll.errors import AtollError, AuthError, Forbidden, NotFound
from atoll.models.status import JobStatus
from atoll.sdk.wallet import Wallet
from tests.helpers import Running, require_sandbox, running_provider

TOKEN = 10**18
CODE = "print('ok')"


@pytest.fixture(params=["embedded", "anvil"])
def chained(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    url = request.getfixturevalue("anvil_url") if request.param == "anvil" else ""
    with running_provider(tmp_path / "home", chain_url=url) as running:
        yield running


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def tokens(w: Wallet, address: str | None = None) -> int:
    return w.balances(address)["tokens"]


def test_paid_job_end_to_end(chained: Running, tmp_path: Path) -> None:
    pub, con = chained.publisher, chained.consumer
    did = chained.dataset(tmp_path, price=7 * TOKEN)
    assert con.wallet.registered(did)
    before = (tokens(pub.wallet), tokens(con.wallet))
    agreement = con.order(did)
    assert tokens(con.wallet) == before[1] - 7 * TOKEN  # locked in escrow
    info = con.wait(con.start(did, rawcode=CODE, agreement_id=agreement).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED
    settled = con.wallet.wait_settled(agreement)
    assert settled.compute.state is ConditionState.FULFILLED
    assert settled.escrow.state is ConditionState.FULFILLED
    assert settled.result_hash is not None
    # the hash of the job's signed receipt is what the keeper put on chain
    assert settled.result_hash.hex() == con.receipt(info.jobId).receipt.sha256()
    assert (tokens(pub.wallet), tokens(con.wallet)) == (
        before[0] + 7 * TOKEN,
        before[1] - 7 * TOKEN,
    )
    # nothing can be claimed twice
    with pytest.raises(ChainRevert):
        con.wallet.contracts.release(con.key.private_key, bytes.fromhex(agreement[2:]))
    with pytest.raises(Forbidden, match=r"already settled|all are used"):
        con.start(did, rawcode=CODE, agreement_id=agreement)
    assert tokens(pub.wallet) == before[0] + 7 * TOKEN


def refused(call, error: type[AtollError], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_refusals_each_with_its_own_message(provider: Running, tmp_path: Path) -> None:
    con, other, pub = provider.consumer, provider.other, provider.publisher
    did = provider.dataset(tmp_path, name="one", price=2 * TOKEN)
    did2 = provider.dataset(tmp_path, name="two", price=2 * TOKEN)
    mine = con.order(did)
    start_balance = tokens(con.wallet)
    c = con.wallet.contracts

    def start(agreement: str, dataset: str = did) -> None:
        con.start(dataset, rawcode=CODE, agreement_id=agreement)

    refused(lambda: start(""), AtollError, "needs a Service Agreement")
    refused(lambda: start("0x1234"), AtollError, "0x followed by 64 hex")
    refused(lambda: start("0x" + "ab" * 32), NotFound, "unknown agreement")
    refused(lambda: start(other.order(did)), Forbidden, "belongs to another consumer")
    refused(lambda: start(con.order(did2)), Forbidden, "for another dataset")
    unpaid = "0x" + c.create_agreement(con.key.private_key, did, 2 * TOKEN).hex()
    refused(lambda: start(unpaid), AtollError, "not locked in escrow")
    cheap = c.create_agreement(con.key.private_key, did, 1)
    c.lock_payment(con.key.private_key, cheap)
    refused(lambda: start("0x" + cheap.hex()), Forbidden, "pays less than the price")
    # an unapproved template cannot even create an agreement on chain
    rogue = c.deploy_template(pub.key.private_key)
    with pytest.raises(ChainRevert):
        c.create_agreement(con.key.private_key, did, 2 * TOKEN, template=rogue)
    # forged and replayed requests
    key = con.key
    nonce = key.next_nonce()
    body = {
        "dataset": {"did": did, "agreementId": mine},
        "additionalDatasets": [],
        "algorithm": {"did": "", "rawcode": CODE},
        "parameters": {},
        "environment": "default",
    }
    text = signing.message("compute", key.address, did, signing.body_digest(body), nonce)
    forged = {
        **body,
        "consumerAddress": key.address,
        "nonce": nonce,
        "signature": other.key.sign(text),
    }
    r = httpx.post(provider.url + "/api/services/compute", json=forged)
    assert r.status_code == 401
    # nothing started, nothing counted, nothing paid beyond the orders themselves
    assert con.jobs() == []
    assert provider.node.authorizer.ledger.get(mine.lower()) is None or (
        provider.node.authorizer.ledger.get(mine.lower()).used == 0  # type: ignore[union-attr]
    )
    ordered = 2 * TOKEN + 1  # did2's agreement and the cheap one; the unpaid one cost nothing
    assert tokens(con.wallet) == start_balance - ordered
    # a genuine request works, once; its replay is refused
    nonce = key.next_nonce()
    text = signing.message("compute", key.address, did, signing.body_digest(body), nonce)
    signed = {**body, "consumerAddress": key.address, "nonce": nonce, "signature": key.sign(text)}
    assert httpx.post(provider.url + "/api/services/compute", json=signed).status_code == 201
    assert httpx.post(provider.url + "/api/services/compute", json=signed).status_code == 401
    refused(lambda: start(mine), Forbidden, "all are used|already settled")
    assert len(con.jobs()) == 1


def test_time_out_and_revoked_template(provider: Running, tmp_path: Path) -> None:
    con, pub = provider.consumer, provider.publisher
    did = provider.dataset(tmp_path, price=TOKEN)
    c = con.wallet.contracts
    late = con.order(did)
    provider.node.chain.chain.increase_time(4000)  # past the service time out of 3600 s
    # refused either way: the keeper may already have refunded it when the start arrives
    with pytest.raises(Forbidden, match=r"has timed out|already settled"):
        con.start(did, rawcode=CODE, agreement_id=late)
    fresh = con.order(did)
    # governance (the provider key deployed the contracts) revokes the template
    c.revoke_template(provider.node.key.private_key, c.book.compute_template)
    with pytest.raises(Forbidden, match="template that is not approved"):
        con.start(did, rawcode=CODE, agreement_id=fresh)
    with pytest.raises(ChainRevert):
        con.order(did)  # and no new agreement can be made from it
    assert con.jobs() == [] and pub.jobs() == []


def test_refund_at_the_time_out_when_nothing_ran(provider: Running, tmp_path: Path) -> None:
    con, pub = provider.consumer, provider.publisher
    did = provider.dataset(tmp_path, price=3 * TOKEN)
    before = (tokens(pub.wallet), tokens(con.wallet))
    agreement = con.order(did)
    aid = bytes.fromhex(agreement[2:])
    # before the time out the escrow holds, and nobody can take it
    assert con.wallet.agreement(agreement).escrow.state is ConditionState.UNFULFILLED  # type: ignore[union-attr]
    with pytest.raises(ChainRevert):
        con.wallet.contracts.refund(con.key.private_key, aid)
    provider.node.chain.chain.increase_time(3700)
    provider.node.keeper.poke()
    settled = con.wallet.wait_settled(agreement)
    assert settled.compute.state is ConditionState.ABORTED
    assert (tokens(pub.wallet), tokens(con.wallet)) == before
    with pytest.raises(ChainRevert):
        con.wallet.contracts.refund(con.key.private_key, aid)
    with pytest.raises(ChainRevert):
        con.wallet.contracts.release(con.key.private_key, aid)


def test_unsigned_faucet_only_on_development_chains(provider: Running) -> None:
    r = httpx.post(provider.url + "/api/services/faucet", json={"address": "nope"})
    assert r.status_code == 400
    info = httpx.get(provider.url + "/api/services/chain").json()
    assert info["development"] is True and info["rpcUrl"].endswith("/chain")
    with pytest.raises(AuthError):
        provider.consumer.__class__(provider.url).faucet()
