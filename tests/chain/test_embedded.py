"""The embedded chain: persistence across restarts and kill -9, locking, time, refusals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from atoll.chain import (
    ChainError,
    ChainRevert,
    ChainUnavailable,
    ConditionState,
    Contracts,
    EmbeddedChain,
    dev_accounts,
    did_bytes,
    prune,
)

GOV, PUBLISHER, PROVIDER, CONSUMER, STRANGER = dev_accounts()[:5]


def _deploy(chain: EmbeddedChain, cache: Path) -> Contracts:
    book = Contracts.deploy(chain, GOV, cache_dir=cache)
    return Contracts(chain, book, cache_dir=cache)


def test_reopened_chain_keeps_balances_agreements_and_block_number(
    tmp_path: Path, contract_cache: Path
) -> None:
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path)
    c = _deploy(chain, contract_cache)
    did = did_bytes("did:op:" + "ab" * 32)
    c.register_did(PUBLISHER, did, b"\x01" * 32, [PROVIDER.address])
    c.faucet(CONSUMER, 50 * 10**18)
    aid = c.create_agreement(CONSUMER, did, 10**18, max_jobs=4, timeout=900)
    c.lock_payment(CONSUMER, aid)
    block = chain.block_number()
    before = c.agreement(aid)
    ether = chain.balance(GOV.address)
    book = c.book
    chain.close()

    reopened = EmbeddedChain(path)
    try:
        c2 = Contracts(reopened, book, cache_dir=contract_cache)
        assert reopened.block_number() == block
        assert reopened.balance(GOV.address) == ether
        assert c2.balance_of(CONSUMER.address) == 49 * 10**18
        assert c2.balance_of(book.escrow_payment) == 10**18
        assert c2.agreement(aid) == before
        assert c2.did_owner(did) == PUBLISHER.address
        # and it goes on from there
        c2.fulfil_compute(PROVIDER, aid, b"\x05" * 32)
        c2.release(STRANGER, aid)
        assert reopened.block_number() == block + 2
        assert c2.balance_of(PUBLISHER.address) == 10**18
        assert len(c2.events(block + 1, names=["PaymentReleased"])) == 1
    finally:
        reopened.close()


WRITER = textwrap.dedent(
    """
    import json, sys
    from atoll.chain import Contracts, EmbeddedChain, dev_accounts, did_bytes

    path, cache = sys.argv[1], sys.argv[2]
    gov, pub, prov, cons = dev_accounts()[:4]
    chain = EmbeddedChain(path)
    book = Contracts.deploy(chain, gov, cache_dir=cache)
    c = Contracts(chain, book, cache_dir=cache)
    c.faucet(cons, 100 * 10**18)
    c.approve(cons, book.lock_payment, 2**256 - 1)
    did = did_bytes("did:op:" + "42" * 32)
    c.register_did(pub, did, b"\\x01" * 32, [prov.address])
    print(json.dumps({"book": book.to_dict()}), flush=True)
    while True:
        aid = c.create_agreement(cons, did, 10**18)
        c.lock_payment(cons, aid)
        print(json.dumps({"aid": aid.hex(), "block": chain.block_number(),
                          "consumer": c.balance_of(cons.address)}), flush=True)
    """
)


def test_kill_9_loses_nothing_committed(tmp_path: Path, contract_cache: Path) -> None:
    path = tmp_path / "chain.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(contract_cache)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 60
        while len(lines) < 6 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
        # kill it while it is writing: mid-transaction or between two
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(lines) == 6, "the writer stopped early"
    from atoll.chain import AddressBook

    book = AddressBook.from_dict(lines[0]["book"])  # type: ignore[arg-type]
    reported = lines[1:]
    last = reported[-1]

    chain = EmbeddedChain(path)  # the lock died with the process
    try:
        c = Contracts(chain, book, cache_dir=contract_cache)
        assert chain.block_number() >= int(last["block"])  # type: ignore[call-overload]
        for entry in reported:
            a = c.agreement(bytes.fromhex(str(entry["aid"])))
            assert a is not None and a.lock.state is ConditionState.FULFILLED
        # whatever got in after the last report is whole: tokens are conserved
        consumer = c.balance_of(CONSUMER.address)
        escrow = c.balance_of(book.escrow_payment)
        assert consumer + escrow == 100 * 10**18
        assert consumer <= int(last["consumer"])  # type: ignore[call-overload]
        locked = c.events(book.deployed_block, names=["PaymentLocked"])
        assert len(locked) * 10**18 == escrow
        # and the chain goes on
        c.faucet(STRANGER, 1)
        assert c.balance_of(STRANGER.address) >= 1
    finally:
        chain.close()


def test_a_store_opens_in_one_place_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with EmbeddedChain(path), pytest.raises(ChainUnavailable, match="open in another process"):
        EmbeddedChain(path)
    EmbeddedChain(path).close()  # released on close


def test_a_reverting_transaction_is_refused_not_mined(contract_cache: Path) -> None:
    chain = EmbeddedChain()
    c = _deploy(chain, contract_cache)
    block = chain.block_number()
    nonce = chain.nonce(STRANGER.address)
    with pytest.raises(ChainRevert, match="faucet cap"):
        c.faucet(STRANGER, 10**30)
    assert chain.block_number() == block
    assert chain.nonce(STRANGER.address) == nonce
    with pytest.raises(ChainError, match="rejected"):
        chain.transact(STRANGER, STRANGER.address, value=10**40)  # more than it has
    with pytest.raises(ChainError, match="unknown transaction"):
        chain.wait_for_receipt(b"\x00" * 32)
    chain.close()


def test_block_time_follows_the_wall_clock_and_time_travel_persists(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path)
    start = chain.now()
    chain.mine(30)  # thirty blocks in well under thirty seconds
    head = chain.block_number()
    assert chain.block_timestamp(head) <= int(time.time()) + 1
    stamps = [chain.block_timestamp(n) for n in range(head + 1)]
    assert stamps == sorted(stamps)
    chain.increase_time(1_000)
    assert chain.now() >= start + 1_000
    assert chain.block_timestamp(chain.block_number()) >= start + 1_000
    chain.close()
    reopened = EmbeddedChain(path)
    assert reopened.now() >= start + 1_000
    with pytest.raises(ValueError):
        reopened.increase_time(-1)
    reopened.close()


def test_logs_filter_by_address_and_topics(contract_cache: Path) -> None:
    chain = EmbeddedChain()
    c = _deploy(chain, contract_cache)
    start = chain.block_number() + 1
    c.faucet(STRANGER, 7)
    c.transfer(STRANGER, CONSUMER.address, 3)
    transfer = c.abis["AtollToken"].events["Transfer"].topic
    logs = chain.get_logs(start, chain.block_number(), address=c.book.token, topics=[transfer])
    assert len(logs) == 2
    to_consumer = b"\x00" * 12 + bytes.fromhex(CONSUMER.address[2:])
    only = chain.get_logs(start, chain.block_number(), topics=[[transfer], None, [to_consumer]])
    assert len(only) == 1 and only[0].topics[2] == to_consumer
    assert chain.get_logs(start, chain.block_number(), address=c.book.did_registry) == []
    chain.close()


def _agreements(c: Contracts, n: int, start: int = 1) -> list[bytes]:
    made = []
    for i in range(start, start + n):
        did = did_bytes("did:op:" + f"{i:064x}")
        c.register_did(PUBLISHER, did, b"\x01" * 32, [PROVIDER.address])
        aid = c.create_agreement(CONSUMER, did, 10**15, max_jobs=1, timeout=900)
        c.lock_payment(CONSUMER, aid)
        made.append(aid)
    return made


def test_compaction_frees_old_state_and_keeps_what_is_needed(
    tmp_path: Path, contract_cache: Path
) -> None:
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path, compact_every=0)
    c = _deploy(chain, contract_cache)
    first = c.faucet(CONSUMER, 50 * 10**18)
    made = _agreements(c, 8)
    records = [c.agreement(a) for a in made]
    tokens, ether = c.balance_of(CONSUMER.address), chain.balance(GOV.address)
    head = chain.block_number()
    logs = chain.get_logs(0, head)
    before = chain.kv_bytes()
    assert chain.compact(keep_states=1) > 0
    assert chain.kv_bytes() < before * 0.8
    assert chain.compact(keep_states=1) == 0  # nothing left to free

    def intact(ch: EmbeddedChain, cc: Contracts) -> None:
        assert [cc.agreement(a) for a in made] == records
        assert cc.balance_of(CONSUMER.address) == tokens
        assert ch.balance(GOV.address) == ether
        # old blocks, receipts and logs stay readable: the keeper and receipts need them
        assert ch.wait_for_receipt(first.tx_hash) == first
        assert ch.get_logs(0, head) == logs
        assert ch.block_timestamp(1) <= ch.block_timestamp(head)

    intact(chain, c)
    _agreements(c, 2, start=100)  # and the chain goes on from the compacted state
    tokens = c.balance_of(CONSUMER.address)
    chain.close()
    reopened = EmbeddedChain(path, compact_every=0)
    try:
        intact(reopened, Contracts(reopened, c.book, cache_dir=contract_cache))
        _agreements(Contracts(reopened, c.book, cache_dir=contract_cache), 1, start=200)
    finally:
        reopened.close()


def test_the_chain_compacts_itself_as_it_grows(tmp_path: Path, contract_cache: Path) -> None:
    sizes = []
    for every in (0, 8):
        chain = EmbeddedChain(tmp_path / f"chain-{every}.sqlite", compact_every=every)
        c = _deploy(chain, contract_cache)
        c.faucet(CONSUMER, 50 * 10**18)
        made = _agreements(c, 10)
        assert c.agreement(made[0]).consumer == CONSUMER.address
        sizes.append(chain.kv_bytes())
        chain.close()
    never, often = sizes
    assert often < never * 0.8


def test_compacting_as_it_goes_misses_nothing_a_full_look_would_find(
    tmp_path: Path, contract_cache: Path
) -> None:
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path, compact_every=4)
    c = _deploy(chain, contract_cache)
    c.faucet(CONSUMER, 50 * 10**18)
    made = _agreements(c, 6)
    chain.compact()  # since the last one: only the kept state and what was written
    records = [c.agreement(a) for a in made]
    chain.close()
    reopened = EmbeddedChain(path, compact_every=4)
    try:
        assert reopened.compact() == 0  # the first after opening looks at every node
        again = Contracts(reopened, c.book, cache_dir=contract_cache)
        assert [again.agreement(a) for a in made] == records
        _agreements(again, 2, start=50)
    finally:
        reopened.close()


def test_the_state_kept_between_compactions_is_listed_in_the_file_not_held(
    tmp_path: Path, contract_cache: Path
) -> None:
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path, compact_every=4)
    try:
        c = _deploy(chain, contract_cache)
        c.faucet(CONSUMER, 50 * 10**18)
        _agreements(c, 2)
        chain.compact()
        with sqlite3.connect(path) as conn:
            before = conn.execute("SELECT count(*) FROM kept_state").fetchone()[0]
        _agreements(c, 4, start=10)
        chain.compact()
        with sqlite3.connect(path) as conn:
            after = conn.execute("SELECT count(*) FROM kept_state").fetchone()[0]
        # it grows with every agreement: in the file, not in the server's memory
        assert 0 < before < after
        assert not any(isinstance(v, set | bytes) for v in vars(chain).values())
    finally:
        chain.close()


def test_a_compaction_s_memory_does_not_follow_the_live_state(
    tmp_path: Path, contract_cache: Path
) -> None:
    """What a compaction has seen is kept in SQLite, not in a set of every live node: that
    set's peak grew with each agreement, and each compaction left the interpreter's memory a
    little more fragmented. Two compactions of the same work, one over five times the state
    of the other, peak alike."""
    chain = EmbeddedChain(tmp_path / "chain.sqlite", compact_every=10**9)  # only when asked
    try:
        c = _deploy(chain, contract_cache)
        c.faucet(CONSUMER, 50 * 10**18)
        _agreements(c, 4)
        chain.compact()

        def peak_of_a_compaction(start: int) -> int:
            """The least of three peaks: tracemalloc counts every thread of the process, and
            a thread an earlier test left (a client's event loop, a logger) may allocate
            during one compaction, not during all three."""
            peaks = []
            for n in range(3):
                _agreements(c, 2, start=start + 10 * n)
                tracemalloc.start()
                try:
                    chain.compact()
                    peaks.append(tracemalloc.get_traced_memory()[1])
                finally:
                    tracemalloc.stop()
            return min(peaks)

        small = peak_of_a_compaction(100)
        _agreements(c, 36, start=200)
        chain.compact()
        large = peak_of_a_compaction(300)
        assert large < small * 1.3 + 16 * 1024, (small, large)
    finally:
        chain.close()


def test_the_state_cache_is_bounded_by_bytes(contract_cache: Path) -> None:
    bound = 64 * 1024
    chain = EmbeddedChain(cache_bytes=bound)
    c = _deploy(chain, contract_cache)
    c.faucet(CONSUMER, 50 * 10**18)
    _agreements(c, 3)
    assert 0 < chain._kv.cache_bytes <= bound
    chain.close()


def test_the_trie_s_node_cache_is_let_go_after_each_block(contract_cache: Path) -> None:
    """py-trie's process-wide cache of encoded nodes (bounded by 4,096 entries, not bytes, and
    holding the tries that filled it) is emptied as each block is committed or refused and
    each call answered: it holds no more than the last step's nodes, however many blocks."""
    from trie import HexaryTrie

    cache = HexaryTrie._cached_create_node_to_db_mapping
    chain = EmbeddedChain()
    c = _deploy(chain, contract_cache)
    for i in range(20):
        c.faucet(STRANGER, 10**15 + i)
        assert cache.cache_info().currsize <= 40
    with pytest.raises(ChainRevert):
        c.faucet(STRANGER, 10**30)
    assert cache.cache_info().currsize <= 40
    chain.close()


def test_a_compaction_leaves_the_state_cache_as_it_found_it(
    tmp_path: Path, contract_cache: Path
) -> None:
    """A compaction reads every live node once: through the cache, it would replace the
    nodes the next blocks need (and churn the server's memory with the whole state)."""
    path = tmp_path / "chain.sqlite"
    chain = EmbeddedChain(path, compact_every=0)
    c = _deploy(chain, contract_cache)
    c.faucet(CONSUMER, 50 * 10**18)
    _agreements(c, 4)
    chain.close()
    reopened = EmbeddedChain(path, compact_every=0)  # nothing of the state cached yet

    def cached_nodes() -> list[bytes]:
        items = reopened._kv._cache._items.items()
        return [k for k, v in items if prune.is_trie_node(prune.decode(v))]

    try:
        before = cached_nodes()
        assert reopened.compact() > 0
        # the headers of the states it keeps are read as any read is; the nodes are not
        assert cached_nodes() == before
        again = Contracts(reopened, c.book, cache_dir=contract_cache)
        _agreements(again, 1, start=50)  # and blocks still read and cache what they need
        assert len(cached_nodes()) > len(before)
    finally:
        reopened.close()
