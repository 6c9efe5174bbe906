# pragma version ~=0.4.0
"""
@title AgreementStore
@notice Agreements and their conditions. Only an approved template creates an
        agreement; only a condition's own contract changes that condition's state.

        Condition states: Uninitialized 0, Unfulfilled 1, Fulfilled 2, Aborted 3.
        Fulfilled and Aborted are final.

        Time is block.timestamp (seconds). A template passes time locks and time
        outs relative to the agreement's creation; they are stored as absolute
        timestamps. A condition may not be fulfilled before its time lock, nor
        after its time out (0 = none); after the time out it can only be aborted.
"""

interface ITemplateStore:
    def isApproved(template: address) -> bool: view


MAX_CONDITIONS: constant(uint256) = 8

UNINITIALIZED: constant(uint8) = 0
UNFULFILLED: constant(uint8) = 1
FULFILLED: constant(uint8) = 2
ABORTED: constant(uint8) = 3


struct Agreement:
    did: bytes32
    template: address
    consumer: address
    maxJobs: uint256
    createdAt: uint256
    createdBlock: uint256
    conditionIds: DynArray[bytes32, MAX_CONDITIONS]


struct Condition:
    agreementId: bytes32
    typeRef: address
    state: uint8
    timeLock: uint256
    timeOut: uint256
    updatedAt: uint256


event AgreementCreated:
    agreementId: indexed(bytes32)
    did: indexed(bytes32)
    consumer: indexed(address)
    template: address
    maxJobs: uint256
    conditionIds: DynArray[bytes32, MAX_CONDITIONS]


event ConditionUpdated:
    conditionId: indexed(bytes32)
    agreementId: indexed(bytes32)
    typeRef: indexed(address)
    state: uint8


templateStore: public(immutable(address))
agreements: HashMap[bytes32, Agreement]
conditions: HashMap[bytes32, Condition]


@deploy
def __init__(template_store: address):
    templateStore = template_store


@external
def createAgreement(
    agreementId: bytes32,
    did: bytes32,
    consumer: address,
    maxJobs: uint256,
    conditionTypes: DynArray[address, MAX_CONDITIONS],
    conditionIds: DynArray[bytes32, MAX_CONDITIONS],
    timeLocks: DynArray[uint256, MAX_CONDITIONS],
    timeOuts: DynArray[uint256, MAX_CONDITIONS],
):
    assert staticcall ITemplateStore(templateStore).isApproved(msg.sender), "AgreementStore: template not approved"
    assert agreementId != empty(bytes32), "AgreementStore: empty agreement id"
    assert self.agreements[agreementId].template == empty(address), "AgreementStore: agreement already exists"
    assert consumer != empty(address), "AgreementStore: zero consumer address"
    assert maxJobs > 0, "AgreementStore: maxJobs must be positive"
    n: uint256 = len(conditionIds)
    assert n > 0, "AgreementStore: no conditions"
    assert len(conditionTypes) == n and len(timeLocks) == n and len(timeOuts) == n, "AgreementStore: length mismatch"
    for i: uint256 in range(n, bound=MAX_CONDITIONS):
        cid: bytes32 = conditionIds[i]
        assert conditionTypes[i] != empty(address), "AgreementStore: zero condition contract"
        assert self.conditions[cid].typeRef == empty(address), "AgreementStore: condition already exists"
        time_lock: uint256 = block.timestamp + timeLocks[i]
        time_out: uint256 = 0
        if timeOuts[i] > 0:
            time_out = block.timestamp + timeOuts[i]
            assert time_out > time_lock, "AgreementStore: time out before time lock"
        self.conditions[cid] = Condition(
            agreementId=agreementId,
            typeRef=conditionTypes[i],
            state=UNFULFILLED,
            timeLock=time_lock,
            timeOut=time_out,
            updatedAt=block.timestamp,
        )
    self.agreements[agreementId] = Agreement(
        did=did,
        template=msg.sender,
        consumer=consumer,
        maxJobs=maxJobs,
        createdAt=block.timestamp,
        createdBlock=block.number,
        conditionIds=conditionIds,
    )
    log AgreementCreated(
        agreementId=agreementId,
        did=did,
        consumer=consumer,
        template=msg.sender,
        maxJobs=maxJobs,
        conditionIds=conditionIds,
    )


@external
def updateConditionState(conditionId: bytes32, newState: uint8) -> uint8:
    """
    @notice Move a condition from Unfulfilled to Fulfilled or Aborted. Only the
            condition's own contract may call this.
    """
    c: Condition = self.conditions[conditionId]
    assert c.typeRef != empty(address), "AgreementStore: unknown condition"
    assert msg.sender == c.typeRef, "AgreementStore: only the condition's contract"
    assert c.state == UNFULFILLED, "AgreementStore: condition already settled"
    if newState == FULFILLED:
        assert block.timestamp >= c.timeLock, "AgreementStore: condition time locked"
        assert c.timeOut == 0 or block.timestamp <= c.timeOut, "AgreementStore: condition timed out"
    else:
        assert newState == ABORTED, "AgreementStore: invalid state"
    self.conditions[conditionId].state = newState
    self.conditions[conditionId].updatedAt = block.timestamp
    log ConditionUpdated(
        conditionId=conditionId, agreementId=c.agreementId, typeRef=c.typeRef, state=newState
    )
    return newState


@external
@view
def getAgreement(agreementId: bytes32) -> Agreement:
    return self.agreements[agreementId]


@external
@view
def agreementConsumer(agreementId: bytes32) -> address:
    return self.agreements[agreementId].consumer


@external
@view
def getCondition(conditionId: bytes32) -> Condition:
    return self.conditions[conditionId]


@external
@view
def conditionState(conditionId: bytes32) -> uint8:
    return self.conditions[conditionId].state


@external
@view
def isTimeLocked(conditionId: bytes32) -> bool:
    return block.timestamp < self.conditions[conditionId].timeLock


@external
@view
def isTimedOut(conditionId: bytes32) -> bool:
    t: uint256 = self.conditions[conditionId].timeOut
    return t != 0 and block.timestamp > t
