"""Bad requests get a clear 4xx and change nothing (no job, no result, no nonce burnt by a
forger). These run over real HTTP against a provider on a loopback port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from atoll import signing
from atoll.errors import AuthError, BadRequest, Forbidden, NotFound
from atoll.models.ddo import ComputePolicy, Metadata
from tests.helpers import Running

CODE = "print('hi')"


def start_body(did: str, agreement: str = "") -> dict:
    return {
        "dataset": {"did": did, "agreementId": agreement},
        "additionalDatasets": [],
        "algorithm": {"did": "", "rawcode": CODE},
        "parameters": {},
        "environment": "default",
    }


def signed_start(key, did: str, nonce: int, agreement: str = "") -> dict:
    body = start_body(did, agreement)
    text = signing.message("compute", key.address, did, signing.body_digest(body), nonce)
    return {**body, "consumerAddress": key.address, "nonce": nonce, "signature": key.sign(text)}


def error_of(response: httpx.Response) -> str:
    assert 400 <= response.status_code < 500, response.text
    return response.json()["error"]


def test_unsigned_and_forged_starts_are_refused_and_create_no_job(
    provider: Running, tmp_path: Path
) -> None:
    did = provider.dataset(tmp_path)
    me = provider.consumer.key
    url = provider.url + "/api/services/compute"
    missing = {**start_body(did), "consumerAddress": me.address, "nonce": 5}
    r = httpx.post(url, json=missing)
    assert r.status_code == 400 and "signature" in error_of(r)
    forged = signed_start(provider.other.key, did, 7)
    forged["consumerAddress"] = me.address  # someone else's signature under my address
    r = httpx.post(url, json=forged)
    assert r.status_code == 401 and "does not match" in error_of(r)
    garbage = {**signed_start(me, did, 8), "signature": "0x1234"}
    r = httpx.post(url, json=garbage)
    assert r.status_code == 401 and "malformed" in error_of(r)
    tampered = signed_start(me, did, 9)
    tampered["algorithm"]["rawcode"] = "import os"  # body changed after signing
    r = httpx.post(url, json=tampered)
    assert r.status_code == 401
    # nothing was accepted, so no nonce was consumed: a forger cannot burn my nonces
    assert provider.consumer.nonce(me.address) == 0
    assert provider.consumer.jobs() == []


def test_reused_nonce_is_refused(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    agreement = provider.consumer.order(did)
    body = signed_start(provider.consumer.key, did, provider.consumer.key.next_nonce(), agreement)
    url = provider.url + "/api/services/compute"
    assert httpx.post(url, json=body).status_code == 201
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and "nonce" in error_of(r)
    assert len(provider.consumer.jobs()) == 1


def test_malformed_bodies_get_400_with_a_message(provider: Running) -> None:
    url = provider.url + "/api/services/compute"
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)
    r = httpx.post(url, json={"dataset": 3})
    assert r.status_code == 400 and "dataset" in error_of(r)
    r = httpx.get(provider.url + "/api/services/nonce", params={"userAddress": "nope"})
    assert r.status_code == 400 and "address" in error_of(r)


def test_unknown_did_and_policy_refusals(provider: Running, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="unknown asset"):
        provider.consumer.start("did:atoll:" + "0" * 64, rawcode=CODE)
    closed = provider.dataset(tmp_path, name="closed", policy=ComputePolicy())
    with pytest.raises(Forbidden, match="does not allow raw algorithms"):
        provider.consumer.start(closed, rawcode=CODE)
    with pytest.raises(BadRequest, match="either as a DID or as raw code"):
        provider.consumer.start(closed)
    with pytest.raises(BadRequest, match="unknown compute environment"):
        provider.consumer.start(closed, rawcode=CODE, environment="gpu-xl")
    assert provider.consumer.jobs() == []


def test_only_allowed_publishers_publish(provider: Running, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("x")
    with pytest.raises(AuthError, match="may not publish"):
        provider.other.publish(Metadata(name="n", type="dataset"), [str(f)])
    assert provider.publisher.search()[0] == 0


def test_ddo_and_search_never_reveal_file_locations(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path, name="secret-place")
    for path in (f"/api/services/assets/{did}", "/api/services/assets?q=secret"):
        text = httpx.get(provider.url + path).text
        assert did in text
        assert str(tmp_path) not in text and "secret-place-0.csv" not in text


def test_openapi_is_served(provider: Running) -> None:
    spec = httpx.get(provider.url + "/openapi.json").json()
    assert "/api/services/compute" in spec["paths"]
    assert "/api/services/computeResult" in spec["paths"]


def test_publishers_cannot_claim_provenance(provider: Running, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("x")
    fake = Metadata.model_validate(
        {
            "name": "n",
            "type": "dataset",
            "provenance": {"jobId": "j", "inputs": [], "algorithm": "a", "receipt": {}},
        }
    )
    with pytest.raises(BadRequest, match="provenance"):
        provider.publisher.publish(fake, [str(f)])
