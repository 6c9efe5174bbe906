"""Request signatures: the same keys, addresses and signatures as Ethereum wallets make."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

from atoll.errors import AuthError
from atoll.signing import Key, checksum_address, recover, sign, verify


def test_address_and_signature_are_eth_accounts() -> None:
    key = Key.generate()
    account = Account.from_key(key.private_key)
    assert key.address == account.address
    text = "compute0xabc123"
    theirs = Account.sign_message(encode_defunct(primitive=keccak(text=text)), key.private_key)
    assert sign(key.private_key, text) == "0x" + bytes(theirs.signature).hex()
    assert recover(text, key.sign(text)) == key.address
    assert verify(text, key.sign(text), key.address.lower()) == key.address


def test_a_signature_over_other_text_names_another_signer() -> None:
    key = Key.generate()
    assert recover("status1", key.sign("status2")) != key.address


@pytest.mark.parametrize("signature", ["", "0x", "0xzz", "0x" + "11" * 64, "0x" + "11" * 64 + "05"])
def test_a_malformed_signature_is_an_auth_error(signature: str) -> None:
    with pytest.raises(AuthError):
        recover("text", signature)


def test_checksum_addresses_are_eip55() -> None:
    address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
    assert checksum_address(address) == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    with pytest.raises(ValueError):
        checksum_address("0x1234")


@pytest.mark.parametrize("raw", ["11" * 31, "00" * 32, "ff" * 32, "not hex"])
def test_a_key_file_without_a_key_is_refused(raw: str, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("0x" + raw)
    with pytest.raises(AuthError, match="key file"):
        Key.load(path)
