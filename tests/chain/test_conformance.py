"""The contracts' rules, on every backend (embedded EVM and anvil): real EVM, compiled Vyper."""

from __future__ import annotations

import os
from typing import Any

import pytest

from atoll.chain import (
    AddressBook,
    ChainRevert,
    ConditionState,
    Contracts,
    TemplateState,
    did_bytes,
)
from atoll.chain.book import code_of

from .conftest import Env

HASH = b"\xab" * 32


def reverts(match: str) -> Any:
    return pytest.raises(ChainRevert, match=match)


# -- DID registry --------------------------------------------------------------------------


def test_register_did_records_owner_checksum_providers(env: Env) -> None:
    did = did_bytes(os.urandom(32))
    start = env.chain.block_number()
    env.c.register_did(env.publisher, did, b"\x07" * 32, [env.provider.address])
    rec = env.c.did_record(did)
    assert rec is not None
    assert rec.owner == env.publisher.address
    assert rec.checksum == b"\x07" * 32
    assert rec.providers == (env.provider.address,)
    assert env.c.did_owner(did) == env.publisher.address
    assert env.c.is_provider(did, env.provider.address)
    assert not env.c.is_provider(did, env.stranger.address)
    assert env.c.did_record(did_bytes(os.urandom(32))) is None
    events = env.c.events(start + 1, names=["DIDRegistered"])
    assert [e.args["did"] for e in events] == [did]
    assert events[0].args["owner"] == env.publisher.address


def test_register_did_twice_reverts(env: Env) -> None:
    did = env.new_did()
    with reverts("already registered"):
        env.c.register_did(env.stranger, did, b"\x00" * 32, [])


def test_register_did_rejects_bad_provider_lists(env: Env) -> None:
    did = did_bytes(os.urandom(32))
    with reverts("duplicate provider"):
        env.c.register_did(env.publisher, did, b"\x00" * 32, [env.provider.address] * 2)
    with reverts("zero provider"):
        env.c.register_did(env.publisher, did, b"\x00" * 32, ["0x" + "00" * 20])


def test_only_owner_updates_checksum_and_providers(env: Env) -> None:
    did = env.new_did()
    with reverts("only the DID owner"):
        env.c.update_checksum(env.stranger, did, b"\x09" * 32)
    with reverts("only the DID owner"):
        env.c.set_providers(env.provider, did, [env.stranger.address])
    start = env.chain.block_number()
    env.c.update_checksum(env.publisher, did, b"\x09" * 32)
    env.c.set_providers(env.publisher, did, [env.stranger.address, env.provider.address])
    rec = env.c.did_record(did)
    assert rec is not None
    assert rec.checksum == b"\x09" * 32
    assert rec.providers == (env.stranger.address, env.provider.address)
    names = [e.name for e in env.c.events(start + 1)]
    assert names == ["ChecksumUpdated", "ProvidersUpdated"]


def test_only_owner_transfers_ownership(env: Env) -> None:
    did = env.new_did()
    with reverts("only the DID owner"):
        env.c.transfer_did(env.stranger, did, env.stranger.address)
    env.c.transfer_did(env.publisher, did, env.stranger.address)
    assert env.c.did_owner(did) == env.stranger.address
    with reverts("only the DID owner"):
        env.c.update_checksum(env.publisher, did, b"\x02" * 32)
    env.c.update_checksum(env.stranger, did, b"\x02" * 32)
    with reverts("unknown DID"):
        env.c.update_checksum(env.publisher, did_bytes(os.urandom(32)), b"\x02" * 32)


# -- templates ------------------------------------------------------------------------------


def test_template_lifecycle_is_governance_only(env: Env) -> None:
    template = env.c.deploy_template(env.stranger)
    assert env.c.template_state(template) is TemplateState.UNINITIALIZED
    with reverts("only governance"):
        env.c.propose_template(env.stranger, template)
    env.c.propose_template(env.gov, template)
    assert env.c.template_state(template) is TemplateState.PROPOSED
    with reverts("only governance"):
        env.c.approve_template(env.stranger, template)
    env.c.approve_template(env.gov, template)
    assert env.c.template_state(template) is TemplateState.APPROVED
    with reverts("only governance"):
        env.c.revoke_template(env.publisher, template)
    env.c.revoke_template(env.gov, template)
    assert env.c.template_state(template) is TemplateState.REVOKED
    with reverts("template not proposed"):
        env.c.approve_template(env.gov, template)  # revoked is final


