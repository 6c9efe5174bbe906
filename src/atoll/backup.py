"""Backups of a node's state, taken while it runs, and their restore.

A backup holds the store (SQLite, copied with SQLite's online backup API: one consistent
snapshot, whatever the server writes meanwhile), the embedded chain (the same way), the
address book and the node directory's record of its store. The store is copied before the
chain, so the chain copy is never older than the store's: the keeper then learns what
happened on chain in between from its event cursor, while the reverse (a store that knows
settlements the chain lacks) could never be repaired.

A PostgreSQL store is dumped with ``pg_dump`` (taken before ``atoll backup``, for the same
reason); keys stay where they are and are backed up on their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from atoll.config import Settings
from atoll.errors import ConfigError
from atoll.integrity import StoreMarker, quick_check
from atoll.signing import Key

MANIFEST = "backup.json"
STORE = "atoll.db"
CHAIN = "chain.sqlite"
BOOK = "addresses.json"
PG_DUMP = "store.pgdump"


@dataclass(frozen=True)
class BackupReport:
    store: str  # "sqlite" or "postgresql"
    chain: str  # "embedded" or "rpc"
    notes: list[str]


def sqlite_store_path(settings: Settings) -> Path | None:
    if not settings.db_url.startswith("sqlite"):
        return None
    database = make_url(settings.db_url).database
    return Path(database) if database and database != ":memory:" else None


def _online_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite file, self-contained (no log beside it)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # all pages in one step: one read snapshot of the source
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def take_backup(settings: Settings, dest: Path) -> BackupReport:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} exists and is not an empty directory")
    if not settings.address_book_file.exists():
        raise ConfigError(f"{settings.home} holds no node (no {BOOK}): nothing to back up")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    notes: list[str] = []
    # read before the store is copied: the copy's generation is then never below it
    marker = StoreMarker.load(settings.home)
    store_path = sqlite_store_path(settings)
    if store_path is not None:
        if not store_path.exists():
            raise ConfigError(f"the store {store_path} does not exist")
        _online_copy(store_path, dest / STORE)
        quick_check(dest / STORE, "the copy of the store")
    else:
        notes.append(
            "the store is on PostgreSQL: dump it before each `atoll backup` (so that the "
            f"chain copy is never older): pg_dump --format=custom --file {dest / PG_DUMP} "
            "DATABASE_URL"
        )
    chain = "rpc" if settings.chain_url else "embedded"
    if chain == "embedded":
        (dest / "chain").mkdir(mode=0o700)
        _online_copy(settings.chain_file, dest / "chain" / CHAIN)
        quick_check(dest / "chain" / CHAIN, "the copy of the chain")
    else:
        notes.append("the chain is an external node: its state is that node's to back up")
    shutil.copyfile(settings.address_book_file, dest / BOOK)
    if marker is not None:
        marker.save(dest)
    provider = Key.load(settings.provider_key_file).address
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "provider": provider,
        "store": "sqlite" if store_path is not None else "postgresql",
        "chain": chain,
        "store_id": marker.store_id if marker is not None else "",
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupReport(str(manifest["store"]), chain, notes)


@contextlib.contextmanager
def _node_stopped(settings: Settings) -> Iterator[None]:
    """Hold the embedded chain's lock, which a running node holds, while restoring."""
    if settings.chain_url:
        yield
        return
    settings.chain_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{settings.chain_file}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError("the node is running: stop it before restoring") from None
        yield
    finally:
        os.close(fd)


def _replace_sqlite(source: Path, target: Path) -> None:
    """Put a self-contained SQLite file in place of ``target`` and of its old log: a log
    left beside the new file would be replayed into it."""
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(source, tmp)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)


def restore_backup(settings: Settings, src: Path) -> BackupReport:
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{src} is not an Atoll backup (no readable {MANIFEST})") from None
    provider = Key.load(settings.provider_key_file).address
    if str(manifest.get("provider", "")).lower() != provider.lower():
        raise ConfigError(
            f"the backup is of provider {manifest.get('provider')}, this node's key is "
            f"{provider}: restore into the node directory holding that provider's key"
        )
    notes: list[str] = []
    store_path = sqlite_store_path(settings)
    if manifest.get("store") == "sqlite" and store_path is None:
        raise ConfigError("the backup holds a SQLite store, this node uses PostgreSQL")
    if manifest.get("store") == "postgresql" and store_path is not None:
        raise ConfigError("the backup is of a PostgreSQL store, this node uses SQLite")
    if manifest.get("chain") == "embedded" and settings.chain_url:
        raise ConfigError("the backup holds an embedded chain, this node uses chain_url")
    with _node_stopped(settings):
        if store_path is not None:
            quick_check(src / STORE, "the backup's store")
        if manifest.get("chain") == "embedded":
            quick_check(src / "chain" / CHAIN, "the backup's chain")
        if store_path is not None:
            store_path.parent.mkdir(parents=True, exist_ok=True)
            _replace_sqlite(src / STORE, store_path)
        else:
            notes.append(
                f"restore the PostgreSQL store from its dump: pg_restore --clean --if-exists "
                f"--dbname DATABASE_URL {src / PG_DUMP}"
            )
        if manifest.get("chain") == "embedded":
            _replace_sqlite(src / "chain" / CHAIN, settings.chain_file)
        shutil.copyfile(src / BOOK, settings.address_book_file)
        marker = StoreMarker.load(src)
        if marker is not None:
            marker.save(settings.home)
        else:
            StoreMarker.path(settings.home).unlink(missing_ok=True)
    return BackupReport(str(manifest.get("store")), str(manifest.get("chain")), notes)
