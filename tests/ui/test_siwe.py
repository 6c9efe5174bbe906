"""Sign-In with Ethereum: only a message this provider would write, unexpired, signed by the
address it names, is accepted."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from atoll.errors import AuthError, BadRequest
from atoll.signing import Key
from atoll.ui import siwe

NOW = 1_800_000_000.0
DOMAIN, URI, CHAIN = "127.0.0.1:8030", "http://127.0.0.1:8030/ui", 1337


def signed(text: str, key: Key) -> str:
    sig = Account.sign_message(encode_defunct(text=text), key.private_key).signature.hex()
    return sig if sig.startswith("0x") else "0x" + sig


def test_a_message_signed_by_its_address_is_accepted() -> None:
    key = Key.generate()
    text = siwe.build(DOMAIN, key.address, URI, CHAIN, "abcdef0123456789", NOW)
    found = siwe.verify(text, signed(text, key), DOMAIN, URI, CHAIN, NOW + 10)
    assert found.address == key.address and found.nonce == "abcdef0123456789"


@pytest.mark.parametrize(
    ("domain", "uri", "chain", "later", "why"),
    [
        ("evil.example", URI, CHAIN, 10, "is for evil.example"),
        (DOMAIN, "http://evil.example/ui", CHAIN, 10, "another URI"),
        (DOMAIN, URI, 1, 10, "chain 1, not 1337"),
        (DOMAIN, URI, CHAIN, siwe.MESSAGE_SECONDS + 1, "expired"),
    ],
)
def test_another_domain_uri_chain_or_an_expired_message_is_refused(
    domain: str, uri: str, chain: int, later: int, why: str
) -> None:
    key = Key.generate()
    text = siwe.build(domain, key.address, uri, chain, "abcdef0123456789", NOW)
    with pytest.raises(AuthError, match=why):
        siwe.verify(text, signed(text, key), DOMAIN, URI, CHAIN, NOW + later)


def test_a_message_signed_by_another_key_or_altered_is_refused() -> None:
    key, other = Key.generate(), Key.generate()
    text = siwe.build(DOMAIN, key.address, URI, CHAIN, "abcdef0123456789", NOW)
    with pytest.raises(AuthError, match="not signed by"):
        siwe.verify(text, signed(text, other), DOMAIN, URI, CHAIN, NOW)
    with pytest.raises(BadRequest):
        siwe.verify(text + "\nResources: x", signed(text, key), DOMAIN, URI, CHAIN, NOW)
    with pytest.raises(AuthError, match="malformed"):
        siwe.verify(text, "0x1234", DOMAIN, URI, CHAIN, NOW)
