# pragma version ~=0.4.0
"""
@title AtollToken
@notice ERC20 used to pay for compute. On development chains the constructor
        enables a faucet that mints up to a fixed amount per call to the caller.
"""

from ethereum.ercs import IERC20

implements: IERC20

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

faucetEnabled: public(bool)
faucetCap: public(uint256)


@deploy
def __init__(
    token_name: String[32],
    token_symbol: String[8],
    token_decimals: uint8,
    initial_supply: uint256,
    faucet_enabled: bool,
    faucet_cap: uint256,
):
    self.name = token_name
    self.symbol = token_symbol
    self.decimals = token_decimals
    self.faucetEnabled = faucet_enabled
    self.faucetCap = faucet_cap
    if initial_supply > 0:
        self._mint(msg.sender, initial_supply)


@internal
def _mint(receiver: address, amount: uint256):
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "AtollToken: transfer to the zero address"
    assert self.balanceOf[sender] >= amount, "AtollToken: insufficient balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "AtollToken: insufficient allowance"
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def faucet(amount: uint256):
    """
    @notice Mint `amount` to the caller. Only where the faucet was enabled at
            deployment (development chains), and at most `faucetCap` per call.
    """
    assert self.faucetEnabled, "AtollToken: faucet disabled"
    assert amount <= self.faucetCap, "AtollToken: amount over the faucet cap"
    self._mint(msg.sender, amount)
