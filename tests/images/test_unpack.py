"""umoci keeps even unscanned hostile layers inside the target, and the hardening pass leaves
no set-ID bit and no device in an unpacked tree."""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from pathlib import Path

import pytest

from atoll.images import errors
from atoll.images.pull import LAYOUT_TAG
from atoll.images.unpack import harden, remove_tree, unpack
from tests.images.conftest import need
from tests.images.oci import entry, image_of, write_layout

Entries = list[tuple[tarfile.TarInfo, bytes]]


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize(
    "layers",
    [
        [[entry("../../outside/pwned", data=b"x")]],
        [[entry("/outside/pwned", data=b"x")]],
        [
            [
                entry("evil", tarfile.SYMTYPE, linkname="../../outside"),
                entry("evil/pwned", data=b"x"),
            ]
        ],
        [[entry("evil", tarfile.SYMTYPE, linkname="/")], [entry("evil/outside/pwned", data=b"x")]],
        [[entry("linked", tarfile.LNKTYPE, linkname="../../outside/secret")]],
        [[entry("evil", tarfile.SYMTYPE, linkname="../../outside")], [entry("evil/.wh.secret")]],
    ],
    ids=["parent", "absolute", "symlink", "symlink-lower-layer", "hardlink", "whiteout"],
)
def test_umoci_writes_nothing_outside_even_unscanned(tmp_path: Path, layers: list[Entries]) -> None:
    need("umoci")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    before = files_under(tmp_path)
    write_layout(tmp_path / "layout", image_of(*layers), tag=LAYOUT_TAG)
    layout_files = files_under(tmp_path) - before
    rootfs = tmp_path / "work" / "rootfs"
    rootfs.parent.mkdir()
    with contextlib.suppress(errors.UnpackFailed):  # refusing is fine; writing outside is not
        unpack(tmp_path / "layout", rootfs)
    written = files_under(tmp_path) - before - layout_files - {"work"}
    assert all(p.startswith("work/rootfs") for p in written), written
    assert (outside / "secret").read_text() == "keep"
    assert (outside / "secret").stat().st_nlink == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_set_id_bits_are_dropped(tmp_path: Path) -> None:
    need("umoci")
    write_layout(
        tmp_path / "layout",
        image_of(
            [
                entry("usr/bin/su", data=b"x", mode=0o4755),
                entry("usr/bin/wall", data=b"x", mode=0o2755),
                entry("var/mail/", tarfile.DIRTYPE, mode=0o2775),
                entry("tmp/", tarfile.DIRTYPE, mode=0o1777),
            ]
        ),
        tag=LAYOUT_TAG,
    )
    rootfs = tmp_path / "rootfs"
    unpack(tmp_path / "layout", rootfs)
    harden(rootfs, 1 << 30)
    modes = {
        p: stat.S_IMODE(os.lstat(rootfs / p).st_mode)
        for p in ("usr/bin/su", "usr/bin/wall", "var/mail", "tmp")
    }
    assert modes == {"usr/bin/su": 0o755, "usr/bin/wall": 0o755, "var/mail": 0o775, "tmp": 0o1777}


def test_a_device_left_in_a_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    os.mkfifo(tmp_path / "dev" / "pipe")
    with pytest.raises(errors.DeviceEntry):
        harden(tmp_path, 1 << 30)


def test_a_tree_over_the_cap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(os.urandom(256 << 10))
    with pytest.raises(errors.ImageTooLarge):
        harden(tmp_path, 128 << 10)


def test_links_are_not_followed_when_hardening(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"x")
    outside.chmod(0o4755)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "link").symlink_to(outside)
    harden(rootfs, 1 << 30)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o4755


def test_unwritable_trees_are_removed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "locked" / "deeper").mkdir(parents=True)
    (tree / "locked" / "deeper" / "file").write_text("x")
    (tree / "locked" / "deeper").chmod(0o500)
    (tree / "locked").chmod(0o500)
    remove_tree(tree)
    assert not tree.exists()


def test_whiteouts_of_a_later_layer_remove_what_lower_layers_left(tmp_path: Path) -> None:
    need("umoci")
    write_layout(
        tmp_path / "layout",
        image_of(
            [
                entry("etc/keep", data=b"k"),
                entry("etc/gone", data=b"g"),
                entry("opt/old/a", data=b"a"),
                entry("opt/old/b", data=b"b"),
            ],
            [entry("etc/.wh.gone"), entry("opt/old/.wh..wh..opq"), entry("opt/old/c", data=b"c")],
        ),
        tag=LAYOUT_TAG,
    )
    rootfs = tmp_path / "rootfs"
    unpack(tmp_path / "layout", rootfs)
    assert sorted(files_under(rootfs)) == ["etc", "etc/keep", "opt", "opt/old", "opt/old/c"]
