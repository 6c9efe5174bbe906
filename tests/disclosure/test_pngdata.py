"""A PNG's texts and pixels, read for the checks."""

from __future__ import annotations

import struct
import zlib

import pytest

from atoll.disclosure import pngdata
from atoll.disclosure.pngdata import png_contents


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(lines: list[bytes], *chunks: tuple[bytes, bytes], interlace: int = 0) -> bytes:
    """A grey PNG whose scanlines (filter byte first) are ``lines``."""
    width = len(lines[0]) - 1
    header = struct.pack(">IIBBBBB", width, len(lines), 8, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + b"".join(_chunk(k, v) for k, v in chunks)
        + _chunk(b"IDAT", zlib.compress(b"".join(lines)))
        + _chunk(b"IEND", b"")
    )


def test_every_kind_of_text_chunk_is_read() -> None:
    found = png_contents(
        _png(
            [b"\x00ab"],
            (b"tEXt", b"Title\x00plain words"),
            (b"zTXt", b"Note\x00\x00" + zlib.compress(b"packed words")),
            (b"iTXt", b"Intl\x00\x00\x00fr\x00titre\x00mots"),
            (b"iTXt", b"Intl\x00\x01\x00\x00\x00" + zlib.compress("zipped é".encode())),
        )
    )
    assert found.texts == [
        "Title plain words",
        "Note packed words",
        "Intl fr titre mots",
        "Intl   zipped é",
    ]
    assert not found.too_large


def test_the_pixels_of_unfiltered_lines_are_read_and_filtered_ones_left() -> None:
    found = png_contents(_png([b"\x00abc", b"\x01xyz", b"\x00def"]))
    assert found.pixels == b"abcdef"
    assert png_contents(_png([b"\x00abc", b"\x00def"])).pixels == b"abcdef"


def test_an_interlaced_image_s_pixels_are_not_read() -> None:
    assert png_contents(_png([b"\x00abc"], interlace=1)).pixels is None


def test_what_inflates_past_the_cap_is_said_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pngdata, "MAX_INFLATED", 1000)
    bomb = (b"zTXt", b"Note\x00\x00" + zlib.compress(b"a" * 100_000))
    found = png_contents(_png([b"\x00ab"], bomb))
    assert found.too_large and len(found.texts[0]) <= 1000 + len("Note ")
    tall = png_contents(_png([b"\x00" + b"x" * 100] * 50))
    assert tall.too_large


def test_broken_compressed_data_reads_as_nothing() -> None:
    found = png_contents(_png([b"\x00ab"], (b"zTXt", b"Note\x00\x00not zlib at all")))
    assert found.texts == ["Note "]
