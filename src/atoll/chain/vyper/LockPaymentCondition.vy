# pragma version ~=0.4.0
"""
@title LockPaymentCondition
@notice The agreement's consumer moves the price into escrow (ERC20 transferFrom
        the consumer to the escrow contract, which holds it until released or
        refunded). Condition id = keccak256(agreementId ++ this ++ hashValues(...)).
"""

from ethereum.ercs import IERC20

interface IAgreementStore:
    def agreementConsumer(agreementId: bytes32) -> address: view
    def updateConditionState(conditionId: bytes32, newState: uint8) -> uint8: nonpayable


FULFILLED: constant(uint8) = 2


event PaymentLocked:
    agreementId: indexed(bytes32)
    conditionId: indexed(bytes32)
    consumer: indexed(address)
    escrow: address
    token: address
    amount: uint256


agreementStore: public(immutable(address))


@deploy
def __init__(agreement_store: address):
    agreementStore = agreement_store


@internal
@pure
def _hash_values(escrow: address, token: address, amount: uint256) -> bytes32:
    return keccak256(abi_encode(escrow, token, amount))


@internal
@view
def _generate_id(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return keccak256(concat(agreementId, convert(self, bytes20), valueHash))


@external
@pure
def hashValues(escrow: address, token: address, amount: uint256) -> bytes32:
    return self._hash_values(escrow, token, amount)


@external
@view
def generateId(agreementId: bytes32, valueHash: bytes32) -> bytes32:
    return self._generate_id(agreementId, valueHash)


@external
def fulfil(agreementId: bytes32, escrow: address, token: address, amount: uint256) -> bytes32:
    """
    @notice Lock `amount` of `token` from the consumer (the caller) into `escrow`.
            The caller must have approved this contract for `amount`.
    """
    consumer: address = staticcall IAgreementStore(agreementStore).agreementConsumer(agreementId)
    assert consumer != empty(address), "LockPayment: unknown agreement"
    assert msg.sender == consumer, "LockPayment: only the agreement's consumer"
    condition_id: bytes32 = self._generate_id(agreementId, self._hash_values(escrow, token, amount))
    extcall IAgreementStore(agreementStore).updateConditionState(condition_id, FULFILLED)
    assert extcall IERC20(token).transferFrom(msg.sender, escrow, amount), "LockPayment: transfer failed"
    log PaymentLocked(
        agreementId=agreementId,
        conditionId=condition_id,
        consumer=msg.sender,
        escrow=escrow,
        token=token,
        amount=amount,
    )
    return condition_id
