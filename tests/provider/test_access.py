"""The data access service over real HTTP, on the embedded chain and on anvil: order on
chain, a download broken off and resumed with Range (bytes verified), the escrow paid to the
publisher (balances exact); every refusal a clear 4xx; refund after the time out."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll.chain.book import AddressBook
from atoll.chain.records import ConditionState, TemplateState
from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.models.ddo import AccessOffer, ComputePolicy, Metadata
from atoll.node import build_provider
from atoll.sdk import ProviderClient
from atoll.signing import Key
from tests.helpers import Running, running_provider
from tests.homes import init_home

TOKEN = 10**18
#: larger than what loopback socket buffers hold, so that a download broken off is not
#: already sent whole
SIZE = 32 * (1 << 20) + 12345


@pytest.fixture(params=["embedded", "anvil"])
def chained(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    url = request.getfixturevalue("anvil_url") if request.param == "anvil" else ""
    with running_provider(tmp_path / "home", chain_url=url) as running:
        yield running


def offer(p: Running, price: int = 2 * TOKEN, timeout: int | None = None) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    f = p.data_dir() / "big.bin"
    f.write_bytes(data)
    f.chmod(0o644)
    ddo = p.publisher.publish(
        Metadata(name="big", type="dataset"),
        [str(f)],
        ComputePolicy(),
        access=AccessOffer(price=price, timeout=timeout),
    )
    return ddo.id, data


def tokens(c: ProviderClient, address: str | None = None) -> int:
    return c.wallet.balances(address)["tokens"]


def signed_params(c: ProviderClient, did: str, aid: str, index: int = 0) -> dict[str, object]:
    return {
        "did": did,
        "agreementId": aid,
        "index": index,
        **c._signed("access", did, aid, index),
    }


def test_order_download_resume_and_release(chained: Running, tmp_path: Path) -> None:
    p = chained
    pub, con = p.publisher, p.consumer
    did, data = offer(p)
    before = (tokens(pub), tokens(con))
    aid = con.access_order(did)
    assert tokens(con) == before[1] - 2 * TOKEN
    # a download broken off after the first MiB leaves a partial file behind
    out = tmp_path / "out"
    out.mkdir()
    with httpx.stream(
        "GET", f"{p.url}/api/services/access", params=signed_params(con, did, aid)
    ) as r:
        assert r.status_code == 200
        assert r.headers["accept-ranges"] == "bytes"
        assert int(r.headers["content-length"]) == SIZE
        got = b""
        for chunk in r.iter_bytes(1 << 16):
            got += chunk
            if len(got) >= 1 << 20:
                break
    (out / "file-0.part").write_bytes(got)
    a = con.wallet.agreement(aid)
    assert a is not None and a.access.state is ConditionState.UNFULFILLED  # not served yet
    seen: list[int] = []
    saved = con.access_download(did, out, aid, on_progress=lambda _i, done, _s: seen.append(done))
    assert saved == [out / "file-0"]
    assert (out / "file-0").read_bytes() == data
    assert not (out / "file-0.part").exists()
    assert seen[0] > len(got) > 0 and seen[-1] == SIZE  # resumed, not started over
    settled = con.wallet.wait_settled(aid)
    assert settled.access.state is ConditionState.FULFILLED
    assert settled.escrow.state is ConditionState.FULFILLED
    assert (tokens(pub), tokens(con)) == (before[0] + 2 * TOKEN, before[1] - 2 * TOKEN)
    files = con.access_files(did, aid)
    assert files[0]["downloads"] == 1 and files[0]["sha256"] == hashlib.sha256(data).hexdigest()


def range_get(c: ProviderClient, url: str, did: str, aid: str, rng: str) -> httpx.Response:
    return httpx.get(
        f"{url}/api/services/access", params=signed_params(c, did, aid), headers={"Range": rng}
    )


def test_ranges(chained: Running) -> None:
    p = chained
    did, data = offer(p)
    aid = p.consumer.access_order(did)
    r = range_get(p.consumer, p.url, did, aid, "bytes=10-19")
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{SIZE}"
    r = range_get(p.consumer, p.url, did, aid, "bytes=-5")
    assert r.status_code == 206 and r.content == data[-5:]
    r = range_get(p.consumer, p.url, did, aid, f"bytes={SIZE}-")
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{SIZE}"
    assert "past the end" in r.json()["error"]
    assert p.consumer.access_files(did, aid)[0]["downloads"] == 1  # "-5" reached the end
    # a part that reaches the last byte ends a download: counted again, up to the cap
    r = range_get(p.consumer, p.url, did, aid, f"bytes={SIZE - 100}-")
    assert r.status_code == 206 and r.content == data[-100:]
    assert p.consumer.access_files(did, aid)[0]["downloads"] == 2
    range_get(p.consumer, p.url, did, aid, f"bytes={SIZE - 1}-")
    r = range_get(p.consumer, p.url, did, aid, "bytes=0-9")
    assert r.status_code == 403 and "complete downloads" in r.json()["error"]


def test_refusals(chained: Running) -> None:
    p = chained
    did, _data = offer(p)
    con, other = p.consumer, p.other
    url = f"{p.url}/api/services/access"
    # no agreement, and an unpaid one: 402
    r = httpx.get(url, params=signed_params(con, did, ""))
    assert r.status_code == 402 and "atoll access order" in r.json()["error"]
    c = con.wallet.contracts
    service = con.asset(did).service("access")
    assert service is not None and con.key is not None
    unpaid = c.create_access_agreement(con.key.private_key, did, 2 * TOKEN, timeout=service.timeout)
    r = httpx.get(url, params=signed_params(con, did, "0x" + unpaid.hex()))
    assert r.status_code == 402 and "not locked" in r.json()["error"]
    aid = con.access_order(did)
    # a second consumer, with the first's agreement
    r = httpx.get(url, params=signed_params(other, did, aid))
    assert r.status_code == 403 and "another consumer" in r.json()["error"]
    # a forged signature: the consumer's address, signed by another key
    params = signed_params(other, did, aid)
    params["consumerAddress"] = con.key.address
    r = httpx.get(url, params=params)
    assert r.status_code == 401
    # a replayed request: the same signed query twice
    params = signed_params(con, did, aid)
    with httpx.stream("GET", url, params=params, headers={"Range": "bytes=0-9"}) as first:
        assert first.status_code == 206
    r = httpx.get(url, params=params, headers={"Range": "bytes=0-9"})
    assert r.status_code == 401 and "already used" in r.json()["error"]
    # a compute agreement is not an access agreement
    compute = c.create_agreement(con.key.private_key, did, 0, max_jobs=1, timeout=3600)
    r = httpx.get(url, params=signed_params(con, did, "0x" + compute.hex()))
    assert r.status_code == 403 and "not a data access agreement" in r.json()["error"]
    # nothing leaks where the file is
    assert str(p.data) not in r.text


def test_timed_out_refused_and_refunded(tmp_path: Path) -> None:
    with running_provider(tmp_path / "home", settle_margin_seconds=1) as p:
        did, _data = offer(p, timeout=100)
        con = p.consumer
        before = tokens(con)
        aid = con.access_order(did)
        p.node.chain.chain.increase_time(150)
        p.node.chain.chain.mine()
        r = httpx.get(f"{p.url}/api/services/access", params=signed_params(con, did, aid))
        # refused as timed out, or, where the keeper already saw the time out, as refunded
        assert r.status_code == 403
        assert re.search(r"timed out|was aborted and refunded", r.json()["error"])
        p.node.keeper.poke()
        settled = con.wallet.wait_settled(aid)
        assert settled.access.state is ConditionState.ABORTED
        assert settled.escrow.state is ConditionState.ABORTED
        assert tokens(con) == before


def test_no_access_service_no_download(chained: Running) -> None:
    did = chained.dataset()
    with pytest.raises(Exception, match="offers no access service"):
        chained.consumer.access_order(did)


def test_signing_message_binds_the_file(chained: Running) -> None:
    """A signature for file 0 is no signature for file 1."""
    p = chained
    did, _ = offer(p)
    aid = p.consumer.access_order(did)
    params = signed_params(p.consumer, did, aid, 0)
    params["index"] = 1
    r = httpx.get(f"{p.url}/api/services/access", params=params)
    assert r.status_code == 401 and "signature" in r.json()["error"]


def strip_access(book_file: Path, governance: str | None = None) -> None:
    """Make the address book look like one written before the access service."""
    data = json.loads(book_file.read_text())
    for field in ("access_condition", "access_escrow", "access_template"):
        data.pop(field, None)
    if governance is not None:
        data["governance"] = governance
    book_file.write_text(json.dumps(data))


def test_an_older_deployment_gets_the_access_contracts_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    settings = load_settings(home, port=0)
    build_provider(settings).chain.close()  # the node's first start records its identity
    strip_access(settings.address_book_file)
    node = build_provider(settings)
    try:
        book = node.chain.contracts.book
        assert book.has_access
        assert AddressBook.load(settings.address_book_file) == book
        assert node.chain.contracts.template_state(book.access_template) is (TemplateState.APPROVED)
    finally:
        node.chain.close()
        node.db.dispose()


def test_an_older_deployment_of_another_governance_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    settings = load_settings(home, port=0)
    build_provider(settings).chain.close()
    strip_access(settings.address_book_file, governance=Key.generate().address)
    with pytest.raises(ConfigError, match=r"no access template.*not its governance"):
        build_provider(settings)
