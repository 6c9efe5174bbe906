"""Publishing a job's outputs: measured as they land on the provider's disk, names checked,
left-outs counted, never listed. Trees are built on the host, as a job would leave them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoll.engine.outputs import (
    BLOCK,
    SKIP_HARD_LINK,
    SKIP_NAME,
    SKIP_SPECIAL,
    OutputRules,
    Published,
    disk_size,
    publish,
)
from atoll.storage import LocalResults

MIB = 1024**2


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.outputs = root / "outputs"
        self.logs = root / "logs"
        self.log = root / "algorithm.log"
        self.store = LocalResults(root / "store")
        self.results = root / "store" / "job" / "results"
        self.outputs.mkdir()
        self.logs.mkdir()
        self.log.write_bytes(b"the job's stdout\n")

    def publish(self, **rules: int) -> Published:
        values = {"output_bytes": MIB, "log_bytes": MIB, **rules}
        return publish(self.outputs, self.logs, self.log, self.store, "job", OutputRules(**values))

    def on_disk(self) -> int:
        """Bytes the results take on the provider's disk (allocated blocks)."""
        return sum(os.lstat(p).st_blocks * 512 for p in self.results.rglob("*") if p.is_file())


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def test_regular_outputs_and_logs_are_published_in_order(tree: Tree) -> None:
    (tree.outputs / "sub").mkdir()
    (tree.outputs / "b.txt").write_text("b")
    (tree.outputs / "sub" / "a.txt").write_text("nested")
    (tree.logs / "extra.log").write_text("own log")
    done = tree.publish()
    assert done.refused == "" and not done.skipped
    assert [(r.index, r.filename, r.type) for r in done.results] == [
        (0, "b.txt", "output"),
        (1, "sub/a.txt", "output"),
        (2, "algorithm.log", "algorithmLog"),
        (3, "logs/extra.log", "algorithmLog"),
    ]
    assert (tree.results / "1").read_text() == "nested"
    assert done.note() == ""


def test_sparse_files_are_measured_by_what_their_copies_take(tree: Tree) -> None:
    # 4 files of 1 MiB apparent size each, almost no block allocated: copied out dense they
    # would take 4 MiB on the provider's disk against a cap of 2 MiB
    for i in range(4):
        with (tree.outputs / f"sparse{i}").open("wb") as f:
            f.truncate(MIB)
            f.write(b"x")
    assert os.lstat(tree.outputs / "sparse0").st_blocks * 512 < MIB
    done = tree.publish(output_bytes=2 * MIB)
    assert "take more than 2.0 MiB" in done.refused
    assert [r.filename for r in done.results] == ["algorithm.log"]
    assert tree.on_disk() <= 2 * MIB


def test_hard_links_are_not_published(tree: Tree) -> None:
    big = tree.outputs / "big"
    big.write_bytes(b"y" * (256 * 1024))
    for i in range(20):
        os.link(big, tree.outputs / f"link{i}")
    done = tree.publish()
    # every name of a file with several is left out: none of them is a full copy on disk
    assert [r.filename for r in done.results] == ["algorithm.log"]
    assert done.skipped == {SKIP_HARD_LINK: 21}
    assert tree.on_disk() < 64 * 1024
    assert "skipped 21 files (21 hard links)" in done.note()


def test_tiny_files_count_a_block_each(tree: Tree) -> None:
    for i in range(300):
        (tree.outputs / f"f{i:04}").write_bytes(b"1")
    st = os.lstat(tree.outputs / "f0000")
    assert disk_size(st) == BLOCK
    # 300 blocks are 1.2 MiB on disk, though their bytes are 300
    done = tree.publish(output_bytes=MIB)
    assert done.refused and [r.filename for r in done.results] == ["algorithm.log"]
    assert tree.publish(output_bytes=2 * MIB).refused == ""


def test_too_many_files_refuse_the_outputs(tree: Tree) -> None:
    for i in range(50):
        (tree.outputs / f"e{i}").touch()
    done = tree.publish(max_files=20)
    assert done.refused == "the job left more than 20 files"
    assert [r.filename for r in done.results] == ["algorithm.log"]
    assert list(tree.results.iterdir()) == [tree.results / "0"]
    assert len(tree.publish(max_files=50).results) == 51


def test_names_that_are_not_utf8_are_left_out(tree: Tree) -> None:
    out = bytes(tree.outputs)
    for raw in (b"bad\xff.txt", b"lone\xc2.txt", b"sur\xed\xa0\x80.txt", b"c0\xc0\xaf.txt"):
        with open(os.path.join(out, raw), "wb") as f:
            f.write(b"hidden")
    os.mkdir(os.path.join(out, b"dir\xfe"))
    with open(os.path.join(out, b"dir\xfe", b"inside.txt"), "wb") as f:
        f.write(b"hidden too")
    (tree.outputs / "日本語 ünïcode.txt").write_text("kept")
    done = tree.publish()
    assert [r.filename for r in done.results] == ["日本語 ünïcode.txt", "algorithm.log"]
    assert done.skipped == {SKIP_NAME: 5}
    for r in done.results:
        r.filename.encode("utf-8")  # all of them are valid text


def test_long_names_and_deep_trees_are_left_out_without_failing(tree: Tree) -> None:
    (tree.outputs / ("n" * 200)).write_text("long name")
    # deeper than PATH_MAX: built with relative steps, as a job would
    fd = os.open(tree.outputs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(40):
            os.mkdir("d" * 200, dir_fd=fd)
            nxt = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("deep")
    finally:
        os.close(fd)
    (tree.outputs / "ok.txt").write_text("kept")
    done = tree.publish(max_name_bytes=100)
    assert [r.filename for r in done.results] == ["ok.txt", "algorithm.log"]
    assert sum(done.skipped.values()) == 2  # the long file and the top of the deep tree


def test_links_and_special_files_are_counted_not_named(tree: Tree, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host")
    for i in range(3000):
        os.mkfifo(tree.outputs / f"fifo-with-a-rather-long-name-{i:05}")
    (tree.outputs / "link").symlink_to(secret)
    (tree.outputs / "linkdir").symlink_to(tmp_path)
    done = tree.publish()
    assert done.skipped == {SKIP_SPECIAL: 3002}
    note = done.note()
    assert note == "; skipped 3002 files (3002 links or special files)"
    assert "fifo" not in note and [r.filename for r in done.results] == ["algorithm.log"]


def test_a_file_swapped_after_the_walk_is_not_copied(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atoll.engine import outputs

    (tree.outputs / "a.txt").write_text("measured")
    real = outputs._Tree.walk

    def walk_then_swap(self: outputs._Tree) -> object:
        found = list(real(self))
        if found:
            # the measured file is kept (aside), so the new one is another inode
            (tree.outputs / "a.txt").rename(tree.root / "aside")
            (tree.outputs / "a.txt").write_text("swapped in after measuring, much longer")
        return iter(found)

    monkeypatch.setattr(outputs._Tree, "walk", walk_then_swap)
    done = tree.publish()
    assert [r.filename for r in done.results] == ["algorithm.log"]
    assert done.skipped == {outputs.SKIP_CHANGED: 1}
