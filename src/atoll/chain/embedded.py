"""An Ethereum chain inside the process (py-evm), persisted in one SQLite file.

py-evm keeps all chain state (trie nodes, headers, blocks, canonical index) in
one key-value store. Here that store is a SQLite table: each transaction is
executed, mined into its own block and committed to SQLite in one SQLite
transaction together with the receipt and log rows, before ``send`` returns. So
a process killed at any moment reopens at the last block it reported, with all
balances and contract storage intact, and nothing is replayed on open.

Choices that keep it fast and simple:

- one block per transaction, mined at once (post-merge rules: no proof of work);
- a transaction that would revert is refused, not mined (as gas estimation makes
  a JSON-RPC node refuse it), so it raises :class:`ChainRevert` and uses no nonce;
- blocks are not re-validated after mining, which lets consecutive blocks share
  a timestamp: block time follows the wall clock (plus a persisted offset that
  ``increase_time`` moves) instead of running ahead by one second per block;
- receipts and logs are indexed in their own tables, so log queries cost only
  the rows in the requested range.

Only one process may open a store at a time (an exclusive lock on
``<path>.lock``); threads of that process share one instance.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.constants import (
    BLANK_ROOT_HASH,
    POST_MERGE_DIFFICULTY,
    POST_MERGE_MIX_HASH,
    POST_MERGE_NONCE,
    ZERO_ADDRESS,
)
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.exceptions import PyEVMError, Revert
from eth.vm.forks.cancun import CancunVM
from eth.vm.message import Message
from eth_typing import Address, BlockNumber
from eth_utils.address import to_canonical_address
from eth_utils.exceptions import ValidationError
from trie.hexary import HexaryTrie

from . import prune
from .abi import decode_revert_reason
from .base import (
    DEV_BALANCE,
    Log,
    Receipt,
    Signer,
    TopicFilter,
    as_account,
    checksum,
    dev_accounts,
)
from .errors import ChainError, ChainRevert, ChainUnavailable
from .kvcache import ByteBoundedLRU

#: Default chain id of embedded chains (the common development chain id).
EMBEDDED_CHAIN_ID = 1337
GAS_LIMIT = 30_000_000
#: Gas given to a transaction sent without an explicit limit. Only gas used is
#: charged; the sender needs ``limit * max fee`` up front.
DEFAULT_TX_GAS = 10_000_000
CALL_GAS = 50_000_000
#: blocks between two compactions of the chain state (0: never)
COMPACT_EVERY = 64
#: state roots kept reachable by a compaction: the head's and those just before it
KEEP_STATES = 4
#: memory for committed chain data (trie nodes, headers) read back from SQLite
DEFAULT_CACHE_BYTES = 4 << 20
_SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kept_state (k BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY,
    block_number INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    status INTEGER NOT NULL,
    gas_used INTEGER NOT NULL,
    contract_address BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    tx_hash BLOB NOT NULL,
    address BLOB NOT NULL,
    topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB,
    data BLOB NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_topic0 ON logs (topic0, block_number);
CREATE INDEX IF NOT EXISTS logs_address ON logs (address, block_number);
"""


