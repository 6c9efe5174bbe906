# pragma version ~=0.4.0
"""
@title AccessTemplate
@notice Creates a data access agreement for the calling consumer: LockPayment →
        Access → EscrowPayment (an EscrowPaymentCondition of its own, whose
        condition is the access condition). The agreement names its consumer; the
        provider serves it the asset's files and counts the downloads off-chain
        (the agreement store's maxJobs is 1: one set of the asset's files).

        The access condition times out `timeout` seconds (block.timestamp) after
        creation; then anyone may abort it and the payment is refunded.
"""

interface IDIDRegistry:
    def owner(did: bytes32) -> address: view


struct Agreement:
    did: bytes32
    template: address
    consumer: address
    maxJobs: uint256
    createdAt: uint256
    createdBlock: uint256
    conditionIds: DynArray[bytes32, 8]


struct Condition:
    agreementId: bytes32
    typeRef: address
    state: uint8
    timeLock: uint256
    timeOut: uint256
    updatedAt: uint256


interface IAgreementStore:
    def createAgreement(
        agreementId: bytes32,
        did: bytes32,
        consumer: address,
        maxJobs: uint256,
        conditionTypes: DynArray[address, 8],
        conditionIds: DynArray[bytes32, 8],
        timeLocks: DynArray[uint256, 8],
        timeOuts: DynArray[uint256, 8],
    ): nonpayable
    def getAgreement(agreementId: bytes32) -> Agreement: view
    def getCondition(conditionId: bytes32) -> Condition: view


interface ICondition:
    def generateId(agreementId: bytes32, valueHash: bytes32) -> bytes32: view


interface ILockPayment:
    def hashValues(escrow: address, token: address, amount: uint256) -> bytes32: pure


interface IAccess:
    def hashValues(did: bytes32, consumer: address, lockConditionId: bytes32) -> bytes32: pure


interface IEscrowPayment:
    def hashValues(
        did: bytes32, token: address, amount: uint256, receiver: address, consumer: address
    ) -> bytes32: pure


UNFULFILLED: constant(uint8) = 1
FULFILLED: constant(uint8) = 2


struct Terms:
    price: uint256
    receiver: address


event AccessAgreementCreated:
    agreementId: indexed(bytes32)
    did: indexed(bytes32)
    consumer: indexed(address)
    price: uint256
    receiver: address
    timeout: uint256


agreementStore: public(immutable(address))
didRegistry: public(immutable(address))
token: public(immutable(address))
lockCondition: public(immutable(address))
accessCondition: public(immutable(address))
escrowCondition: public(immutable(address))
terms: public(HashMap[bytes32, Terms])


@deploy
def __init__(
    agreement_store: address,
    did_registry: address,
    payment_token: address,
    lock_condition: address,
    access_condition: address,
    escrow_condition: address,
):
    agreementStore = agreement_store
    didRegistry = did_registry
    token = payment_token
    lockCondition = lock_condition
    accessCondition = access_condition
    escrowCondition = escrow_condition


@external
def createAgreement(agreementId: bytes32, did: bytes32, price: uint256, timeout: uint256):
    """
    @notice Create agreement `agreementId` for the caller to download the files
            of `did` for `price` tokens, paid to the DID's current owner.
    """
    receiver: address = staticcall IDIDRegistry(didRegistry).owner(did)
    assert receiver != empty(address), "AccessTemplate: unknown DID"
    assert timeout > 0, "AccessTemplate: time out must be positive"
    lock_id: bytes32 = staticcall ICondition(lockCondition).generateId(
        agreementId, staticcall ILockPayment(lockCondition).hashValues(escrowCondition, token, price)
    )
    access_id: bytes32 = staticcall ICondition(accessCondition).generateId(
        agreementId, staticcall IAccess(accessCondition).hashValues(did, msg.sender, lock_id)
    )
    escrow_id: bytes32 = staticcall ICondition(escrowCondition).generateId(
        agreementId,
        staticcall IEscrowPayment(escrowCondition).hashValues(did, token, price, receiver, msg.sender),
    )
    extcall IAgreementStore(agreementStore).createAgreement(
        agreementId,
        did,
        msg.sender,
        1,
        [lockCondition, accessCondition, escrowCondition],
        [lock_id, access_id, escrow_id],
        [0, 0, 0],
        [0, timeout, 0],
    )
    self.terms[agreementId] = Terms(price=price, receiver=receiver)
    log AccessAgreementCreated(
        agreementId=agreementId,
        did=did,
        consumer=msg.sender,
        price=price,
        receiver=receiver,
        timeout=timeout,
    )


@external
@view
def isAccessAuthorised(agreementId: bytes32, consumer: address) -> bool:
    """
    @notice True while `consumer` may download under this agreement: it is the
            agreement's consumer, the payment is locked, the access condition is
            not aborted, and its time out has not passed. Download counting is the
            provider's.
    """
    a: Agreement = staticcall IAgreementStore(agreementStore).getAgreement(agreementId)
    if a.template != self or consumer == empty(address) or a.consumer != consumer:
        return False
    lock: Condition = staticcall IAgreementStore(agreementStore).getCondition(a.conditionIds[0])
    access: Condition = staticcall IAgreementStore(agreementStore).getCondition(a.conditionIds[1])
    if lock.state != FULFILLED or (access.state != UNFULFILLED and access.state != FULFILLED):
        return False
    return access.timeOut == 0 or block.timestamp <= access.timeOut
