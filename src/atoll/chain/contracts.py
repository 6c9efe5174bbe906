"""Typed access to Atoll's contracts: deploy them, drive agreements, read state and events.

The flow of one compute job, in calls::

    book = Contracts.deploy(chain, governance)          # once per chain
    c = Contracts(chain, book)
    c.register_did(publisher, did, checksum, [provider.address])
    aid = c.create_agreement(consumer, did, price, max_jobs=1, timeout=3600)
    c.lock_payment(consumer, aid)                        # approves the token if needed
    c.fulfil_compute(provider, aid, manifest_hash)       # after the job, by owner/provider
    c.release(anyone, aid)                               # pays the publisher
    # or, job failed / timed out:
    c.abort_compute(provider_or_anyone_after_timeout, aid); c.refund(anyone, aid)

Data access runs the same way through the access template: ``create_access_agreement``,
``lock_payment``, then ``fulfil_access`` (files served) or ``abort_access``, and ``release``
or ``refund`` (which pick the agreement's own escrow).

Agreement ids and DIDs are 32 bytes (``bytes``); addresses are checksummed strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from .abi import AbiEvent, ContractAbi
from .base import Chain, Receipt, Signer, checksum, signer_address
from .book import AddressBook, code_of
from .compile import CONTRACT_NAMES, Artifact, load_artifacts
from .errors import ChainError
from .interfaces import shipped_abis
from .records import (
    ZERO32,
    ZERO_ADDRESS,
    Agreement,
    ChainEvent,
    Condition,
    ConditionState,
    DidRecord,
    TemplateState,
    did_bytes,
    new_agreement_id,
)
from .units import TOKEN

__all__ = ["EVENT_BLOCK_STEP", "Contracts"]

#: Default bound on the blocks one log query covers (see :meth:`Contracts.events`).
EVENT_BLOCK_STEP = 2_000


def _b32(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


class Contracts:
    """The deployed contracts of one :class:`AddressBook` on one :class:`Chain`."""

    def __init__(
        self,
        chain: Chain,
        book: AddressBook,
        *,
        artifacts: Mapping[str, Artifact] | None = None,
        cache_dir: Path | str | None = None,
    ) -> None:
        if book.chain_id != chain.chain_id:
            raise ChainError(
                f"address book is for chain {book.chain_id}, connected to {chain.chain_id}"
            )
        self.chain = chain
        self.book = book
        self._artifacts = artifacts
        self._cache_dir = cache_dir
        # the ABIs shipped with the package: reading and calling needs no compiler
        abis = {n: a.abi for n, a in artifacts.items()} if artifacts is not None else shipped_abis()
        self.abis: dict[str, ContractAbi] = {n: ContractAbi(abis[n]) for n in CONTRACT_NAMES}
        self._by_address: dict[str, str] = {a.lower(): n for n, a in book.contracts().items()}
        self._events: dict[tuple[str, bytes], tuple[str, AbiEvent]] = {}
        for name, address in book.contracts().items():
            for ev in self.abis[code_of(name)].events.values():
                self._events[(address.lower(), ev.topic)] = (name, ev)
        self._template_tokens: dict[str, str] = {}

    @cached_property
    def artifacts(self) -> Mapping[str, Artifact]:
        """The compiled contracts (bytecode too): only deploying needs them."""
        if self._artifacts is not None:
            return self._artifacts
        return load_artifacts(cache_dir=self._cache_dir)

    # -- deployment -------------------------------------------------------------

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        governance: Signer,
        *,
        faucet: bool | None = None,
        faucet_cap: int = 1_000 * TOKEN,
        initial_supply: int = 1_000_000_000 * TOKEN,
        token_name: str = "Atoll Token",
        token_symbol: str = "ATL",
        cache_dir: Path | str | None = None,
    ) -> AddressBook:
        """Deploy all contracts from ``governance`` and approve the compute and access
        templates.

        The token's faucet is enabled on development chains unless ``faucet`` says
        otherwise; the initial supply goes to ``governance``.
        """
        arts = load_artifacts(cache_dir=cache_dir)
        from .base import as_account

        gov = as_account(governance)
        enable_faucet = chain.is_dev if faucet is None else faucet

        def deploy_one(name: str, *args: Any) -> tuple[str, int]:
            art = arts[name]
            init = art.bytecode + ContractAbi(art.abi).encode_constructor(args)
            receipt = chain.transact(gov, None, init)
            if receipt.contract_address is None:
                raise ChainError(f"deploying {name} created no contract")
            return receipt.contract_address, receipt.block_number

        token, first_block = deploy_one(
            "AtollToken", token_name, token_symbol, 18, initial_supply, enable_faucet, faucet_cap
        )
        did_registry, _ = deploy_one("DIDRegistry")
        template_store, _ = deploy_one("TemplateStore")
        agreement_store, _ = deploy_one("AgreementStore", template_store)
        lock, _ = deploy_one("LockPaymentCondition", agreement_store)
        compute, _ = deploy_one("ComputeExecutionCondition", agreement_store, did_registry, lock)
        escrow, _ = deploy_one("EscrowPaymentCondition", agreement_store, lock, compute)
        template, _ = deploy_one(
            "ComputeTemplate", agreement_store, did_registry, token, lock, compute, escrow
        )
        book = AddressBook(
            chain_id=chain.chain_id,
            governance=gov.address,
            deployed_block=first_block,
            token=token,
            did_registry=did_registry,
            template_store=template_store,
            agreement_store=agreement_store,
            lock_payment=lock,
            compute_execution=compute,
            escrow_payment=escrow,
            compute_template=template,
        )
        contracts = cls(chain, book, artifacts=arts)
        contracts.propose_template(gov, template)
        contracts.approve_template(gov, template)
        return contracts.deploy_access(gov)

    def deploy_access(self, governance: Signer) -> AddressBook:
        """Add the access service's contracts to this deployment (the access condition, an
        escrow paying on it, and the access template, approved); returns the address book
        that names them. Only the deployment's governance may approve the template."""
        arts = self.artifacts
        b = self.book

        def deploy_one(name: str, *args: Any) -> str:
            art = arts[name]
            init = art.bytecode + ContractAbi(art.abi).encode_constructor(args)
            receipt = self.chain.transact(governance, None, init)
            if receipt.contract_address is None:
                raise ChainError(f"deploying {name} created no contract")
            return receipt.contract_address

        access = deploy_one("AccessCondition", b.agreement_store, b.did_registry, b.lock_payment)
        escrow = deploy_one("EscrowPaymentCondition", b.agreement_store, b.lock_payment, access)
        template = deploy_one(
            "AccessTemplate",
            b.agreement_store,
            b.did_registry,
            b.token,
            b.lock_payment,
            access,
            escrow,
        )
        self.propose_template(governance, template)
        self.approve_template(governance, template)
        return AddressBook.from_dict(
            {
                **b.to_dict(),
                "access_condition": access,
                "access_escrow": escrow,
                "access_template": template,
            }
        )

    def deploy_template(self, deployer: Signer) -> str:
        """Deploy another ComputeTemplate wired to this deployment (not yet approved)."""
        art = self.artifacts["ComputeTemplate"]
        b = self.book
        init = art.bytecode + self.abis["ComputeTemplate"].encode_constructor(
            [
                b.agreement_store,
                b.did_registry,
                b.token,
                b.lock_payment,
                b.compute_execution,
                b.escrow_payment,
            ]
        )
        receipt = self.chain.transact(deployer, None, init)
        if receipt.contract_address is None:
            raise ChainError("deploying ComputeTemplate created no contract")
        return receipt.contract_address

    # -- low level --------------------------------------------------------------

    def call(self, contract: str, fn: str, *args: Any, address: str | None = None) -> Any:
        """Call view ``fn`` of ``contract`` (by name; ``address`` overrides the book's)."""
        f = self.abis[code_of(contract)].function(fn)
        out = self.chain.call(address or self.book.address_of(contract), f.encode(args))
        return f.decode(out)

    def transact(
        self,
        signer: Signer,
        contract: str,
        fn: str,
        *args: Any,
        address: str | None = None,
        gas: int | None = None,
    ) -> Receipt:
        """Send a transaction calling ``fn`` of ``contract`` and wait for it."""
        f = self.abis[code_of(contract)].function(fn)
        target = address or self.book.address_of(contract)
        return self.chain.transact(signer, target, f.encode(args), gas=gas)

    # -- DID registry -----------------------------------------------------------

    def register_did(
        self,
        owner: Signer,
        did: str | bytes,
        checksum_: bytes = ZERO32,
        providers: Sequence[str] = (),
    ) -> Receipt:
        """Register ``did`` owned by ``owner``, with its DDO checksum and providers."""
        return self.transact(
            owner,
            "DIDRegistry",
            "register",
            did_bytes(did),
            _b32(checksum_),
            [checksum(p) for p in providers],
        )

    def update_checksum(self, owner: Signer, did: str | bytes, checksum_: bytes) -> Receipt:
        return self.transact(
            owner, "DIDRegistry", "updateChecksum", did_bytes(did), _b32(checksum_)
        )

    def set_providers(self, owner: Signer, did: str | bytes, providers: Sequence[str]) -> Receipt:
        return self.transact(
            owner, "DIDRegistry", "setProviders", did_bytes(did), [checksum(p) for p in providers]
        )

    def transfer_did(self, owner: Signer, did: str | bytes, new_owner: str) -> Receipt:
        return self.transact(
            owner, "DIDRegistry", "transferOwnership", did_bytes(did), checksum(new_owner)
        )

    def did_record(self, did: str | bytes) -> DidRecord | None:
        """The DID's record, or None when it is not registered."""
        d = did_bytes(did)
        owner, chk, providers, updated = self.call("DIDRegistry", "getRecord", d)
        if owner == ZERO_ADDRESS:
            return None
        return DidRecord(
            did=d,
            owner=owner,
            checksum=bytes(chk),
            providers=tuple(providers),
            updated_block=int(updated),
        )

    def did_owner(self, did: str | bytes) -> str | None:
        owner = str(self.call("DIDRegistry", "owner", did_bytes(did)))
        return None if owner == ZERO_ADDRESS else owner

    def is_provider(self, did: str | bytes, account: str) -> bool:
        return bool(self.call("DIDRegistry", "isProvider", did_bytes(did), checksum(account)))

    # -- templates --------------------------------------------------------------

    def propose_template(self, governance: Signer, template: str) -> Receipt:
        return self.transact(governance, "TemplateStore", "propose", checksum(template))

    def approve_template(self, governance: Signer, template: str) -> Receipt:
        return self.transact(governance, "TemplateStore", "approve", checksum(template))

    def revoke_template(self, governance: Signer, template: str) -> Receipt:
        return self.transact(governance, "TemplateStore", "revoke", checksum(template))

    def template_state(self, template: str) -> TemplateState:
        return TemplateState(self.call("TemplateStore", "templateState", checksum(template)))

    # -- agreements -------------------------------------------------------------

    def create_agreement(
        self,
        consumer: Signer,
        did: str | bytes,
        price: int,
        *,
        max_jobs: int = 1,
        timeout: int = 3600,
        agreement_id: bytes | None = None,
        template: str | None = None,
    ) -> bytes:
        """Create a compute agreement for ``consumer``; returns its id.

        ``timeout`` (seconds) bounds the compute condition: after it, anyone may
        abort it and the consumer gets the payment back. ``max_jobs`` comes from
        the asset's compute service (default 1).
        """
        aid = _b32(agreement_id) if agreement_id is not None else new_agreement_id()
        self.transact(
            consumer,
            "ComputeTemplate",
            "createAgreement",
            aid,
            did_bytes(did),
            int(price),
            int(max_jobs),
            int(timeout),
            address=template,
        )
        return aid

    def create_access_agreement(
        self,
        consumer: Signer,
        did: str | bytes,
        price: int,
        *,
        timeout: int = 3600,
        agreement_id: bytes | None = None,
    ) -> bytes:
        """Create a data access agreement for ``consumer``; returns its id. After
        ``timeout`` seconds, anyone may abort it and the consumer gets the payment back."""
        aid = _b32(agreement_id) if agreement_id is not None else new_agreement_id()
        self.transact(
            consumer,
            "AccessTemplate",
            "createAgreement",
            aid,
            did_bytes(did),
            int(price),
            int(timeout),
        )
        return aid

    def is_access(self, template: str) -> bool:
        """Whether agreements of ``template`` are data access agreements."""
        return bool(self.book.access_template) and (
            template.lower() == self.book.access_template.lower()
        )

    def _escrow_of(self, template: str) -> str:
        return "AccessEscrowPayment" if self.is_access(template) else "EscrowPaymentCondition"

    def _agreement_core(self, agreement_id: bytes) -> tuple[Any, ...]:
        raw = self.call("AgreementStore", "getAgreement", _b32(agreement_id))
        if raw[1] == ZERO_ADDRESS:
            raise ChainError(f"no agreement 0x{agreement_id.hex()}")
        return tuple(raw)

    def _terms(self, template: str, agreement_id: bytes) -> tuple[int, str, str]:
        price, receiver = self.call("ComputeTemplate", "terms", agreement_id, address=template)
        token = self._template_tokens.get(template)
        if token is None:
            token = str(self.call("ComputeTemplate", "token", address=template))
            self._template_tokens[template] = token
        return int(price), str(receiver), token

    def condition(self, condition_id: bytes) -> Condition:
        aid, type_ref, state, time_lock, time_out, updated = self.call(
            "AgreementStore", "getCondition", _b32(condition_id)
        )
        return Condition(
            condition_id=bytes(condition_id),
            agreement_id=bytes(aid),
            contract=str(type_ref),
            state=ConditionState(state),
            time_lock=int(time_lock),
            time_out=int(time_out),
            updated_at=int(updated),
        )

    def agreement(self, agreement_id: bytes) -> Agreement | None:
        """The agreement with its terms and condition states, or None if unknown."""
        raw = self.call("AgreementStore", "getAgreement", _b32(agreement_id))
        did, template, consumer, max_jobs, created_at, created_block, condition_ids = raw
        if template == ZERO_ADDRESS:
            return None
        price, receiver, token = self._terms(template, agreement_id)
        conditions = tuple(self.condition(bytes(c)) for c in condition_ids)
        # read after the states: a hash is recorded in the same transaction that fulfils
        # compute, so a fulfilled state read first always finds its hash
        access = self.is_access(template)
        result = (
            b""
            if access
            else bytes(self.call("ComputeExecutionCondition", "resultHash", agreement_id))
        )
        fulfilled = len(conditions) > 1 and conditions[1].state is ConditionState.FULFILLED
        return Agreement(
            agreement_id=bytes(agreement_id),
            did=bytes(did),
            template=template,
            consumer=consumer,
            max_jobs=int(max_jobs),
            created_at=int(created_at),
            created_block=int(created_block),
            price=price,
            receiver=receiver,
            token=token,
            conditions=conditions,
            result_hash=result if fulfilled and not access else None,
            kind="access" if access else "compute",
        )

    def is_compute_authorised(self, agreement_id: bytes, consumer: str) -> bool:
        """On-chain check: consumer's agreement, payment locked, compute open, in time."""
        a = self.call("AgreementStore", "getAgreement", _b32(agreement_id))
        if a[1] == ZERO_ADDRESS:
            return False
        return bool(
            self.call(
                "ComputeTemplate",
                "isComputeAuthorised",
                agreement_id,
                checksum(consumer),
                address=a[1],
            )
        )

    def is_access_authorised(self, agreement_id: bytes, consumer: str) -> bool:
        """On-chain check: consumer's access agreement, payment locked, not aborted, in
        time."""
        a = self.call("AgreementStore", "getAgreement", _b32(agreement_id))
        if a[1] == ZERO_ADDRESS or not self.is_access(str(a[1])):
            return False
        return bool(
            self.call(
                "AccessTemplate",
                "isAccessAuthorised",
                agreement_id,
                checksum(consumer),
                address=a[1],
            )
        )

    def result_hash(self, agreement_id: bytes) -> bytes:
        return bytes(self.call("ComputeExecutionCondition", "resultHash", _b32(agreement_id)))

    def lock_payment(self, consumer: Signer, agreement_id: bytes) -> Receipt:
        """Lock the agreement's price in escrow, approving the token first if needed."""
        _did, template, *_ = self._agreement_core(agreement_id)
        price, _receiver, token = self._terms(template, agreement_id)
        if (
            token == self.book.token
            and self.allowance(signer_address(consumer), self.book.lock_payment) < price
        ):
            self.approve(consumer, self.book.lock_payment, price)
        return self.transact(
            consumer,
            "LockPaymentCondition",
            "fulfil",
            agreement_id,
            self.book.address_of(self._escrow_of(template)),
            token,
            price,
        )

    def fulfil_compute(self, provider: Signer, agreement_id: bytes, result_hash: bytes) -> Receipt:
        """Mark the job delivered (DID owner or provider), recording its manifest hash."""
        did, _template, consumer, _mj, _ca, _cb, condition_ids = self._agreement_core(agreement_id)
        return self.transact(
            provider,
            "ComputeExecutionCondition",
            "fulfil",
            agreement_id,
            did,
            consumer,
            condition_ids[0],
            _b32(result_hash),
        )

    def abort_compute(self, caller: Signer, agreement_id: bytes) -> Receipt:
        """Abort compute: DID owner/provider any time, anyone after the time out."""
        did, _template, consumer, _mj, _ca, _cb, condition_ids = self._agreement_core(agreement_id)
        return self.transact(
            caller,
            "ComputeExecutionCondition",
            "abort",
            agreement_id,
            did,
            consumer,
            condition_ids[0],
        )

    def fulfil_access(self, provider: Signer, agreement_id: bytes) -> Receipt:
        """Mark the agreement's files served (DID owner or provider)."""
        did, _template, consumer, _mj, _ca, _cb, condition_ids = self._agreement_core(agreement_id)
        return self.transact(
            provider, "AccessCondition", "fulfil", agreement_id, did, consumer, condition_ids[0]
        )

    def abort_access(self, caller: Signer, agreement_id: bytes) -> Receipt:
        """Abort access: DID owner/provider any time, anyone after the time out."""
        did, _template, consumer, _mj, _ca, _cb, condition_ids = self._agreement_core(agreement_id)
        return self.transact(
            caller, "AccessCondition", "abort", agreement_id, did, consumer, condition_ids[0]
        )

    def _escrow(self, caller: Signer, agreement_id: bytes, fn: str) -> Receipt:
        did, template, consumer, *_ = self._agreement_core(agreement_id)
        price, receiver, token = self._terms(template, agreement_id)
        return self.transact(
            caller,
            self._escrow_of(template),
            fn,
            agreement_id,
            did,
            token,
            price,
            receiver,
            consumer,
        )

    def release(self, caller: Signer, agreement_id: bytes) -> Receipt:
        """Pay the escrowed price to the publisher (compute or access fulfilled). Once
        only."""
        return self._escrow(caller, agreement_id, "release")

    def refund(self, caller: Signer, agreement_id: bytes) -> Receipt:
        """Return the escrowed price to the consumer (compute or access aborted). Once
        only."""
        return self._escrow(caller, agreement_id, "refund")

    # -- token ------------------------------------------------------------------

    def faucet(self, account: Signer, amount: int) -> Receipt:
        """Mint ``amount`` tokens to ``account`` (development deployments only)."""
        return self.transact(account, "AtollToken", "faucet", int(amount))

    def balance_of(self, address: str) -> int:
        return int(self.call("AtollToken", "balanceOf", checksum(address)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.call("AtollToken", "allowance", checksum(owner), checksum(spender)))

    def approve(self, owner: Signer, spender: str, amount: int) -> Receipt:
        return self.transact(owner, "AtollToken", "approve", checksum(spender), int(amount))

    def transfer(self, sender: Signer, to: str, amount: int) -> Receipt:
        return self.transact(sender, "AtollToken", "transfer", checksum(to), int(amount))

    # -- events -----------------------------------------------------------------

    def decode_logs(self, logs: Iterable[Any]) -> list[ChainEvent]:
        """Decode logs of this deployment's contracts; others are skipped."""
        out: list[ChainEvent] = []
        for log in logs:
            if not log.topics:
                continue
            hit = self._events.get((log.address.lower(), log.topics[0]))
            if hit is None:
                continue
            contract, ev = hit
            out.append(
                ChainEvent(
                    contract=contract,
                    name=ev.name,
                    address=log.address,
                    block_number=log.block_number,
                    tx_hash=log.tx_hash,
                    log_index=log.log_index,
                    args=ev.decode(log.topics, log.data),
                )
            )
        return out

    def events(
        self,
        from_block: int,
        to_block: int | None = None,
        *,
        names: Iterable[str] | None = None,
        step: int = EVENT_BLOCK_STEP,
    ) -> list[ChainEvent]:
        """Decoded events in ``[from_block, to_block]`` (default: the head).

        Reads in ranges of at most ``step`` blocks and never before the
        deployment's first block, so the cost follows the range asked for, not
        the chain's length. ``names`` keeps only events of those names.
        """
        if step < 1:
            raise ValueError("step must be positive")
        end = self.chain.block_number() if to_block is None else int(to_block)
        start = max(int(from_block), self.book.deployed_block)
        wanted = set(names) if names is not None else None
        topics: list[bytes | Sequence[bytes] | None] | None = None
        if wanted is not None:
            topic_set = {
                ev.topic for (_a, _t), (_c, ev) in self._events.items() if ev.name in wanted
            }
            if not topic_set:
                return []
            topics = [sorted(topic_set)]
        addresses = list(self.book.contracts().values())
        out: list[ChainEvent] = []
        while start <= end:
            stop = min(start + step - 1, end)
            logs = self.chain.get_logs(start, stop, address=addresses, topics=topics)
            out.extend(e for e in self.decode_logs(logs) if wanted is None or e.name in wanted)
            start = stop + 1
        return out
