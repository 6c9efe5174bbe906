"""Which trie nodes of a py-evm key-value store are still needed.

Every block writes new nodes along the paths of the accounts and storage slots it changed;
the old versions stay in the store, unreachable from the new state root. Nothing here
serves historical state (calls and balances are always at the head), so a node is needed
only if it is reachable from a recent state root (the accounts, their storage, their code)
or from a block's transaction, receipt or withdrawal root (blocks and receipts stay
readable for ever). The rest can be deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth.constants import BLANK_ROOT_HASH

HASH_LEN = 32
#: a header is an RLP list of 15 fields (Frontier) to 20 (Cancun); trie nodes have 2 or 17
HEADER_MIN_FIELDS = 15
_TX_ROOT, _RECEIPT_ROOT, _WITHDRAWALS_ROOT = 4, 5, 16


def decode(value: bytes) -> Any:
    try:
        return rlp.decode(value)
    except Exception:  # code or other raw bytes: not a node
        return None


def is_trie_node(decoded: Any) -> bool:
    return isinstance(decoded, list) and len(decoded) in (2, 17)


def block_roots(decoded_header: Any) -> list[bytes]:
    """The transaction, receipt and withdrawal roots of a decoded header, if it is one."""
    if not isinstance(decoded_header, list) or len(decoded_header) < HEADER_MIN_FIELDS:
        return []
    indexes = [_TX_ROOT, _RECEIPT_ROOT]
    if len(decoded_header) > _WITHDRAWALS_ROOT:
        indexes.append(_WITHDRAWALS_ROOT)
    return [bytes(decoded_header[i]) for i in indexes]


def walk(
    get: Callable[[bytes], bytes | None],
    visit: Callable[[bytes], bool],
    state_roots: Iterable[bytes],
    other_roots: Iterable[bytes],
) -> None:
    """Call ``visit`` with the hash of every node reachable from ``state_roots`` (account
    tries: their storage tries and code too) and from ``other_roots`` (plain tries); a node's
    children are walked only where ``visit`` says it was not seen before.

    The caller keeps what was seen (the embedded chain in a table of SQLite's): a set of
    every live node here, rebuilt with each compaction as the state grows, left the
    interpreter's memory a little more fragmented each time."""
    stack: list[tuple[Any, bool]] = [(r, True) for r in state_roots]
    stack += [(r, False) for r in other_roots]
    while stack:
        ref, accounts = stack.pop()
        node: Any
        if isinstance(ref, list):
            node = ref  # embedded in its parent (shorter than a hash)
        else:
            ref = bytes(ref)
            if len(ref) != HASH_LEN or ref == BLANK_ROOT_HASH or not visit(ref):
                continue
            raw = get(ref)
            node = None if raw is None else decode(raw)
            if node is None:
                continue
        if len(node) == 17:
            stack.extend((child, accounts) for child in node[:16] if child)
        elif len(node) == 2:
            path = bytes(node[0])
            is_leaf = bool(path) and path[0] >> 4 in (2, 3)
            if not is_leaf:
                stack.append((node[1], accounts))
            elif accounts:
                account = decode(bytes(node[1]))
                if isinstance(account, list) and len(account) == 4:
                    # [nonce, balance, storage root, code hash]
                    stack.append((bytes(account[2]), False))
                    visit(bytes(account[3]))
