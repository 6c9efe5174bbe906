"""A file's type by its content, checked against what its name says it is."""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath

from atoll.disclosure.report import Finding
from atoll.disclosure.runs import CONTROL_MARK

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL.fullmatch(bytes([b])))

#: what a file's extension says it holds; a file with no extension (a log) is text
_BY_EXTENSION = {
    "": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".txt": "txt",
    ".log": "txt",
    ".md": "md",
    ".png": "png",
    ".svg": "svg",
}


@functools.lru_cache(maxsize=1024)
def declared_type(name: str) -> str | None:
    """The type a file's name claims, or None for an extension the checks do not know."""
    return _BY_EXTENSION.get(PurePosixPath(name).suffix.lower())


def is_text(data: bytes, marks: bytes | None = None) -> bool:
    """UTF-8 with no control characters other than whitespace. ``marks``, if given, is
    :func:`~atoll.disclosure.runs.text_marks` of ``data``, which marks them."""
    try:
        # ASCII is UTF-8: a scan in C, with no string made
        data.isascii() or data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # in UTF-8 a control character is its own byte, and no other character has such a byte:
    # deleting every other byte, in C, leaves the control characters
    if marks is not None:
        return CONTROL_MARK not in marks
    return not data.translate(None, _NOT_CONTROL)


def sniff(name: str, data: bytes, marks: bytes | None = None) -> tuple[str | None, list[Finding]]:
    """The file's type when its content is what its name says, else None with the reason.
    ``marks``: as :func:`is_text` takes them."""
    declared = declared_type(name)
    if declared is None:
        return None, [Finding(check="type", detail="the file's extension is not a known type")]
    if declared == "png":
        if data.startswith(PNG_MAGIC):
            return "png", []
        what = "text" if is_text(data, marks) else binary_kind(data)
        return None, [Finding(check="type", detail=f"named as png but its content is {what}")]
    if not is_text(data, marks):
        what = binary_kind(data)
        return None, [
            Finding(check="type", detail=f"named as {declared} but its content is {what}")
        ]
    return declared, []


#: ancillary PNG chunks a plotting library writes; others, and text beyond a little, can carry
#: a payload nobody sees in the image
_PNG_PLAIN = {b"bKGD", b"cHRM", b"gAMA", b"hIST", b"pHYs", b"sBIT", b"sRGB", b"tIME", b"tRNS"}
_PNG_SPARE = 8 * 1024


def png_findings(data: bytes) -> list[Finding]:
    """A PNG's structure: data after its end, or more than a little text or unknown chunk data,
    is a place to hide a payload; a broken structure cannot be checked."""
    pos, spare = len(PNG_MAGIC), 0
    while True:
        if pos + 8 > len(data):
            return [Finding(check="unparsed", detail="the png ends before its last chunk")]
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if pos > len(data):
            return [Finding(check="unparsed", detail="the png ends inside a chunk")]
        if kind == b"IEND":
            break
        if kind[:1].islower() and kind not in _PNG_PLAIN:
            spare += length
    findings = []
    if pos < len(data):
        findings.append(
            Finding(check="encoded", detail=f"{len(data) - pos} bytes after the png's end")
        )
    if spare > _PNG_SPARE:
        findings.append(
            Finding(check="encoded", detail=f"{spare} bytes in text or unknown png chunks")
        )
    return findings


def binary_kind(data: bytes) -> str:
    """What a binary file is, named by its content (for a finding)."""
    import filetype  # type: ignore[import-untyped]

    guess = filetype.guess_extension(data[:8192])
    return str(guess) if guess else "unrecognised binary"
