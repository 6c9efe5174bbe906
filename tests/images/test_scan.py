"""Every hostile layer is refused by the scan with its own error, before anything is
unpacked; ordinary layers pass."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pytest

from atoll.images import errors
from atoll.images.pull import OCI_LAYER_GZIP, OCI_LAYER_TAR
from atoll.images.scan import LayerScanner, ScanLimits
from tests.images.oci import Layer, digest_of, entry, tar_bytes

Entries = list[tuple[tarfile.TarInfo, bytes]]


def scan(tmp_path: Path, *layers: Entries, limits: ScanLimits | None = None) -> LayerScanner:
    scanner = LayerScanner(limits)
    for number, entries in enumerate(layers):
        layer = Layer(tar_bytes(entries))
        blob = tmp_path / f"layer{number}"
        blob.write_bytes(layer.blob)
        scanner.scan(blob, OCI_LAYER_GZIP, layer.diff_id)
    return scanner


def test_an_ordinary_root_passes(tmp_path: Path) -> None:
    scanner = scan(
        tmp_path,
        [
            entry("./", tarfile.DIRTYPE, mode=0o755),
            entry("usr/", tarfile.DIRTYPE),
            entry("usr/bin/", tarfile.DIRTYPE),
            entry("usr/bin/python3", data=b"#!", mode=0o755),
            entry("bin", tarfile.SYMTYPE, linkname="usr/bin"),
            entry("etc/localtime", tarfile.SYMTYPE, linkname="/usr/share/zoneinfo/UTC"),
            entry("usr/bin/python", tarfile.LNKTYPE, linkname="usr/bin/python3"),
            entry("usr/bin/su", data=b"x", mode=0o4755),
        ],
        [entry("usr/bin/.wh.python"), entry("etc/.wh..wh..opq"), entry("etc/hosts", data=b"")],
    )
    assert scanner.entries == 11
    assert scanner.declared_bytes == 3


@pytest.mark.parametrize(
    ("layers", "error"),
    [
        ([[entry("../outside", data=b"x")]], errors.ParentPathEntry),
        ([[entry("usr/../../outside", data=b"x")]], errors.ParentPathEntry),
        ([[entry("/etc/passwd", data=b"x")]], errors.AbsolutePathEntry),
        ([[entry(".", tarfile.SYMTYPE, linkname="/")]], errors.ParentPathEntry),
        (
            [[entry("evil", tarfile.SYMTYPE, linkname="/tmp"), entry("evil/pwned", data=b"x")]],
            errors.SymlinkTraversal,
        ),
        (
            [
                [entry("evil", tarfile.SYMTYPE, linkname="../../..")],
                [entry("evil/", tarfile.DIRTYPE), entry("evil/x/pwned", data=b"x")],
            ],
            None,  # a directory replacing the link in a later layer is no traversal
        ),
        (
            [[entry("evil", tarfile.SYMTYPE, linkname="../..")], [entry("evil/pwned", data=b"x")]],
            errors.SymlinkTraversal,
        ),
        ([[entry("passwd", tarfile.LNKTYPE, linkname="/etc/passwd")]], errors.HardLinkEscape),
        ([[entry("passwd", tarfile.LNKTYPE, linkname="../etc/passwd")]], errors.HardLinkEscape),
        ([[entry("nothing", tarfile.LNKTYPE, linkname="not/there")]], errors.HardLinkEscape),
        (
            [
                [
                    entry("etc", tarfile.SYMTYPE, linkname="/etc"),
                    entry("passwd", tarfile.LNKTYPE, linkname="etc/passwd"),
                ]
            ],
            errors.HardLinkEscape,
        ),
        ([[entry("null", tarfile.CHRTYPE)]], errors.DeviceEntry),
        ([[entry("sda", tarfile.BLKTYPE)]], errors.DeviceEntry),
        ([[entry("pipe", tarfile.FIFOTYPE)]], errors.DeviceEntry),
        ([[entry("../.wh.etc")]], errors.WhiteoutEscape),
        ([[entry("/.wh.etc")]], errors.WhiteoutEscape),
        ([[entry("usr/.wh..")]], errors.WhiteoutEscape),
        ([[entry("usr/.wh..wh.plnk")]], errors.WhiteoutEscape),
        (
            [[entry("evil", tarfile.SYMTYPE, linkname="/etc")], [entry("evil/.wh.passwd")]],
            errors.WhiteoutEscape,
        ),
    ],
    ids=[
        "parent",
        "parent-inside",
        "absolute",
        "root-replaced",
        "through-symlink",
        "symlink-replaced-by-directory",
        "through-symlink-of-lower-layer",
        "hardlink-absolute",
        "hardlink-parent",
        "hardlink-unknown",
        "hardlink-through-symlink",
        "char-device",
        "block-device",
        "fifo",
        "whiteout-parent",
        "whiteout-absolute",
        "whiteout-dotdot",
        "whiteout-reserved",
        "whiteout-through-symlink",
    ],
)
def test_hostile_entries_are_refused_by_name(
    tmp_path: Path, layers: list[Entries], error: type[errors.LayerError] | None
) -> None:
    if error is None:
        scan(tmp_path, *layers)
        return
    with pytest.raises(error) as caught:
        scan(tmp_path, *layers)
    assert caught.value.code.startswith("layer-")


def test_a_hard_link_to_a_whited_out_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.HardLinkEscape):
        scan(
            tmp_path,
            [entry("etc/shadow", data=b"x")],
            [entry("etc/.wh.shadow"), entry("copy", tarfile.LNKTYPE, linkname="etc/shadow")],
        )


def test_a_decompression_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    # 64 MiB of zeros gzip to about 64 KiB
    blob = tmp_path / "bomb"
    tar = tar_bytes([entry("zeros", data=bytes(64 << 20))])
    blob.write_bytes(gzip.compress(tar, 9))
    assert blob.stat().st_size < 1 << 20
    scanner = LayerScanner(ScanLimits(max_unpacked_bytes=8 << 20))
    with pytest.raises(errors.ImageTooLarge):
        scanner.scan(blob, OCI_LAYER_GZIP, digest_of(tar))
    assert scanner.decompressed_bytes <= (8 << 20) + (1 << 20)


def test_declared_sizes_count_against_the_cap(tmp_path: Path) -> None:
    with pytest.raises(errors.ImageTooLarge):
        scan(
            tmp_path,
            [entry(f"f{i}", data=bytes(300 << 10)) for i in range(4)],
            limits=ScanLimits(max_unpacked_bytes=1 << 20, max_entries=100),
        )


def test_the_number_of_entries_is_capped(tmp_path: Path) -> None:
    with pytest.raises(errors.ImageTooLarge):
        scan(
            tmp_path,
            [entry(f"f{i}") for i in range(11)],
            limits=ScanLimits(max_entries=10),
        )


def test_a_layer_must_decompress_to_its_diff_id(tmp_path: Path) -> None:
    layer = Layer(tar_bytes([entry("a", data=b"x")]))
    blob = tmp_path / "layer"
    blob.write_bytes(layer.blob)
    with pytest.raises(errors.DigestMismatch):
        LayerScanner().scan(blob, OCI_LAYER_GZIP, digest_of(b"something else"))


def test_data_hidden_after_the_end_of_the_archive_is_refused(tmp_path: Path) -> None:
    # a reader that stops at the first end marker would miss the entry after it
    tar = tar_bytes([entry("a", data=b"x")]) + tar_bytes([entry("../escape", data=b"x")])
    blob = tmp_path / "layer"
    blob.write_bytes(tar)
    with pytest.raises(errors.MalformedLayer):
        LayerScanner().scan(blob, OCI_LAYER_TAR, digest_of(tar))


def test_garbage_is_a_malformed_layer(tmp_path: Path) -> None:
    blob = tmp_path / "layer"
    blob.write_bytes(gzip.compress(b"not a tar" * 200))
    with pytest.raises(errors.MalformedLayer):
        LayerScanner().scan(blob, OCI_LAYER_GZIP, digest_of(b""))
