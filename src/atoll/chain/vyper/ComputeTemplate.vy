# pragma version ~=0.4.0
"""
@title ComputeTemplate
@notice Creates a compute agreement for the calling consumer: LockPayment →
        ComputeExecution → EscrowPayment. Authorisation is per agreement: each
        agreement names its consumer and how many jobs it allows (maxJobs); the
        provider counts jobs off-chain against it.

        The compute condition times out `timeout` seconds (block.timestamp) after
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


interface IComputeExecution:
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


event ComputeAgreementCreated:
    agreementId: indexed(bytes32)
    did: indexed(bytes32)
    consumer: indexed(address)
    price: uint256
    receiver: address
    maxJobs: uint256
    timeout: uint256


agreementStore: public(immutable(address))
didRegistry: public(immutable(address))
token: public(immutable(address))
lockCondition: public(immutable(address))
computeCondition: public(immutable(address))
escrowCondition: public(immutable(address))
terms: public(HashMap[bytes32, Terms])


@deploy
def __init__(
    agreement_store: address,
    did_registry: address,
    payment_token: address,
    lock_condition: address,
    compute_condition: address,
    escrow_condition: address,
):
    agreementStore = agreement_store
    didRegistry = did_registry
    token = payment_token
    lockCondition = lock_condition
    computeCondition = compute_condition
    escrowCondition = escrow_condition


@external
def createAgreement(
    agreementId: bytes32, did: bytes32, price: uint256, maxJobs: uint256, timeout: uint256
):
    """
    @notice Create agreement `agreementId` for the caller to run up to `maxJobs`
            jobs on `did` for `price` tokens, paid to the DID's current owner.
    """
    receiver: address = staticcall IDIDRegistry(didRegistry).owner(did)
    assert receiver != empty(address), "ComputeTemplate: unknown DID"
    assert timeout > 0, "ComputeTemplate: time out must be positive"
    lock_id: bytes32 = staticcall ICondition(lockCondition).generateId(
        agreementId, staticcall ILockPayment(lockCondition).hashValues(escrowCondition, token, price)
    )
    compute_id: bytes32 = staticcall ICondition(computeCondition).generateId(
        agreementId, staticcall IComputeExecution(computeCondition).hashValues(did, msg.sender, lock_id)
    )
    escrow_id: bytes32 = staticcall ICondition(escrowCondition).generateId(
        agreementId,
        staticcall IEscrowPayment(escrowCondition).hashValues(did, token, price, receiver, msg.sender),
    )
    extcall IAgreementStore(agreementStore).createAgreement(
        agreementId,
        did,
        msg.sender,
        maxJobs,
        [lockCondition, computeCondition, escrowCondition],
        [lock_id, compute_id, escrow_id],
        [0, 0, 0],
        [0, timeout, 0],
    )
    self.terms[agreementId] = Terms(price=price, receiver=receiver)
    log ComputeAgreementCreated(
        agreementId=agreementId,
        did=did,
        consumer=msg.sender,
        price=price,
        receiver=receiver,
        maxJobs=maxJobs,
        timeout=timeout,
    )


@external
@view
def isComputeAuthorised(agreementId: bytes32, consumer: address) -> bool:
    """
    @notice True while `consumer` may start jobs under this agreement: it is the
            agreement's consumer, the payment is locked, and the compute condition
            is neither settled nor timed out. Job counting is the provider's.
    """
    a: Agreement = staticcall IAgreementStore(agreementStore).getAgreement(agreementId)
    if a.template != self or consumer == empty(address) or a.consumer != consumer:
        return False
    lock: Condition = staticcall IAgreementStore(agreementStore).getCondition(a.conditionIds[0])
    compute: Condition = staticcall IAgreementStore(agreementStore).getCondition(a.conditionIds[1])
    if lock.state != FULFILLED or compute.state != UNFULFILLED:
        return False
    return compute.timeOut == 0 or block.timestamp <= compute.timeOut