def test_only_an_approved_template_creates_agreements(env: Env) -> None:
    did = env.new_did()
    template = env.c.deploy_template(env.gov)
    with reverts("template not approved"):
        env.c.create_agreement(env.consumer, did, 1, template=template)
    env.c.propose_template(env.gov, template)
    with reverts("template not approved"):
        env.c.create_agreement(env.consumer, did, 1, template=template)
    env.c.approve_template(env.gov, template)
    aid = env.c.create_agreement(env.consumer, did, 1, template=template)
    agreement = env.c.agreement(aid)
    assert agreement is not None and agreement.template == template
    env.c.revoke_template(env.gov, template)
    with reverts("template not approved"):
        env.c.create_agreement(env.consumer, did, 1, template=template)
    assert env.c.template_state(env.c.book.compute_template) is TemplateState.APPROVED


# -- agreements -----------------------------------------------------------------------------


def test_create_agreement_records_terms_and_conditions(env: Env) -> None:
    did = env.new_did()
    aid = env.c.create_agreement(env.consumer, did, 5 * 10**17, max_jobs=3, timeout=600)
    a = env.c.agreement(aid)
    assert a is not None
    assert a.did == did
    assert a.consumer == env.consumer.address
    assert a.template == env.c.book.compute_template
    assert a.max_jobs == 3
    assert a.price == 5 * 10**17
    assert a.receiver == env.publisher.address
    assert a.token == env.c.book.token
    assert [c.state for c in a.conditions] == [ConditionState.UNFULFILLED] * 3
    assert [c.contract for c in a.conditions] == [
        env.c.book.lock_payment,
        env.c.book.compute_execution,
        env.c.book.escrow_payment,
    ]
    assert all(c.agreement_id == aid for c in a.conditions)
    assert a.deadline == a.created_at + 600
    assert a.lock.time_out == 0 and a.escrow.time_out == 0
    assert a.result_hash is None
    assert env.c.agreement(os.urandom(32)) is None
    # the default is one job
    one = env.c.agreement(env.c.create_agreement(env.consumer, did, 1))
    assert one is not None and one.max_jobs == 1


def test_condition_ids_follow_ocean_derivation(env: Env) -> None:
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    did = env.new_did()
    price = 123
    aid = env.c.create_agreement(env.consumer, did, price)
    a = env.c.agreement(aid)
    assert a is not None
    book = env.c.book
    lock_values = keccak(
        encode(["address", "address", "uint256"], [book.escrow_payment, book.token, price])
    )
    lock_id = keccak(aid + bytes.fromhex(book.lock_payment[2:]) + lock_values)
    assert a.lock.condition_id == lock_id


def test_bad_agreements_revert(env: Env) -> None:
    did = env.new_did()
    aid = env.c.create_agreement(env.consumer, did, 1)
    with reverts("agreement already exists"):
        env.c.create_agreement(env.stranger, did, 1, agreement_id=aid)
    with reverts("unknown DID"):
        env.c.create_agreement(env.consumer, did_bytes(os.urandom(32)), 1)
    with reverts("time out must be positive"):
        env.c.create_agreement(env.consumer, did, 1, timeout=0)
    with reverts("maxJobs must be positive"):
        env.c.create_agreement(env.consumer, did, 1, max_jobs=0)


# -- lock payment ---------------------------------------------------------------------------


def test_lock_payment_moves_tokens_into_escrow(env: Env) -> None:
    did = env.new_did()
    price = 2 * 10**18
    aid = env.c.create_agreement(env.consumer, did, price)
    assert not env.c.is_compute_authorised(aid, env.consumer.address)
    consumer_before = env.c.balance_of(env.consumer.address)
    escrow_before = env.c.balance_of(env.c.book.escrow_payment)
    with reverts("only the agreement's consumer"):
        env.c.lock_payment(env.stranger, aid)
    env.c.lock_payment(env.consumer, aid)
    assert env.c.balance_of(env.consumer.address) == consumer_before - price
    assert env.c.balance_of(env.c.book.escrow_payment) == escrow_before + price
    a = env.c.agreement(aid)
    assert a is not None and a.lock.state is ConditionState.FULFILLED
    assert env.c.is_compute_authorised(aid, env.consumer.address)
    assert not env.c.is_compute_authorised(aid, env.stranger.address)
    assert a.compute_allowed(env.consumer.address, env.chain.now())
    with reverts("already settled"):
        env.c.lock_payment(env.consumer, aid)


def test_lock_payment_needs_the_consumers_tokens(env: Env) -> None:
    poor = env.fresh_account()
    did = env.new_did()
    aid = env.c.create_agreement(poor, did, 10**18)
    with reverts("insufficient balance"):
        # no tokens: the approval goes through, the transfer into escrow does not
        env.c.lock_payment(poor, aid)
    a = env.c.agreement(aid)
    assert a is not None and a.lock.state is ConditionState.UNFULFILLED


