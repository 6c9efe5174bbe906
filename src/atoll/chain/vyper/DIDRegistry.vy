# pragma version ~=0.4.0
"""
@title DIDRegistry
@notice Who owns a DID, the checksum of its DDO and which providers may serve it.
        Only the owner changes a record or hands it on.
"""

MAX_PROVIDERS: constant(uint256) = 16


struct DIDRecord:
    owner: address
    checksum: bytes32
    providers: DynArray[address, MAX_PROVIDERS]
    updatedBlock: uint256


event DIDRegistered:
    did: indexed(bytes32)
    owner: indexed(address)
    checksum: bytes32
    providers: DynArray[address, MAX_PROVIDERS]


event ChecksumUpdated:
    did: indexed(bytes32)
    owner: indexed(address)
    checksum: bytes32


event ProvidersUpdated:
    did: indexed(bytes32)
    owner: indexed(address)
    providers: DynArray[address, MAX_PROVIDERS]


event OwnershipTransferred:
    did: indexed(bytes32)
    previousOwner: indexed(address)
    newOwner: indexed(address)


records: HashMap[bytes32, DIDRecord]


@internal
@pure
def _check_providers(providers: DynArray[address, MAX_PROVIDERS]):
    n: uint256 = len(providers)
    for i: uint256 in range(n, bound=MAX_PROVIDERS):
        assert providers[i] != empty(address), "DIDRegistry: zero provider address"
        for j: uint256 in range(i, bound=MAX_PROVIDERS):  # j < i
            assert providers[j] != providers[i], "DIDRegistry: duplicate provider"


@internal
@view
def _only_owner(did: bytes32):
    assert self.records[did].owner != empty(address), "DIDRegistry: unknown DID"
    assert self.records[did].owner == msg.sender, "DIDRegistry: only the DID owner"


@external
def register(did: bytes32, checksum: bytes32, providers: DynArray[address, MAX_PROVIDERS]):
    """
    @notice Register `did` with the caller as its owner.
    """
    assert did != empty(bytes32), "DIDRegistry: empty DID"
    assert self.records[did].owner == empty(address), "DIDRegistry: DID already registered"
    self._check_providers(providers)
    self.records[did] = DIDRecord(
        owner=msg.sender, checksum=checksum, providers=providers, updatedBlock=block.number
    )
    log DIDRegistered(did=did, owner=msg.sender, checksum=checksum, providers=providers)


@external
def updateChecksum(did: bytes32, checksum: bytes32):
    self._only_owner(did)
    self.records[did].checksum = checksum
    self.records[did].updatedBlock = block.number
    log ChecksumUpdated(did=did, owner=msg.sender, checksum=checksum)


@external
def setProviders(did: bytes32, providers: DynArray[address, MAX_PROVIDERS]):
    self._only_owner(did)
    self._check_providers(providers)
    self.records[did].providers = providers
    self.records[did].updatedBlock = block.number
    log ProvidersUpdated(did=did, owner=msg.sender, providers=providers)


@external
def transferOwnership(did: bytes32, newOwner: address):
    self._only_owner(did)
    assert newOwner != empty(address), "DIDRegistry: zero owner address"
    self.records[did].owner = newOwner
    self.records[did].updatedBlock = block.number
    log OwnershipTransferred(did=did, previousOwner=msg.sender, newOwner=newOwner)


@external
@view
def owner(did: bytes32) -> address:
    return self.records[did].owner


@external
@view
def checksum(did: bytes32) -> bytes32:
    return self.records[did].checksum


@external
@view
def providers(did: bytes32) -> DynArray[address, MAX_PROVIDERS]:
    return self.records[did].providers


@external
@view
def isProvider(did: bytes32, account: address) -> bool:
    return account in self.records[did].providers


@external
@view
def isOwnerOrProvider(did: bytes32, account: address) -> bool:
    if account == empty(address):
        return False
    return account == self.records[did].owner or account in self.records[did].providers


@external
@view
def getRecord(did: bytes32) -> DIDRecord:
    return self.records[did]
