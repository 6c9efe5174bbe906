"""What a PNG holds besides the picture it shows: the text of its text chunks, and its
pixels' bytes. A plotting library writes a few words of text and pixels that are mostly one
colour; a job can as well write a dataset's rows into a text chunk, or its bytes into the
pixels of an image nobody looks at closely. Both are read here (with no image library: the
chunks are walked and the pixels inflated with :mod:`zlib`, within a cap), so that the other
checks can read them as they read a text.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from atoll.disclosure.filetypes import PNG_MAGIC

#: the most bytes the pixels (or a compressed text chunk) are inflated to
MAX_INFLATED = 32 * 1024 * 1024
#: the most scanlines read (an image taller than this is held)
MAX_LINES = 1 << 16
#: bytes a colour type's pixel has per bit depth's byte: grey, RGB, palette, grey+alpha, RGBA
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class PngContents(NamedTuple):
    """The text of each text chunk; the pixels' bytes as stored on scanlines left unfiltered
    (None where there are none to read: an interlaced image, or a broken one); and whether
    something was too large to inflate."""

    texts: list[str]
    pixels: bytes | None
    too_large: bool


def _inflate(data: bytes) -> tuple[bytes, bool]:
    """``data`` inflated, up to :data:`MAX_INFLATED` bytes; and whether it holds more."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error:
        return b"", False
    return out, bool(inflater.unconsumed_tail)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], len(PNG_MAGIC)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _text(kind: bytes, body: bytes) -> tuple[str | None, bool]:
    """A text chunk's keyword and text, as one text; and whether it was too large."""
    keyword, _, rest = body.partition(b"\x00")
    if kind == b"tEXt":
        return (keyword + b" " + rest).decode("latin-1"), False
    if kind == b"zTXt":
        text, over = _inflate(rest[1:])
        return (keyword + b" " + text).decode("latin-1"), over
    if kind == b"iTXt" and len(rest) >= 2:
        compressed, rest = rest[0], rest[2:]
        language, _, rest = rest.partition(b"\x00")
        translated, _, text = rest.partition(b"\x00")
        over = False
        if compressed:
            text, over = _inflate(text)
        joined = b" ".join((keyword, language, translated, text))
        return joined.decode("utf-8", "replace"), over
    return None, False


def png_contents(data: bytes) -> PngContents:
    """The texts and pixels of a PNG (whose structure :func:`~.filetypes.png_findings`
    checks)."""
    texts, too_large = [], False
    header, stream = b"", []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            stream.append(body)
        else:
            text, over = _text(kind, body)
            too_large |= over
            if text is not None:
                texts.append(text)
    pixels = None
    if len(header) == 13 and header[12] == 0 and header[9] in _CHANNELS:
        width = int.from_bytes(header[0:4], "big")
        depth, channels = header[8], _CHANNELS[header[9]]
        stride = 1 + (width * channels * depth + 7) // 8
        raw, over = _inflate(b"".join(stream))
        too_large |= over
        filters = raw[::stride]
        if len(filters) > MAX_LINES:
            too_large = True
        elif filters.count(0) == len(filters):
            # each scanline is a filter byte and the line's bytes; those of lines stored
            # unfiltered are the pixels themselves, as a payload written in them is
            unfiltered = bytearray(raw)
            del unfiltered[::stride]
            pixels = bytes(unfiltered)
        else:
            pixels = b"".join(
                raw[at + 1 : at + stride] for at in range(0, len(raw), stride) if raw[at] == 0
            )
    return PngContents(texts, pixels, too_large)
