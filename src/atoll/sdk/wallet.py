"""The consumer's and publisher's side of the chain: register DIDs, order agreements, read
balances. Transactions are signed locally with the caller's key and sent to the chain the
provider names (its own embedded chain over JSON-RPC, or an external node), through plain
JSON-RPC: no EVM, compiler or web3 in the client."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from atoll.chain.errors import ChainTimeout
from atoll.chain.records import Agreement, ConditionState, ddo_checksum, did_bytes
from atoll.errors import BadRequest
from atoll.models.ddo import DDO
from atoll.signing import Key

if TYPE_CHECKING:
    from atoll.chain.contracts import Contracts


class Wallet:
    """Your key on the chain a provider names: register DIDs, order and pay for agreements,
    read agreements and balances. ``info`` is the provider's ``/chain`` answer
    (:meth:`ProviderClient.chain_info`)."""

    def __init__(self, info: dict[str, Any], key: Key) -> None:
        self.info = info
        self.key = key

    @cached_property
    def contracts(self) -> Contracts:
        # eth-abi and the JSON-RPC client load with the first chain call, not with the SDK
        from atoll.chain.book import AddressBook
        from atoll.chain.contracts import Contracts
        from atoll.chain.light import LightChain

        book = AddressBook.from_dict(self.info["addresses"])
        chain = LightChain(
            str(self.info["rpcUrl"]), chain_id=book.chain_id, dev=bool(self.info.get("development"))
        )
        return Contracts(chain, book)

    @property
    def provider_address(self) -> str:
        return str(self.info["providerAddress"])

    def register(self, ddo: DDO) -> None:
        """Register an asset's DID in your name, with the provider that serves it. The
        provider does this itself when it publishes; doing it first is the other way to
        hold the DID before the asset is public."""
        self.contracts.register_did(
            self.key.private_key, ddo.id, ddo_checksum(ddo.public_json()), [self.provider_address]
        )

    def update(self, ddo: DDO) -> None:
        self.contracts.update_checksum(
            self.key.private_key, ddo.id, ddo_checksum(ddo.public_json())
        )

    def order(self, ddo: DDO) -> str:
        """Create an agreement for ``ddo``'s compute service and lock its price in escrow."""
        service = ddo.service("compute")
        if service is None or service.compute is None:
            raise BadRequest(f"{ddo.id} offers no compute service")
        c = self.contracts
        owner = c.did_owner(ddo.id)
        if owner is None or owner.lower() != ddo.owner.lower():
            # the template pays the DID's owner on chain: never order to pay anyone else
            raise BadRequest(
                f"{ddo.id} is not registered on chain to its owner {ddo.owner}: "
                "an agreement would not pay them"
            )
        aid = c.create_agreement(
            self.key.private_key,
            ddo.id,
            service.price,
            max_jobs=service.compute.maxJobs,
            timeout=service.timeout,
        )
        c.lock_payment(self.key.private_key, aid)
        return "0x" + aid.hex()

    def order_access(self, ddo: DDO) -> str:
        """Create an agreement for ``ddo``'s access service (downloading its files) and lock
        its price in escrow."""
        service = ddo.service("access")
        if service is None:
            raise BadRequest(f"{ddo.id} offers no access service: its files cannot be downloaded")
        c = self.contracts
        if not c.book.has_access:
            raise BadRequest("the provider's deployment has no access template")
        owner = c.did_owner(ddo.id)
        if owner is None or owner.lower() != ddo.owner.lower():
            raise BadRequest(
                f"{ddo.id} is not registered on chain to its owner {ddo.owner}: "
                "an agreement would not pay them"
            )
        aid = c.create_access_agreement(
            self.key.private_key, ddo.id, service.price, timeout=service.timeout
        )
        c.lock_payment(self.key.private_key, aid)
        return "0x" + aid.hex()

    def agreement(self, agreement_id: str) -> Agreement | None:
        return self.contracts.agreement(bytes.fromhex(agreement_id.removeprefix("0x")))

    def wait_settled(self, agreement_id: str, timeout: float = 60.0) -> Agreement:
        """Wait until the keeper has settled the agreement's escrow (paid or refunded).
        Settlement follows the job's end by one or two transactions; this checks the chain
        every 50 ms, since a chain offers nothing to wait on."""
        deadline = time.monotonic() + timeout
        while True:
            agreement = self.agreement(agreement_id)
            if agreement is None:
                raise BadRequest(f"unknown agreement {agreement_id}")
            if agreement.escrow.state is not ConditionState.UNFULFILLED:
                # the conditions are read one call each, so the first read may have caught
                # compute before the keeper's abort and escrow after its refund: the escrow
                # settles last, so one more read sees every condition as it ended
                again = self.agreement(agreement_id)
                return again if again is not None else agreement
            if time.monotonic() > deadline:
                raise ChainTimeout(f"agreement {agreement_id} was not settled in {timeout}s")
            time.sleep(0.05)

    def balances(self, address: str | None = None) -> dict[str, int]:
        who = address or self.key.address
        return {
            "ether": self.contracts.chain.balance(who),
            "tokens": self.contracts.balance_of(who),
        }

    def registered(self, did: str) -> bool:
        return self.contracts.did_record(did_bytes(did)) is not None