class SqliteKV(BaseDB):
    """py-evm's key-value store on a SQLite table.

    Writes collect in memory until :meth:`flush`, which the chain calls inside the
    SQLite transaction that commits a block; :meth:`discard` drops them (a refused
    transaction). Committed values are cached in memory, least recently used first out,
    up to a bound in bytes (trie nodes vary from tens of bytes to kilobytes, so a count
    would bound nothing).
    """

    _DELETED = b""

    def __init__(self, conn: sqlite3.Connection, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._conn = conn
        self._pending: dict[bytes, bytes | None] = {}
        self._cache = ByteBoundedLRU(cache_bytes)
        #: hash-keyed entries written since :attr:`written` was last cleared, while
        #: :attr:`track` is set (by a chain that compacts itself)
        self.written: set[bytes] = set()
        self.track = False

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        value = self._read(key)
        if value is None:
            raise KeyError(key)
        self._remember(key, value)
        return value

    def peek(self, key: bytes) -> bytes | None:
        """The value of ``key`` (None if absent) without making it recent or caching it: a
        walk over the whole state (compaction) would otherwise replace every cached node
        with one it reads once, and the nodes the next blocks need would be read again."""
        if key in self._pending:
            return self._pending[key]
        cached = self._cache.peek(key)
        return cached if cached is not None else self._read(key)

    def _read(self, key: bytes) -> bytes | None:
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = None

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def _remember(self, key: bytes, value: bytes) -> None:
        self._cache.put(key, value)

    @property
    def cache_bytes(self) -> int:
        """What the cache holds now, by the same measure as its bound."""
        return self._cache.size

    def flush(self) -> None:
        """Write pending changes (call inside the committing SQLite transaction)."""
        puts = [(k, v) for k, v in self._pending.items() if v is not None]
        dels = [(k,) for k, v in self._pending.items() if v is None]
        if puts:
            self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            if self.track:
                # what the next compaction must look at beyond the state it kept last time
                self.written.update(k for k, _ in puts if len(k) == prune.HASH_LEN)
        if dels:
            self._conn.executemany("DELETE FROM kv WHERE k = ?", dels)

    def committed(self) -> None:
        """The SQLite transaction holding the last :meth:`flush` committed."""
        for k, v in self._pending.items():
            if v is None:
                self._cache.pop(k)
            else:
                self._remember(k, v)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()

    def forget(self, key: bytes) -> None:
        """Drop ``key`` from the cache (deleted from the table behind this store's back), so
        that a read of it fails instead of being served from memory."""
        self._cache.pop(key)


def _chain_class(chain_id: int) -> type[MiningChain]:
    klass: type[MiningChain] = MiningChain.configure(
        __name__="AtollEmbeddedChain",
        vm_configuration=((0, CancunVM),),
        chain_id=chain_id,
    )
    return klass


def _topic_bytes(topic: int) -> bytes:
    return topic.to_bytes(32, "big")


def _revert_reason(computation: ComputationAPI) -> str:
    error = computation.error
    if isinstance(error, Revert):
        return decode_revert_reason(bytes(computation.output))
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def forget_trie_nodes() -> None:
    """py-trie keeps the last 4,096 nodes its pruning tries encoded, with the tries that
    encoded them, in one cache for the whole process: bounded by entries, not bytes, it grew
    the server by tens of megabytes over its first thousand jobs. Only a block's (or a
    call's) own work reuses them: they are let go when it is committed, rolled back or
    answered."""
    HexaryTrie._cached_create_node_to_db_mapping.cache_clear()


class EmbeddedChain:
    """A development chain in this process, persisted to ``path`` (SQLite).

    ``path=None`` keeps everything in memory. ``chain_id`` applies to a new store
    (default :data:`EMBEDDED_CHAIN_ID`); a reopened store keeps its own, and
    asking for a different one is an error. ``durable=True`` makes SQLite fsync
    every commit (survives power loss, slower); the default already survives the
    process being killed. A new store gets :data:`~atoll.chain.base.DEV_BALANCE`
    ether on each development account (the anvil mnemonic's first ten).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        chain_id: int | None = None,
        durable: bool = False,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        compact_every: int = COMPACT_EVERY,
    ) -> None:
        self._rlock = threading.RLock()
        self._compact_every = compact_every
        self._lock_file: int | None = None
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = self._acquire_lock(self.path)
        try:
            self._conn = sqlite3.connect(
                str(self.path) if self.path is not None else ":memory:",
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.executescript(_SCHEMA)
            self._kv = SqliteKV(self._conn, cache_bytes)
            self._kv.track = compact_every > 0
            self._db = AtomicDB(self._kv)
            stored_id = self._meta("chain_id")
            if stored_id is None:
                self._chain_id = chain_id if chain_id is not None else EMBEDDED_CHAIN_ID
                self._time_offset = 0
                self._chain = self._create_genesis()
            else:
                self._chain_id = int(stored_id)
                if chain_id is not None and chain_id != self._chain_id:
                    raise ChainError(f"store holds chain id {self._chain_id}, asked for {chain_id}")
                self._time_offset = int(self._meta("time_offset") or 0)
                self._chain = _chain_class(self._chain_id)(self._db)
            self._compacted_at = int(self._meta("compacted_at") or 0)
            #: whether ``kept_state`` holds the state nodes the last compaction since opening
            #: kept. They are listed in the file, not held in memory: the live state grows
            #: with every agreement (some thirty nodes each), the server's memory must not.
            self._kept_known = False
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------

    @staticmethod
    def _acquire_lock(path: Path) -> int:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ChainUnavailable(f"embedded chain {path} is open in another process") from None
        return fd

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def _create_genesis(self) -> MiningChain:
        params: dict[str, Any] = {
            "coinbase": ZERO_ADDRESS,
            "difficulty": POST_MERGE_DIFFICULTY,
            "extra_data": b"",
            "gas_limit": GAS_LIMIT,
            "mix_hash": POST_MERGE_MIX_HASH,
            "nonce": POST_MERGE_NONCE,
            "receipt_root": BLANK_ROOT_HASH,
            "timestamp": int(time.time()),
            "transaction_root": BLANK_ROOT_HASH,
        }
        state: dict[Address, Any] = {
            Address(to_canonical_address(acct.address)): {
                "balance": DEV_BALANCE,
                "nonce": 0,
                "code": b"",
                "storage": {},
            }
            for acct in dev_accounts()
        }
        chain = _chain_class(self._chain_id).from_genesis(self._db, params, state)
        assert isinstance(chain, MiningChain)
        with self._commit():
            self._set_meta("schema", _SCHEMA_VERSION)
            self._set_meta("chain_id", str(self._chain_id))
            self._set_meta("time_offset", "0")
        return chain

    class _Commit:
        def __init__(self, outer: EmbeddedChain) -> None:
            self.outer = outer

        def __enter__(self) -> None:
            self.outer._conn.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            conn = self.outer._conn
            try:
                if exc_type is None:
                    self.outer._kv.flush()
                    conn.execute("COMMIT")
                    self.outer._kv.committed()
                else:
                    conn.execute("ROLLBACK")
                    self.outer._kv.discard()
            finally:
                forget_trie_nodes()

    def _commit(self) -> EmbeddedChain._Commit:
        return EmbeddedChain._Commit(self)

    def _head(self) -> BlockHeaderAPI:
        return self._chain.chaindb.get_canonical_head()

    def _next_header(self) -> BlockHeaderAPI:
        head = self._head()
        ts = max(head.timestamp, int(time.time()) + self._time_offset)
        return self._chain.create_header_from_parent(head, timestamp=ts, gas_limit=head.gas_limit)

    def _mine(self) -> BlockHeaderAPI:
        """Finalise the pending block (``self._chain.header``) and persist it."""
        vm = self._chain.get_vm(self._chain.header)
        block = vm.finalize_block(vm.get_block()).block
        self._chain.chaindb.persist_block(block)
        return block.header

    # -- Chain ------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def is_dev(self) -> bool:
        return True

    def block_number(self) -> int:
        with self._rlock:
            return int(self._head().block_number)

    def now(self) -> int:
        with self._rlock:
            return max(int(self._head().timestamp), int(time.time()) + self._time_offset)

    def base_fee(self) -> int:
        """The base fee a transaction sent now must cover (EIP-1559)."""
        with self._rlock:
            return int(self._next_header().base_fee_per_gas or 0)

    def block_timestamp(self, block_number: int) -> int:
        with self._rlock:
            header = self._chain.chaindb.get_canonical_block_header_by_number(
                BlockNumber(block_number)
            )
            return int(header.timestamp)

    def accounts(self) -> list[str]:
        return [acct.address for acct in dev_accounts()]

    def _state(self) -> Any:
        return self._chain.get_vm(self._head()).state

    def balance(self, address: str) -> int:
        with self._rlock:
            return int(self._state().get_balance(to_canonical_address(address)))

    def nonce(self, address: str) -> int:
        with self._rlock:
            return int(self._state().get_nonce(to_canonical_address(address)))

    def code(self, address: str) -> bytes:
        with self._rlock:
            return bytes(self._state().get_code(to_canonical_address(address)))

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        """Evaluate a call as if in the next block (its timestamp is :meth:`now`)."""
        with self._rlock:
            vm = self._chain.get_vm(self._next_header())
            state = vm.state
            target = Address(to_canonical_address(to))
            origin = Address(to_canonical_address(sender) if sender else ZERO_ADDRESS)
            message = Message(
                gas=CALL_GAS,
                to=target,
                sender=origin,
                value=0,
                data=data,
                code=state.get_code(target),
            )
            context = state.get_transaction_context_class()(gas_price=0, origin=origin)
            context._blob_versioned_hashes = ()  # type: ignore[attr-defined]  # for BLOBHASH
            computation = state.computation_class.apply_message(state, message, context)
            self._kv.discard()  # a call never writes, but never let it leak
            forget_trie_nodes()
            if computation.is_error:
                raise ChainRevert(_revert_reason(computation))
            return bytes(computation.output)

    def send(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> bytes:
        account = as_account(signer)
        with self._rlock:
            header = self._next_header()
            nonce = self._chain.get_vm(header).state.get_nonce(
                to_canonical_address(account.address)
            )
            base_fee = int(header.base_fee_per_gas or 0)
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self._chain_id,
                "nonce": nonce,
                "gas": gas if gas is not None else DEFAULT_TX_GAS,
                "maxFeePerGas": 2 * base_fee + 1,
                "maxPriorityFeePerGas": 0,
                "value": value,
                "data": data,
            }
            if to is not None:
                tx["to"] = checksum(to)
            raw = bytes(account.sign_transaction(tx).raw_transaction)
            return self._apply_raw(raw, header)

    def send_raw(self, raw: bytes) -> bytes:
        """Apply an already signed transaction; returns its hash."""
        with self._rlock:
            return self._apply_raw(raw, self._next_header())

    def _apply_raw(self, raw: bytes, header: BlockHeaderAPI) -> bytes:
        chain = self._chain
        chain.header = header
        try:
            tx: SignedTransactionAPI = chain.get_vm(header).get_transaction_builder().decode(raw)
            try:
                _block, receipt, computation = chain.apply_transaction(tx)
            except (ValidationError, PyEVMError) as exc:
                raise ChainError(f"transaction rejected: {exc}") from exc
            if computation.is_error:
                raise ChainRevert(_revert_reason(computation), tx_hash=bytes(tx.hash))
            with self._commit():
                mined = self._mine()
                self._record(mined, tx, receipt.gas_used, receipt.logs, computation)
        except BaseException:
            self._kv.discard()
            chain.header = header
            raise
        if self._compact_every and int(mined.block_number) >= (
            self._compacted_at + self._compact_every
        ):
            self.compact()
        return bytes(tx.hash)

    def compact(self, keep_states: int = KEEP_STATES) -> int:
        """Delete the trie nodes that neither the last ``keep_states`` states nor any
        block's transactions, receipts or withdrawals reach (see :mod:`.prune`); returns
        how many. SQLite reuses the freed pages, so the file stops growing by them.

        The first compaction after opening looks at every node; later ones only at the
        state they kept last time and at what was written since (old blocks' tries never
        change), so their cost follows the live state, not the chain's history."""
        with self._rlock:
            head = int(self._head().block_number)
            chaindb = self._chain.chaindb
            state_roots = [
                bytes(chaindb.get_canonical_block_header_by_number(BlockNumber(n)).state_root)
                for n in range(max(0, head - keep_states + 1), head + 1)
            ]
            conn = self._conn
            block_roots: list[bytes] = []
            with self._commit():
                # what was seen and what may go are tables of SQLite's (see prune.walk)
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS reach"
                    " (k BLOB PRIMARY KEY, state INTEGER NOT NULL) WITHOUT ROWID"
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS maybe (k BLOB PRIMARY KEY) WITHOUT ROWID"
                )
                if not self._kept_known or not self._kv.track:
                    rows = conn.execute("SELECT k, v FROM kv WHERE length(k) = 32")
                    for key, value in rows:
                        decoded = prune.decode(bytes(value))
                        if prune.is_trie_node(decoded):
                            conn.execute("INSERT INTO temp.maybe (k) VALUES (?)", (key,))
                        else:
                            block_roots.extend(prune.block_roots(decoded))
                else:
                    for n in range(self._compacted_at + 1, head + 1):
                        header = chaindb.get_canonical_block_header_by_number(BlockNumber(n))
                        block_roots += [bytes(header.transaction_root), bytes(header.receipt_root)]
                        withdrawals = getattr(header, "withdrawals_root", None)
                        if withdrawals is not None:
                            block_roots.append(bytes(withdrawals))
                    conn.execute("INSERT INTO temp.maybe (k) SELECT k FROM kept_state")
                    conn.executemany(
                        "INSERT OR IGNORE INTO temp.maybe (k) VALUES (?)",
                        ((k,) for k in self._kv.written),
                    )
                self._kv.written.clear()

                def seen(state: int) -> Callable[[bytes], bool]:
                    def visit(key: bytes) -> bool:
                        added = conn.execute(
                            "INSERT OR IGNORE INTO temp.reach (k, state) VALUES (?, ?)",
                            (key, state),
                        )
                        return added.rowcount == 1

                    return visit

                prune.walk(self._stored, seen(1), state_roots, [])
                prune.walk(self._stored, seen(0), [], block_roots)
                garbage: list[bytes] = []
                unseen = "SELECT k FROM temp.maybe WHERE k NOT IN (SELECT k FROM temp.reach)"
                for (key,) in conn.execute(unseen):
                    value = self._stored(key)
                    if value is not None and prune.is_trie_node(prune.decode(value)):
                        garbage.append(key)
                conn.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k in garbage])
                conn.execute("DELETE FROM kept_state")
                conn.execute("INSERT INTO kept_state (k) SELECT k FROM temp.reach WHERE state = 1")
                conn.execute("DELETE FROM temp.reach")
                conn.execute("DELETE FROM temp.maybe")
                self._set_meta("compacted_at", str(head))
            for key in garbage:
                self._kv.forget(key)
            self._compacted_at = head
            self._kept_known = True
            return len(garbage)

    def _stored(self, key: bytes) -> bytes | None:
        return self._kv.peek(key)

    def kv_bytes(self) -> int:
        """Bytes of keys and values in the chain's key-value table."""
        with self._rlock:
            row = self._conn.execute("SELECT SUM(length(k) + length(v)) FROM kv").fetchone()
            return int(row[0] or 0)

    def _record(
        self,
        header: BlockHeaderAPI,
        tx: SignedTransactionAPI,
        gas_used: int,
        logs: Sequence[Any],
        computation: ComputationAPI,
    ) -> None:
        number = int(header.block_number)
        tx_hash = bytes(tx.hash)
        created = None
        if tx.to == b"":
            created = bytes(computation.msg.storage_address)
        self._conn.execute(
            "INSERT INTO txs (hash, block_number, tx_index, status, gas_used, contract_address)"
            " VALUES (?, ?, 0, 1, ?, ?)",
            (tx_hash, number, int(gas_used), created),
        )
        rows = []
        for i, log in enumerate(logs):
            topics = [_topic_bytes(t) for t in log.topics] + [None] * (4 - len(log.topics))
            rows.append((number, i, 0, tx_hash, bytes(log.address), *topics[:4], bytes(log.data)))
        if rows:
            self._conn.executemany(
                "INSERT INTO logs (block_number, log_index, tx_index, tx_hash, address,"
                " topic0, topic1, topic2, topic3, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 120.0) -> Receipt:
        with self._rlock:
            row = self._conn.execute(
                "SELECT block_number, tx_index, status, gas_used, contract_address"
                " FROM txs WHERE hash = ?",
                (bytes(tx_hash),),
            ).fetchone()
            if row is None:
                raise ChainError(f"unknown transaction 0x{bytes(tx_hash).hex()}")
            number, _index, status, gas_used, created = row
            logs = self._query_logs(
                "SELECT * FROM logs WHERE block_number = ? AND tx_hash = ? ORDER BY log_index",
                (number, bytes(tx_hash)),
            )
            return Receipt(
                tx_hash=bytes(tx_hash),
                block_number=int(number),
                gas_used=int(gas_used),
                status=int(status),
                contract_address=checksum(bytes(created)) if created else None,
                logs=tuple(logs),
            )

    def transact(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        return self.wait_for_receipt(self.send(signer, to, data, value=value, gas=gas))

    def get_logs(
        self,
        from_block: int,
        to_block: int,
        *,
        address: str | Sequence[str] | None = None,
        topics: Sequence[TopicFilter] | None = None,
    ) -> list[Log]:
        sql = ["SELECT * FROM logs WHERE block_number BETWEEN ? AND ?"]
        args: list[Any] = [int(from_block), int(to_block)]
        if address is not None:
            addresses = [address] if isinstance(address, str) else list(address)
            sql.append(f"AND address IN ({','.join('?' * len(addresses))})")
            args.extend(to_canonical_address(a) for a in addresses)
        for i, flt in enumerate(list(topics or ())[:4]):
            if flt is None:
                continue
            values = [bytes(flt)] if isinstance(flt, bytes | bytearray) else [bytes(v) for v in flt]
            sql.append(f"AND topic{i} IN ({','.join('?' * len(values))})")
            args.extend(values)
        sql.append("ORDER BY block_number, log_index")
        with self._rlock:
            return list(self._query_logs(" ".join(sql), args))

    def _query_logs(self, sql: str, args: Sequence[Any]) -> Iterator[Log]:
        for row in self._conn.execute(sql, args).fetchall():
            number, log_index, tx_index, tx_hash, address, t0, t1, t2, t3, data = row
            yield Log(
                address=checksum(bytes(address)),
                topics=tuple(bytes(t) for t in (t0, t1, t2, t3) if t is not None),
                data=bytes(data),
                block_number=int(number),
                tx_hash=bytes(tx_hash),
                tx_index=int(tx_index),
                log_index=int(log_index),
            )

    def increase_time(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._rlock:
            self._time_offset += int(seconds)
            with self._commit():
                self._set_meta("time_offset", str(self._time_offset))
            self.mine()

    def mine(self, blocks: int = 1) -> None:
        with self._rlock:
            for _ in range(blocks):
                self._chain.header = self._next_header()
                try:
                    with self._commit():
                        self._mine()
                except BaseException:
                    self._chain.header = self._next_header()
                    raise

    def close(self) -> None:
        with self._rlock:
            conn = getattr(self, "_conn", None)
            if conn is not None:
                conn.close()
                del self._conn
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
