# pragma version ~=0.4.0
"""
@title AccessCondition
@notice Fulfilled by the DID's owner or one of its providers once the agreement's
        files were served to its consumer. Aborted by the owner or a provider at
        any time while unfulfilled, or by anyone after the condition's time out.

        hashValues and generateId have the compute condition's shape, so that an
        EscrowPaymentCondition deployed with this contract as its condition pays
        out access agreements exactly as the other pays out compute agreements.
"""

interface IDIDRegistry:
    def isOwnerOrProvider(did: bytes32, account: address) -> bool: view


struct Condition:
    agreementId: bytes32
    typeRef: address
    state: uint8
    timeLock: uint256
    timeOut: uint256
    updatedAt: uint256


interface IAgreementStore:
    def getCondition(conditionId: bytes32) -> Condition: view
    def isTimedOut(conditionId: bytes32) -> bool: view
    def updateConditionState(conditionId: bytes32, newState: uint8) -> uint8: nonpayable


FULFILLED: constant(uint8) = 2
ABORTED: constant(uint8) = 3


event AccessFulfilled:
    agreementId: indexed(bytes32)
    conditionId: indexed(bytes32)
    provider: indexed(address)
    did: bytes32


event AccessAborted:
    agreementId: indexed(bytes32)
    conditionId: indexed(bytes32)
    caller: indexed(address)
    timedOut: bool


agreementStore: public(immutable(address))
didRegistry: public(immutable(address))
lockCondition: public(immutable(address))


@deploy
def __init__(agreement_store: address, did_registry: address, lock_condition: address):
    agreementStore = agreement_store
    didRegistry = did_registry
    lockCondition = lock_condition


@internal
@pure
def _hash_values(did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32:
    return keccak256(abi_encode(did, consumer, lockConditionId))


@internal
@view
def _generate_id(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return keccak256(concat(agreementId, convert(self, bytes20), valueHash))


@external
@pure
def hashValues(did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32:
    return self._hash_values(did, consumer, lockConditionId)


@external
@view
def generateId(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return self._generate_id(agreementId, valueHash)


@external
def fulfil(agreementId: bytes32, did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32:
    """
    @notice Mark the files served. Only the DID's owner or one of its providers;
            the payment must be locked.
    """
    assert staticcall IDIDRegistry(didRegistry).isOwnerOrProvider(did, msg.sender), "Access: only the DID owner or a provider"
    lock: Condition = staticcall IAgreementStore(agreementStore).getCondition(lockConditionId)
    assert lock.agreementId == agreementId and lock.typeRef == lockCondition, "Access: not this agreement's lock condition"
    assert lock.state == FULFILLED, "Access: payment not locked"
    condition_id: bytes32 = self._generate_id(agreementId, self._hash_values(did, consumer, lockConditionId))
    extcall IAgreementStore(agreementStore).updateConditionState(condition_id, FULFILLED)
    log AccessFulfilled(agreementId=agreementId, conditionId=condition_id, provider=msg.sender, did=did)
    return condition_id


@external
def abort(agreementId: bytes32, did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32:
    """
    @notice Abort the access condition: anyone after its time out; the DID's
            owner or a provider before it.
    """
    condition_id: bytes32 = self._generate_id(agreementId, self._hash_values(did, consumer, lockConditionId))
    timed_out: bool = staticcall IAgreementStore(agreementStore).isTimedOut(condition_id)
    if not timed_out:
        assert staticcall IDIDRegistry(didRegistry).isOwnerOrProvider(did, msg.sender), "Access: not timed out"
    extcall IAgreementStore(agreementStore).updateConditionState(condition_id, ABORTED)
    log AccessAborted(agreementId=agreementId, conditionId=condition_id, caller=msg.sender, timedOut=timed_out)
    return condition_id
