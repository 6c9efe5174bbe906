"""A file's type by its content, checked against what its name says it is."""

from __future__ import annotations

from pathlib import PurePosixPath

from atoll.disclosure.report import Finding

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

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


def declared_type(name: str) -> str | None:
    """The type a file's name claims, or None for an extension the checks do not know."""
    return _BY_EXTENSION.get(PurePosixPath(name).suffix.lower())


def is_text(data: bytes) -> bool:
    """UTF-8 with no control characters other than whitespace."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def sniff(name: str, data: bytes) -> tuple[str | None, list[Finding]]:
    """The file's type when its content is what its name says, else None with the reason."""
    declared = declared_type(name)
    if declared is None:
        return None, [Finding(check="type", detail="the file's extension is not a known type")]
    if declared == "png":
        if data.startswith(PNG_MAGIC):
            return "png", []
        return None, [Finding(check="type", detail="named as png but its content is not png")]
    if not is_text(data):
        return None, [
            Finding(check="type", detail=f"named as {declared} but its content is binary")
        ]
    return declared, []
