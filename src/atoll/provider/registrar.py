"""The DID is the publisher's before the asset is public.

A DID is derived from its owner, metadata and files, and registering it on chain is first
come, first served: an asset made public before its DID was registered could be claimed by
anyone watching the catalogue, who would then be paid for it. So the provider registers the
DID first, in its own name for an instant and handed at once to the asset's owner (naming
this provider as the one who serves it), and only then makes the asset public. A DID already
registered to someone else is refused; one its owner registered beforehand is accepted.
"""

from __future__ import annotations

from atoll.chain.deployment import ChainNode, address_of, ddo_checksum
from atoll.chain.errors import ChainError, ChainRevert
from atoll.chain.records import DidRecord
from atoll.errors import Conflict, RemoteError
from atoll.models.ddo import DDO


class DidRegistrar:
    def __init__(self, node: ChainNode) -> None:
        self.node = node
        self.provider = address_of(node.key)

    def claim(self, ddo: DDO) -> None:
        """Make ``ddo.id`` its owner's on chain, naming this provider; raise
        :class:`Conflict` if someone else holds it."""
        try:
            self._claim(ddo)
        except ChainRevert as exc:
            raise Conflict(f"{ddo.id} could not be registered on chain: {exc.reason}") from None
        except ChainError as exc:
            raise RemoteError(f"the chain could not be reached: {exc.message}", 503) from None

    def _claim(self, ddo: DDO) -> None:
        c = self.node.contracts
        record = c.did_record(ddo.id)
        if record is None:
            try:
                c.register_did(
                    self.node.key, ddo.id, ddo_checksum(ddo.public_json()), [self.provider]
                )
            except ChainRevert:
                record = c.did_record(ddo.id)  # someone registered it in the meantime
                if record is None:
                    raise
            else:
                record = c.did_record(ddo.id)
                assert record is not None
        owner = ddo.owner.lower()
        if record.owner.lower() == self.provider.lower() and owner != record.owner.lower():
            # ours only in the owner's name (registered just now, or before a crash): only
            # this owner's content has this DID, so it is theirs
            c.transfer_did(self.node.key, ddo.id, ddo.owner)
            record = c.did_record(ddo.id)
            assert record is not None
        self._check(ddo, record)

    def _check(self, ddo: DDO, record: DidRecord) -> None:
        if record.owner.lower() != ddo.owner.lower():
            raise Conflict(
                f"{ddo.id} is already registered on chain by another address: it cannot be "
                "published, and nothing would pay its owner"
            )
        if self.provider.lower() not in {p.lower() for p in record.providers}:
            raise Conflict(
                f"{ddo.id} is registered on chain without this provider among its "
                "providers: add it (DIDRegistry.setProviders) and publish again"
            )