# -- compute execution ----------------------------------------------------------------------


def test_only_owner_or_provider_fulfils_compute_and_hash_is_recorded(env: Env) -> None:
    aid = env.locked_agreement()
    with reverts("only the DID owner or a provider"):
        env.c.fulfil_compute(env.stranger, aid, HASH)
    with reverts("only the DID owner or a provider"):
        env.c.fulfil_compute(env.consumer, aid, HASH)
    start = env.chain.block_number()
    env.c.fulfil_compute(env.provider, aid, HASH)
    a = env.c.agreement(aid)
    assert a is not None
    assert a.compute.state is ConditionState.FULFILLED
    assert a.result_hash == HASH
    assert env.c.result_hash(aid) == HASH
    assert not env.c.is_compute_authorised(aid, env.consumer.address)
    fulfilled = env.c.events(start + 1, names=["ComputeFulfilled"])
    assert len(fulfilled) == 1
    assert fulfilled[0].args["resultHash"] == HASH
    assert fulfilled[0].args["provider"] == env.provider.address
    with reverts("already settled"):
        env.c.fulfil_compute(env.provider, aid, HASH)
    # the DID's owner may fulfil too
    other = env.locked_agreement()
    env.c.fulfil_compute(env.publisher, other, b"\x01" * 32)


def test_compute_cannot_be_fulfilled_before_payment_is_locked(env: Env) -> None:
    did = env.new_did()
    aid = env.c.create_agreement(env.consumer, did, 10**18)
    with reverts("payment not locked"):
        env.c.fulfil_compute(env.provider, aid, HASH)


# -- escrow ---------------------------------------------------------------------------------


def test_escrow_pays_publisher_once_after_delivery(env: Env) -> None:
    price = 3 * 10**18
    aid = env.locked_agreement(price=price)
    with reverts("compute not fulfilled"):
        env.c.release(env.publisher, aid)
    env.c.fulfil_compute(env.provider, aid, HASH)
    with reverts("compute not aborted"):
        env.c.refund(env.consumer, aid)
    publisher_before = env.c.balance_of(env.publisher.address)
    escrow_before = env.c.balance_of(env.c.book.escrow_payment)
    start = env.chain.block_number()
    env.c.release(env.stranger, aid)  # anyone may trigger it; the money goes to the publisher
    assert env.c.balance_of(env.publisher.address) == publisher_before + price
    assert env.c.balance_of(env.c.book.escrow_payment) == escrow_before - price
    a = env.c.agreement(aid)
    assert a is not None and a.escrow.state is ConditionState.FULFILLED
    with reverts("already claimed"):
        env.c.release(env.publisher, aid)
    with reverts("already claimed"):
        env.c.refund(env.consumer, aid)
    assert env.c.balance_of(env.publisher.address) == publisher_before + price
    released = env.c.events(start + 1, names=["PaymentReleased"])
    assert [(e.args["agreementId"], e.args["amount"]) for e in released] == [(aid, price)]


def test_refund_after_time_out_when_compute_aborted_not_before(env: Env) -> None:
    price = 10**18
    aid = env.locked_agreement(price=price, timeout=100)
    with reverts("not timed out"):
        env.c.abort_compute(env.stranger, aid)
    with reverts("compute not aborted"):
        env.c.refund(env.stranger, aid)
    env.chain.increase_time(150)
    a = env.c.agreement(aid)
    assert a is not None and a.compute.timed_out(env.chain.now())
    assert not env.c.is_compute_authorised(aid, env.consumer.address)
    with reverts("timed out"):
        env.c.fulfil_compute(env.provider, aid, HASH)  # too late to deliver
    consumer_before = env.c.balance_of(env.consumer.address)
    env.c.abort_compute(env.stranger, aid)  # anyone, after the time out
    with reverts("compute not fulfilled"):
        env.c.release(env.publisher, aid)
    env.c.refund(env.stranger, aid)
    assert env.c.balance_of(env.consumer.address) == consumer_before + price
    a = env.c.agreement(aid)
    assert a is not None
    assert a.compute.state is ConditionState.ABORTED
    assert a.escrow.state is ConditionState.ABORTED
    with reverts("already claimed"):
        env.c.refund(env.consumer, aid)
    assert env.c.balance_of(env.consumer.address) == consumer_before + price


def test_provider_may_abort_early_for_a_refund(env: Env) -> None:
    aid = env.locked_agreement(timeout=3600)
    with reverts("not timed out"):
        env.c.abort_compute(env.consumer, aid)
    before = env.c.balance_of(env.consumer.address)
    env.c.abort_compute(env.provider, aid)
    env.c.refund(env.consumer, aid)
    assert env.c.balance_of(env.consumer.address) == before + 10**18


