# pragma version ~=0.4.0
"""
@title EscrowPaymentCondition
@notice Holds locked payments. Releases one to the publisher once the agreement's
        compute condition is fulfilled, or refunds it to the consumer once that
        condition is aborted. Anyone may trigger either; each locked payment is
        paid out at most once (a second claim reverts).

        The lock and compute condition ids are derived here from the same values,
        so an escrow condition can only pay out the exact amount locked for it.
"""

from ethereum.ercs import IERC20


struct Condition:
    agreementId: bytes32
    typeRef: address
    state: uint8
    timeLock: uint256
    timeOut: uint256
    updatedAt: uint256


interface IAgreementStore:
    def getCondition(conditionId: bytes32) -> Condition: view
    def updateConditionState(conditionId: bytes32, newState: uint8) -> uint8: nonpayable


interface ICondition:
    def generateId(agreementId: bytes32, valueHash: bytes32) -> bytes32: view


interface ILockPayment:
    def hashValues(escrow: address, token: address, amount: uint256) -> bytes32: pure


interface IComputeExecution:
    def hashValues(did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32: pure


FULFILLED: constant(uint8) = 2
ABORTED: constant(uint8) = 3


event PaymentReleased:
    agreementId: indexed(bytes32)
    conditionId: indexed(bytes32)
    receiver: indexed(address)
    token: address
    amount: uint256


event PaymentRefunded:
    agreementId: indexed(bytes32)
    conditionId: indexed(bytes32)
    consumer: indexed(address)
    token: address
    amount: uint256


agreementStore: public(immutable(address))
lockCondition: public(immutable(address))
computeCondition: public(immutable(address))
claimed: public(HashMap[bytes32, bool])


@deploy
def __init__(agreement_store: address, lock_condition: address, compute_condition: address):
    agreementStore = agreement_store
    lockCondition = lock_condition
    computeCondition = compute_condition


@internal
@pure
def _hash_values(
    did: bytes32, token: address, amount: uint256, receiver: address, consumer: address
) -> bytes32:
    return keccak256(abi_encode(did, token, amount, receiver, consumer))


@internal
@view
def _generate_id(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return keccak256(concat(agreementId, convert(self, bytes20), valueHash))


@external
@pure
def hashValues(
    did: bytes32, token: address, amount: uint256, receiver: address, consumer: address
) -> bytes32:
    return self._hash_values(did, token, amount, receiver, consumer)


@external
@view
def generateId(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return self._generate_id(agreementId, valueHash)


@internal
def _settle(
    agreementId: bytes32,
    did: bytes32,
    token: address,
    amount: uint256,
    receiver: address,
    consumer: address,
    compute_state: uint8,
) -> bytes32:
    condition_id: bytes32 = self._generate_id(
        agreementId, self._hash_values(did, token, amount, receiver, consumer)
    )
    lock_id: bytes32 = staticcall ICondition(lockCondition).generateId(
        agreementId, staticcall ILockPayment(lockCondition).hashValues(self, token, amount)
    )
    compute_id: bytes32 = staticcall ICondition(computeCondition).generateId(
        agreementId, staticcall IComputeExecution(computeCondition).hashValues(did, consumer, lock_id)
    )
    assert not self.claimed[lock_id], "EscrowPayment: already claimed"
    lock: Condition = staticcall IAgreementStore(agreementStore).getCondition(lock_id)
    assert lock.agreementId == agreementId and lock.typeRef == lockCondition, "EscrowPayment: unknown lock condition"
    assert lock.state == FULFILLED, "EscrowPayment: payment not locked"
    compute: Condition = staticcall IAgreementStore(agreementStore).getCondition(compute_id)
    assert compute.agreementId == agreementId and compute.typeRef == computeCondition, "EscrowPayment: unknown compute condition"
    if compute_state == FULFILLED:
        assert compute.state == FULFILLED, "EscrowPayment: compute not fulfilled"
    else:
        assert compute.state == ABORTED, "EscrowPayment: compute not aborted"
    self.claimed[lock_id] = True
    extcall IAgreementStore(agreementStore).updateConditionState(condition_id, compute_state)
    return condition_id


@external
def release(
    agreementId: bytes32,
    did: bytes32,
    token: address,
    amount: uint256,
    receiver: address,
    consumer: address,
) -> bytes32:
    """
    @notice Pay the locked amount to `receiver` (the publisher): compute fulfilled.
    """
    condition_id: bytes32 = self._settle(agreementId, did, token, amount, receiver, consumer, FULFILLED)
    assert extcall IERC20(token).transfer(receiver, amount), "EscrowPayment: transfer failed"
    log PaymentReleased(
        agreementId=agreementId, conditionId=condition_id, receiver=receiver, token=token, amount=amount
    )
    return condition_id


@external
def refund(
    agreementId: bytes32,
    did: bytes32,
    token: address,
    amount: uint256,
    receiver: address,
    consumer: address,
) -> bytes32:
    """
    @notice Return the locked amount to `consumer`: compute aborted.
    """
    condition_id: bytes32 = self._settle(agreementId, did, token, amount, receiver, consumer, ABORTED)
    assert extcall IERC20(token).transfer(consumer, amount), "EscrowPayment: transfer failed"
    log PaymentRefunded(
        agreementId=agreementId, conditionId=condition_id, consumer=consumer, token=token, amount=amount
    )
    return condition_id
