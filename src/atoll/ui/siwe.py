"""Sign-In with Ethereum (EIP-4361): the message a browser wallet signs, and its check.

The provider writes the message (its own domain, URI, chain id, a single-use nonce, an
expiry) and the wallet signs it with ``personal_sign``; on the way back every field is read
strictly and compared with what this provider would have written, and the signer is
recovered with eth_account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct

from atoll import signing
from atoll.errors import AuthError, BadRequest

STATEMENT = "Sign in to the Atoll dashboard."
#: how long a signed message may take to come back
MESSAGE_SECONDS = 300

_MESSAGE = re.compile(
    r"(?P<domain>[^\s/]+) wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n"
    r"\n"
    r"(?P<statement>[^\n]*)\n"
    r"\n"
    r"URI: (?P<uri>[^\s]+)\n"
    r"Version: 1\n"
    r"Chain ID: (?P<chain>[0-9]{1,20})\n"
    r"Nonce: (?P<nonce>[0-9a-zA-Z]{8,64})\n"
    r"Issued At: (?P<issued>[0-9TZ:.+-]{20,40})\n"
    r"Expiration Time: (?P<expires>[0-9TZ:.+-]{20,40})"
)


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expires: datetime

    def text(self) -> str:
        return (
            f"{self.domain} wants you to sign in with your Ethereum account:\n"
            f"{self.address}\n\n{STATEMENT}\n\n"
            f"URI: {self.uri}\nVersion: 1\nChain ID: {self.chain_id}\n"
            f"Nonce: {self.nonce}\n"
            f"Issued At: {_iso(self.issued_at)}\n"
            f"Expiration Time: {_iso(self.expires)}"
        )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(text: str) -> datetime:
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("the sign-in message has a malformed time") from None
    if found.tzinfo is None:
        raise BadRequest("the sign-in message's times must name their zone")
    return found


def build(domain: str, address: str, uri: str, chain_id: int, nonce: str, now: float) -> str:
    issued = datetime.fromtimestamp(int(now), UTC)
    expires = datetime.fromtimestamp(int(now) + MESSAGE_SECONDS, UTC)
    return SiweMessage(
        domain, signing.normalise_address(address), uri, chain_id, nonce, issued, expires
    ).text()


def parse(text: str) -> SiweMessage:
    if len(text) > 2000:
        raise BadRequest("the sign-in message is too long")
    found = _MESSAGE.fullmatch(text)
    if found is None or found["statement"] != STATEMENT:
        raise BadRequest("the sign-in message is not one this provider writes")
    return SiweMessage(
        domain=found["domain"],
        address=signing.normalise_address(found["address"]),
        uri=found["uri"],
        chain_id=int(found["chain"]),
        nonce=found["nonce"],
        issued_at=_when(found["issued"]),
        expires=_when(found["expires"]),
    )


def verify(
    text: str, signature: str, domain: str, uri: str, chain_id: int, now: float
) -> SiweMessage:
    """The message, once its fields are this provider's, it is still valid, and its address
    signed it; the nonce is the caller's to consume."""
    message = parse(text)
    if message.domain != domain:
        raise AuthError(f"the sign-in message is for {message.domain}, not this provider")
    if message.uri != uri:
        raise AuthError("the sign-in message names another URI")
    if message.chain_id != chain_id:
        raise AuthError(f"the sign-in message is for chain {message.chain_id}, not {chain_id}")
    if message.expires.timestamp() <= now:
        raise AuthError("the sign-in message has expired; sign in again")
    if message.issued_at.timestamp() > now + 60:
        raise AuthError("the sign-in message was issued in the future")
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:  # eth_account raises several types for a malformed signature
        raise AuthError("the sign-in signature is malformed") from None
    if str(signer).lower() != message.address.lower():
        raise AuthError("the sign-in message was not signed by the address it names")
    return message