def test_only_the_condition_contract_changes_its_state(env: Env) -> None:
    aid = env.locked_agreement()
    a = env.c.agreement(aid)
    assert a is not None
    for signer in (env.gov, env.consumer, env.provider):
        for cond in a.conditions:
            with reverts("only the condition's contract"):
                env.c.transact(
                    signer, "AgreementStore", "updateConditionState", cond.condition_id, 2
                )
    with reverts("unknown condition"):
        env.c.transact(env.gov, "AgreementStore", "updateConditionState", os.urandom(32), 2)
    after = env.c.agreement(aid)
    assert after is not None
    assert [c.state for c in after.conditions] == [
        ConditionState.FULFILLED,
        ConditionState.UNFULFILLED,
        ConditionState.UNFULFILLED,
    ]


def test_authorisation_is_per_agreement(env: Env) -> None:
    did = env.new_did()
    first = env.c.create_agreement(env.consumer, did, 10**18, max_jobs=2)
    second = env.c.create_agreement(env.consumer, did, 10**18)
    env.c.lock_payment(env.consumer, first)
    assert env.c.is_compute_authorised(first, env.consumer.address)
    assert not env.c.is_compute_authorised(second, env.consumer.address)  # not paid
    env.c.fulfil_compute(env.provider, first, HASH)
    assert not env.c.is_compute_authorised(first, env.consumer.address)  # used up
    assert not env.c.is_compute_authorised(os.urandom(32), env.consumer.address)


# -- token, reverts, events, address book ---------------------------------------------------


def test_faucet_is_capped(env: Env) -> None:
    before = env.c.balance_of(env.stranger.address)
    env.c.faucet(env.stranger, 5 * 10**18)
    assert env.c.balance_of(env.stranger.address) == before + 5 * 10**18
    with reverts("over the faucet cap"):
        env.c.faucet(env.stranger, 10**30)


def test_faucet_disabled_outside_development(env: Env) -> None:
    book = Contracts.deploy(env.chain, env.gov, faucet=False, cache_dir=env.cache)
    c = Contracts(env.chain, book, cache_dir=env.cache)
    with reverts("faucet disabled"):
        c.faucet(env.stranger, 1)
    assert c.balance_of(env.gov.address) == 1_000_000_000 * 10**18


def test_revert_reason_is_the_same_for_calls_and_transactions(env: Env) -> None:
    data = env.c.abis["AtollToken"].function("faucet").encode([10**30])
    with reverts("^AtollToken: amount over the faucet cap$"):
        env.chain.call(env.c.book.token, data, sender=env.stranger.address)
    with reverts("^AtollToken: amount over the faucet cap$"):
        env.chain.transact(env.stranger, env.c.book.token, data)


def test_events_are_read_in_bounded_ranges(env: Env) -> None:
    start = env.chain.block_number() + 1
    aid = env.locked_agreement()
    env.c.fulfil_compute(env.provider, aid, HASH)
    env.c.release(env.consumer, aid)
    end = env.chain.block_number()
    whole = env.c.events(start, end)
    assert [e.name for e in whole if e.contract != "AtollToken"][-3:] == [
        "ComputeFulfilled",
        "ConditionUpdated",
        "PaymentReleased",
    ]
    ranges: list[tuple[int, int]] = []
    real = env.chain.get_logs

    def spy(from_block: int, to_block: int, **kw: object) -> list:  # type: ignore[type-arg]
        ranges.append((from_block, to_block))
        return real(from_block, to_block, **kw)  # type: ignore[arg-type]

    env.chain.get_logs = spy  # type: ignore[method-assign]
    try:
        stepped = env.c.events(start, end, step=2)
        from_zero = env.c.events(0, env.c.book.deployed_block + 1, step=1)
    finally:
        del env.chain.get_logs
    assert stepped == whole
    assert all(b - a < 2 for a, b in ranges)
    assert min(a for a, _ in ranges) >= env.c.book.deployed_block  # never from block 0
    assert {e.name for e in from_zero} >= {"Transfer"}


def test_address_book_round_trips_through_json(env: Env, tmp_path: os.PathLike[str]) -> None:
    book = env.c.book
    assert AddressBook.from_json(book.to_json()) == book
    path = os.path.join(tmp_path, "book.json")
    book.save(path)
    assert AddressBook.load(path) == book
    assert {code_of(n) for n in book.contracts()} == set(env.c.abis)
    for address in book.contracts().values():
        assert env.chain.code(address)
