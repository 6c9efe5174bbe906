"""A node that knows its store and its chain: damaged or foreign state is refused at start
with one line saying what is wrong and how to restore; a clean shutdown leaves ``atoll.db``
whole on its own."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from atoll.node import build_provider
from atoll.sdk import ProviderClient
from atoll.server import free_port
from atoll.signing import Key
from tests.helpers import public_dir, require_sandbox, running_provider, wait_healthy
from tests.homes import init_home


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ATOLL_HOME": str(home), "ATOLL_JOB_WALL_SECONDS": "30"}
    env.pop("ATOLL_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "atoll", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    wait_healthy(f"http://127.0.0.1:{port}", proc)


def refused(home: Path) -> str:
    """The node refuses to start on ``home``, with one line that says how to restore."""
    with pytest.raises(ConfigError) as caught:
        build_provider(load_settings(home, port=0))
    text = caught.value.message
    assert len(text.splitlines()) == 1, text
    assert "atoll restore" in text, text
    return text


class Snapshots:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clean = root / "clean"
        self.crashed = root / "crashed"
        self.other = root / "other"
        self.job_id = ""

    def copy(self, which: Path, to: Path) -> Path:
        shutil.copytree(which, to, symlinks=True)
        return to


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshots]:
    """One node, used, stopped cleanly (``clean``); then used again and killed (``crashed``);
    and another node's directory (``other``)."""
    require_sandbox()
    root = tmp_path_factory.mktemp("integrity")
    snaps = Snapshots(root)
    home = root / "node"
    where = public_dir()
    init_home(home, own_data_root=str(where))
    data = where / "d.csv"
    data.write_text("x\n")
    port = free_port()
    proc = serve(home, port)
    healthy(proc, port)
    client = ProviderClient(f"http://127.0.0.1:{port}", Key.load(home / "key"))
    did = client.publish(
        Metadata(name="d", type="dataset"), [str(data)], ComputePolicy(allowRawAlgorithm=True)
    ).id
    snaps.job_id = client.wait(client.start(did, rawcode="print(1)").jobId, timeout=60).jobId
    client.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    shutil.copytree(home, snaps.clean, symlinks=True)

    proc = serve(home, port)
    healthy(proc, port)
    client = ProviderClient(f"http://127.0.0.1:{port}", Key.load(home / "key"))
    client.publish(
        Metadata(name="after", type="dataset"), [str(data)], ComputePolicy(allowRawAlgorithm=True)
    )
    client.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (home / "atoll.db-wal").exists()
    shutil.copytree(home, snaps.crashed, symlinks=True)

    init_home(snaps.other)
    node = build_provider(load_settings(snaps.other, port=0))  # writes its identity
    node.chain.close()
    node.db.dispose()
    yield snaps


def test_clean_shutdown_leaves_the_store_whole_in_one_file(
    snapshots: Snapshots, tmp_path: Path
) -> None:
    assert not (snapshots.clean / "atoll.db-wal").exists()
    alone = tmp_path / "atoll.db"
    shutil.copyfile(snapshots.clean / "atoll.db", alone)
    conn = sqlite3.connect(alone)
    row = conn.execute("SELECT status FROM jobs WHERE job_id = ?", (snapshots.job_id,)).fetchone()
    conn.close()
    assert row == (int(JobStatus.FINISHED),)


def _overwrite(path: Path, at: float, size: int = 8192) -> None:
    """Write garbage over ``size`` bytes from ``at`` (a fraction of the file)."""
    with path.open("r+b") as fh:
        fh.seek(max(4096, int(path.stat().st_size * at) // 4096 * 4096))
        fh.write(os.urandom(size))


def _truncate_half(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _flip_chain_entry(chain: Path) -> None:
    """Change the largest content-addressed value (contract code): SQLite sees nothing."""
    conn = sqlite3.connect(chain)
    k, v = conn.execute(
        "SELECT k, v FROM kv WHERE length(k) = 32 ORDER BY length(v) DESC LIMIT 1"
    ).fetchone()
    changed = bytes(v[:100]) + bytes([v[100] ^ 0xFF]) + bytes(v[101:])
    conn.execute("UPDATE kv SET v = ? WHERE k = ?", (changed, k))
    conn.commit()
    conn.close()


def _foreign(name: str) -> Callable[[Snapshots, Path], None]:
    def swap(snaps: Snapshots, home: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            (home / f"{name}{suffix}").unlink(missing_ok=True)
            src = snaps.other / f"{name}{suffix}"
            if src.exists():
                shutil.copyfile(src, home / f"{name}{suffix}")

    return swap


CASES: dict[str, tuple[str, Callable[[Snapshots, Path], None], str]] = {
    "store emptied": (
        "clean",
        lambda s, h: (h / "atoll.db").write_bytes(b""),
        "store .* is missing or empty",
    ),
    "store deleted": ("clean", lambda s, h: (h / "atoll.db").unlink(), "missing or empty"),
    "store truncated": ("clean", lambda s, h: _truncate_half(h / "atoll.db"), "is corrupt"),
    "store pages corrupt": (
        "clean",
        lambda s, h: _overwrite(h / "atoll.db", 0.5),
        "store .* is corrupt",
    ),
    "store WAL lost": (
        "crashed",
        lambda s, h: [(h / f"atoll.db{x}").unlink() for x in ("-wal", "-shm")],
        "older than this node's last start .* write-ahead log was lost",
    ),
    "store from another node": ("clean", _foreign("atoll.db"), "belongs to another node"),
    "chain pages corrupt": (
        "clean",
        lambda s, h: _overwrite(h / "chain" / "chain.sqlite", 0.5),
        "chain file .* corrupt",
    ),
    "chain entry corrupt": (
        "clean",
        lambda s, h: _flip_chain_entry(h / "chain" / "chain.sqlite"),
        "chain file .* does not match its hash",
    ),
    "chain from another node": (
        "clean",
        lambda s, h: _foreign("chain/chain.sqlite")(s, h),
        "another node's|not the one",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_or_foreign_state_is_refused_with_one_line(
    snapshots: Snapshots, tmp_path: Path, case: str
) -> None:
    which, damage, expected = CASES[case]
    home = snapshots.copy(getattr(snapshots, which), tmp_path / "home")
    damage(snapshots, home)
    assert re.search(expected, refused(home)), case


@pytest.mark.parametrize("which", ["clean", "crashed"])
def test_undamaged_state_starts_and_keeps_its_data(
    snapshots: Snapshots, tmp_path: Path, which: str
) -> None:
    home = snapshots.copy(getattr(snapshots, which), tmp_path / "home")
    with running_provider(home) as node:
        assert node.publisher.status(snapshots.job_id).status == JobStatus.FINISHED
        names = {a.metadata.name for a in node.publisher.search()[1]}
        assert names == ({"d"} if which == "clean" else {"d", "after"})


def test_atoll_serve_refuses_with_one_line_and_exit_1(snapshots: Snapshots, tmp_path: Path) -> None:
    home = snapshots.copy(snapshots.clean, tmp_path / "home")
    (home / "atoll.db").write_bytes(b"")
    proc = serve(home, free_port())
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("error: the store "), lines
    assert "missing or empty" in lines[0] and "atoll restore" in lines[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_emptied_postgresql_store_is_refused(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOLL_DATABASE_URL", db_url)
    home = tmp_path / "home"
    init_home(home)
    node = build_provider(load_settings(home, port=0))
    node.chain.close()
    with node.db.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            conn.execute(sa.text(f'DROP TABLE "{table}" CASCADE'))
    node.db.dispose()
    assert "the store is empty, but this node has used store" in refused(home)
