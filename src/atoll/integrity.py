"""What a node checks before it serves: that its store and its chain are whole and are its
own. Each failure is one line saying what is wrong and how to restore; nothing is served
from a store or a chain that failed.

- ``store.json`` in the node directory names the node's store (a random id, also written in
  the store) and its generation at the last start. A store without the id while the file
  names one was emptied or replaced; a store with another id belongs to another node; a
  store at a lower generation lost its newest writes (a SQLite write-ahead log lost after a
  crash, an old copy put back by hand).
- SQLite files (the store, the embedded chain) pass ``PRAGMA quick_check``; every entry of
  the embedded chain's content-addressed state is its own keccak hash.
- The store's identity (chain id, contract addresses, provider address, the deployment
  block's time and the contracts' code) matches the node's key, its address book and what
  the chain holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_hash.auto import keccak
from sqlalchemy import Engine, insert, select, update

from atoll.chain.deployment import ChainNode
from atoll.chain.errors import ChainError
from atoll.db.schema import node_identity
from atoll.errors import ConfigError

RESTORE = "stop the node and restore the last backup with `atoll restore BACKUP` (README: Recovery)"


# -- the node directory's record of its store -------------------------------------------------


@dataclass
class StoreMarker:
    store_id: str
    #: the store's generation at this node's last start (see :func:`check_identity`)
    generation: int = 0

    @staticmethod
    def path(home: Path) -> Path:
        return home / "store.json"

    @classmethod
    def load(cls, home: Path) -> StoreMarker | None:
        path = cls.path(home)
        try:
            data = json.loads(path.read_text())
            return cls(str(data["store_id"]), int(data.get("generation", 0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{path} is unreadable: {RESTORE}") from None

    def save(self, home: Path) -> None:
        path = self.path(home)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)) + "\n")
        os.replace(tmp, path)


# -- SQLite files -----------------------------------------------------------------------------


def quick_check(path: Path, what: str) -> None:
    """``PRAGMA quick_check`` on an SQLite file: structure, pages and records."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{what} {path} is corrupt ({exc}): {RESTORE}") from None
    # SQLite reports each problem on its own line, under a "*** in database main ***" title
    problems = [
        line.strip()
        for r in rows
        if r[0] != "ok"
        for line in str(r[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise ConfigError(f"{what} {path} is corrupt ({problems[0]}{more}): {RESTORE}")


def check_sqlite_store(path: Path, marker: StoreMarker | None) -> None:
    """Before the store is opened: the file is there if the node has used one, and whole."""
    if marker is not None and (not path.exists() or path.stat().st_size == 0):
        raise ConfigError(
            f"the store {path} is missing or empty, but this node has used store "
            f"{marker.store_id}: {RESTORE}"
        )
    if path.exists():
        quick_check(path, "the store")


def check_chain_file(path: Path) -> None:
    """The embedded chain's file: whole, and its state entries are what their keys say."""
    if not path.exists():
        return
    quick_check(path, "the chain file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            # py-evm keys its tries, code and headers by the keccak of the value; any
            # other key is longer or shorter than 32 bytes
            for k, v in conn.execute("SELECT k, v FROM kv WHERE length(k) = 32"):
                if keccak(bytes(v)) != bytes(k):
                    raise ConfigError(
                        f"the chain file {path} is corrupt (entry {bytes(k).hex()[:16]}… does "
                        f"not match its hash): {RESTORE}"
                    )
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"the chain file {path} is corrupt ({exc}): {RESTORE}") from None


# -- identity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeIdentity:
    store_id: str
    chain_id: int
    provider: str
    #: the address book as JSON (contract names → addresses, deployment block)
    contracts: str
    #: time of the deployment block: tells one chain from another with the same id
    deployed_at: int
    #: sha256 over the contracts' code, in name order
    code: str

    def rows(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def observed(node: ChainNode, provider: str, store_id: str) -> NodeIdentity:
    """The identity as the node's key, address book and chain show it now."""
    book = node.contracts.book
    # the contracts every deployment has: the access service's are added to an older
    # deployment at a later start, which must not make the node look like another's
    core = book.core_contracts()
    try:
        deployed_at = node.chain.block_timestamp(book.deployed_block)
        code = hashlib.sha256()
        for name, address in sorted(core.items()):
            body = node.chain.code(address)
            if not body:
                raise ConfigError(
                    f"the chain holds no {name} at {address}: the chain is another node's "
                    f"or was reset: {RESTORE}"
                )
            code.update(keccak(body))
    except ChainError as exc:
        raise ConfigError(f"the chain cannot be read ({exc}): {RESTORE}") from None
    contracts = json.dumps({"deployed_block": book.deployed_block, **core}, sort_keys=True)
    return NodeIdentity(
        store_id=store_id,
        chain_id=node.chain.chain_id,
        provider=provider.lower(),
        contracts=contracts,
        deployed_at=deployed_at,
        code=code.hexdigest(),
    )


def read_identity(db: Engine) -> dict[str, str]:
    with db.connect() as conn:
        rows = conn.execute(select(node_identity.c.name, node_identity.c.value)).all()
    return {r.name: r.value for r in rows}


_WHAT = {
    "provider": "the store belongs to provider {stored}; this node's key is {now}",
    "chain_id": "the store belongs to chain {stored}; the node is on chain {now}",
    "contracts": "the store was made with another deployment of the contracts than "
    "addresses.json names",
    "deployed_at": "the chain is not the one this node's store was made on (its deployment "
    "block has another time)",
    "code": "the contracts' code on the chain differs from what the store recorded: the chain "
    "file is corrupt or another node's",
}


def check_identity(home: Path, db: Engine, node: ChainNode, provider: str) -> None:
    """The store is this node's, on this chain, and not older than at the node's last start;
    a node's first start writes the identity. Each start then moves the store's generation
    on, in the store first and in ``store.json`` after: a store found at a lower generation
    than ``store.json`` lost what it wrote since that start (a lost write-ahead log, an old
    copy put back by hand)."""
    marker = StoreMarker.load(home)
    stored = read_identity(db)
    if not stored:
        if marker is not None:
            raise ConfigError(
                f"the store is empty, but this node has used store {marker.store_id}: {RESTORE}"
            )
        identity = observed(node, provider, uuid.uuid4().hex)
        with db.begin() as conn:
            conn.execute(
                insert(node_identity),
                [{"name": k, "value": v} for k, v in identity.rows().items()],
            )
        stored = identity.rows()
    store_id = stored["store_id"]
    if marker is not None and marker.store_id != store_id:
        raise ConfigError(
            f"the store is {store_id}, not this node's store {marker.store_id}: it belongs to "
            f"another node: {RESTORE}"
        )
    now = observed(node, provider, store_id).rows()
    for name, template in _WHAT.items():
        if stored.get(name) != now[name]:
            raise ConfigError(
                template.format(stored=stored.get(name), now=now[name]) + ": " + RESTORE
            )
    generation = int(stored.get("generation", "0"))
    if marker is not None and generation < marker.generation:
        raise ConfigError(
            f"the store is older than this node's last start (generation {generation}, "
            f"expected {marker.generation}): its write-ahead log was lost or an older copy "
            f"was put in place: {RESTORE}"
        )
    with db.begin() as conn:
        done = conn.execute(
            update(node_identity)
            .where(node_identity.c.name == "generation")
            .values(value=str(generation + 1))
        )
        if done.rowcount == 0:
            conn.execute(insert(node_identity).values(name="generation", value="1"))
    StoreMarker(store_id, generation + 1).save(home)
