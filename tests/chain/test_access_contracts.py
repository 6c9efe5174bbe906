"""The access template on the embedded EVM and on anvil: lock → access fulfilled by the
provider → escrow paid to the publisher; aborted after the time out → refunded; every token
paid out once, the balances exact."""

from __future__ import annotations

import pytest

from atoll.chain import ChainRevert, ConditionState, Contracts
from atoll.chain.book import AddressBook
from atoll.chain.records import TemplateState
from tests.chain.conftest import Env

PRICE = 3 * 10**18


def access_agreement(env: Env, timeout: int = 3600) -> tuple[bytes, bytes]:
    did = env.new_did()
    aid = env.c.create_access_agreement(env.consumer, did, PRICE, timeout=timeout)
    return did, aid


def test_deployment_approves_the_access_template(env: Env) -> None:
    book = env.c.book
    assert book.has_access
    assert env.c.template_state(book.access_template) is TemplateState.APPROVED
    assert env.c.is_access(book.access_template)
    assert not env.c.is_access(book.compute_template)


def test_access_released_to_the_publisher_exactly(env: Env) -> None:
    c = env.c
    _did, aid = access_agreement(env)
    a = c.agreement(aid)
    assert a is not None and a.kind == "access" and a.max_jobs == 1
    assert a.consumer == env.consumer.address and a.receiver == env.publisher.address
    before = (
        c.balance_of(env.consumer.address),
        c.balance_of(env.publisher.address),
        c.balance_of(c.book.access_escrow),
    )
    assert not c.is_access_authorised(aid, env.consumer.address)  # not paid yet
    c.lock_payment(env.consumer, aid)
    assert c.balance_of(c.book.access_escrow) == before[2] + PRICE
    assert c.is_access_authorised(aid, env.consumer.address)
    assert not c.is_access_authorised(aid, env.stranger.address)
    with pytest.raises(ChainRevert, match="only the DID owner or a provider"):
        c.fulfil_access(env.stranger, aid)
    c.fulfil_access(env.provider, aid)
    # served: still authorised for the rest of its time (the provider counts downloads)
    assert c.is_access_authorised(aid, env.consumer.address)
    c.release(env.stranger, aid)
    with pytest.raises(ChainRevert, match="already claimed"):
        c.release(env.stranger, aid)
    with pytest.raises(ChainRevert):
        c.refund(env.stranger, aid)
    a = c.agreement(aid)
    assert a is not None
    assert a.access.state is ConditionState.FULFILLED
    assert a.escrow.state is ConditionState.FULFILLED
    assert c.balance_of(env.consumer.address) == before[0] - PRICE
    assert c.balance_of(env.publisher.address) == before[1] + PRICE
    assert c.balance_of(c.book.access_escrow) == before[2]


def test_access_refunded_after_the_time_out(env: Env) -> None:
    c = env.c
    _did, aid = access_agreement(env, timeout=100)
    before = c.balance_of(env.consumer.address)
    c.lock_payment(env.consumer, aid)
    with pytest.raises(ChainRevert, match="not timed out"):
        c.abort_access(env.stranger, aid)
    with pytest.raises(ChainRevert, match="compute not aborted"):
        c.refund(env.stranger, aid)
    env.chain.increase_time(150)
    assert not c.is_access_authorised(aid, env.consumer.address)
    with pytest.raises(ChainRevert, match="timed out"):
        c.fulfil_access(env.provider, aid)
    c.abort_access(env.stranger, aid)
    c.refund(env.stranger, aid)
    with pytest.raises(ChainRevert, match="already claimed"):
        c.refund(env.stranger, aid)
    assert c.balance_of(env.consumer.address) == before
    a = c.agreement(aid)
    assert a is not None and a.escrow.state is ConditionState.ABORTED


def test_compute_escrow_cannot_pay_out_an_access_agreement(env: Env) -> None:
    c = env.c
    did, aid = access_agreement(env)
    c.lock_payment(env.consumer, aid)
    c.fulfil_access(env.provider, aid)
    a = c.agreement(aid)
    assert a is not None
    args = (aid, did, a.token, PRICE, a.receiver, a.consumer)
    with pytest.raises(ChainRevert):
        c.transact(env.stranger, "EscrowPaymentCondition", "release", *args)
    with pytest.raises(ChainRevert):  # nor the compute condition fulfil an access one
        c.fulfil_compute(env.provider, aid, b"\1" * 32)
    c.release(env.stranger, aid)


def test_an_older_deployment_gains_the_access_contracts(env: Env) -> None:
    """A book written before the access service loads, lacks them, and gets them added by
    its governance; the compute contracts stay where they were."""
    full = env.c.book
    old = AddressBook.from_json(
        full.to_json()
        .replace(full.access_condition, "")
        .replace(full.access_escrow, "")
        .replace(full.access_template, "")
    )
    assert not old.has_access
    assert set(old.contracts()) == set(old.core_contracts())
    with pytest.raises(ValueError, match="no AccessTemplate"):
        old.address_of("AccessTemplate")
    c = Contracts(env.chain, old, cache_dir=env.cache)
    with pytest.raises(ChainRevert, match="only governance"):
        c.deploy_access(env.stranger)
    book = c.deploy_access(env.gov)
    assert book.has_access and book.core_contracts() == old.core_contracts()
    assert AddressBook.from_json(book.to_json()) == book
    assert Contracts(env.chain, book).template_state(book.access_template) is (
        TemplateState.APPROVED
    )
