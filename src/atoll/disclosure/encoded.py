"""Encoded payloads in text: base64, hex, long digit runs, compressed data and high-entropy
blocks, the ways a job can smuggle a dataset out inside an innocent-looking text file."""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import math
import operator
import re
from collections import Counter
from collections.abc import Iterator

from atoll.disclosure.automaton import Patterns
from atoll.disclosure.report import Finding, and_more
from atoll.disclosure.runs import RUN_SEPARATORS, marked_runs

#: a run this long is not an aggregate: base64 of 24 bytes, hex of 32
# each starts only where a run starts: otherwise every position inside a long word would be
# tried again, and a megabyte of text scanned many times over
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}:?){32,}")
_DIGITS = re.compile(r"(?<!\d)\d{40,}")
#: whitespace-free blocks whose characters are this spread look random
_BLOCK = re.compile(r"(?<![^\s,;|\"'()\[\]{}<>])[^\s,;|\"'()\[\]{}<>]{48,}")
_ENTROPY_BITS = 4.6
#: compressed and archive formats' first bytes
_SIGNATURES = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"\x78\x9c": "zlib",
    b"\x78\xda": "zlib",
    b"\x78\x01": "zlib",
}


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def compressed(data: bytes) -> str | None:
    """The compressed or archive format ``data`` starts with, if any."""
    for magic, name in _SIGNATURES.items():
        if data.startswith(magic):
            return name
    return None


def _decoded(run: str) -> bytes | None:
    try:
        padded = run + "=" * (-len(run) % 4)
        if "-" in run or "_" in run:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


_DIGIT = re.compile(r"\d")


def _looks_base64(run: str) -> bool:
    """Base64 mixes cases and digits; a long identifier or word does not."""
    # each test a pass in C: a run may be megabytes long
    return run.lower() != run and run.upper() != run and _DIGIT.search(run) is not None


#: the characters no payload above holds; a payload lies inside a run of the others at least
#: this long
_SEPARATORS = RUN_SEPARATORS
_SHORTEST = 32
_RUNS = bytes.maketrans(
    bytes(range(256)), bytes(32 if chr(b) in _SEPARATORS else 120 for b in range(256))
)


def long_runs(text: str) -> list[tuple[int, int]]:
    """Where in ``text`` a payload can be: each run of characters that are not separators,
    long enough to hold the shortest, as (start, end). Found by a translation and substring
    searches in C; a text that is not ASCII is one run, read whole."""
    if not text.isascii():
        return [(0, len(text))] if text else []
    marks = text.encode("ascii").translate(_RUNS)
    return marked_runs(marks, b"x" * _SHORTEST)


def find_encoded(text: str, marks: bytes | None = None, wrapped: bool = True) -> list[Finding]:
    """Each kind of payload found, with the first line it is on and how many there are;
    also, unless ``wrapped`` is false (the caller looks apart), a payload wrapped into
    pieces too short for any rule (:func:`find_wrapped`). ``marks``, if given, is
    :func:`~atoll.disclosure.runs.text_marks` of the text's bytes (the text holding no
    control character), read for its runs."""
    uuencoded = find_uuencoded(text)
    if text.isascii():
        if marks is None:
            marks = text.encode("ascii").translate(_RUNS)
        found = find_in_runs(text, marked_runs(marks, b"x" * _SHORTEST)) + uuencoded
        return found + find_wrapped(text, marks) if wrapped else found
    return find_in_runs(text, long_runs(text)) + uuencoded


#: a full line of uuencoded data: ``M`` (45 bytes) and sixty characters of its alphabet (the
#: space to the backquote), as ``uuencode`` and ``binascii.b2a_uu`` write each line but the
#: last; its spaces and punctuation part it into runs too short for the rules above. Found
#: from its ``M`` on (a search for a literal, in C), and kept where that starts a line
_UU_LINE = re.compile(r"M[ -`]{60}\r?$", re.MULTILINE)
#: full lines in a row before they are a payload: 135 bytes, where base64's rule takes 24
_UU_LINES = 3


def find_uuencoded(text: str) -> list[Finding]:
    """Each stretch of :data:`_UU_LINES` or more full lines of uuencoded data in ``text``,
    named with the first line it is on."""
    if "M" not in text:
        # no line can start one: the regular expression's scan is spared
        return []
    lines: list[int] = []
    after, in_row = -1, 0
    for m in _UU_LINE.finditer(text):
        at = m.start()
        if at and text[at - 1] != "\n":
            continue
        in_row = in_row + 1 if at == after else 1
        after = m.end() + 1
        if in_row == _UU_LINES:
            lines.append(text.count("\n", 0, at) + 1 - (_UU_LINES - 1))
    if not lines:
        return []
    return [
        Finding(check="encoded", detail=f"uuencoded data at line {lines[0]}" + and_more(len(lines)))
    ]


#: a payload wrapped into lines or words shorter than a run the rules above read: four
#: pieces or more of eight characters or more, each parted from the next by one to four
#: separators (a newline, a space, a list's ``", "``). An automaton finds where such a
#: stretch may start in a text's marks (``bytes.find`` restarts after each near miss); only
#: where one may, the text is marked again with the characters an encoding writes (a figure
#: with a point, a word with a colon, is no piece of one), and the stretches read there
#: (where it is a double array, a third quicker over a text's marks than a table per byte)
_PIECES = Patterns([b"x" * 8 + b" " * k + b"x" * 8 for k in range(1, 5)])
_WRAPPED = re.compile(rb"(?:x{8,} {1,4}){3,}x{8,}")
_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_ENCODING_MARKS = bytes(
    120 if b in _ALPHABET else 32 if chr(b) in _SEPARATORS else 46 for b in range(256)
)
_PIECE = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_WHOLE = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64_WHOLE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_BASE32_WHOLE = re.compile(r"[A-Z2-7]+={0,6}")
#: the fewest pieces of one length a wrapped payload is made of
_FEWEST_PIECES = 4
#: hex wrapped into pieces is a payload from 32 bytes on, as a run of hex is
_SHORTEST_WRAPPED_HEX = 64
#: the least spread (bits per character) of base32 and base64 put together from pieces
_BASE32_SPREAD = 4.2
_BASE64_SPREAD = 4.5
#: characters of a stretch whose spread is measured (a payload's kind shows at its start)
_ENTROPY_SAMPLE = 64 * 1024


def find_wrapped(text: str, marks: bytes) -> list[Finding]:
    """Payloads an ASCII ``text`` (with its ``marks``, as :func:`find_encoded` takes them)
    holds wrapped into short pieces (base64 in lines of 20, hex in words of 8, a list of
    base64 strings): each stretch of such pieces is read as the pieces put together, and
    held as a payload of that kind would be."""
    if not _PIECES.earliest(marks):
        return []
    strict = text.encode("ascii").translate(_ENCODING_MARKS)
    hits: dict[str, list[int]] = {}
    # where each match starts, in order: a stretch read whole is stepped over at once (a
    # stretch holds a match per piece)
    starts = list(map(operator.itemgetter(0), _PIECES.earliest(strict)))
    i = 0
    while i < len(starts):
        start = strict.rfind(b" ", 0, starts[i]) + 1
        match = _WRAPPED.match(strict, start)
        if match is None:
            i += 1
            continue
        pieces = _PIECE.findall(text, start, match.end())
        for kind in filter(None, map(_joined_kind, _wrapped_payloads(pieces))):
            if kind in hits:
                hits[kind][1] += 1
            else:
                hits[kind] = [text.count("\n", 0, start) + 1, 1]
        i = bisect.bisect_left(starts, match.end(), i + 1)
    return [
        Finding(
            check="encoded",
            detail=f"{kind} wrapped into short pieces at line {line}" + and_more(count),
        )
        for kind, (line, count) in hits.items()
    ]


def _wrapped_payloads(pieces: list[str]) -> Iterator[str]:
    """Each run of pieces of one length (what wrapping makes), with a shorter last one, put
    together: those of four pieces or more (words and names are of many lengths)."""
    runs = [(length, len(list(group))) for length, group in itertools.groupby(map(len, pieces))]
    at = 0
    for k, (length, count) in enumerate(runs):
        end = at + count
        last = end + 1 if k + 1 < len(runs) and runs[k + 1][0] < length else end
        if last - at >= _FEWEST_PIECES:
            yield "".join(pieces[at:last])
        at = end


def _joined_kind(joined: str) -> str | None:
    """The kind of payload pieces put together are, if any (as the rules above tell); a
    table's figures put together are none."""
    if not joined or joined.isdigit():
        return None
    if _HEX_WHOLE.fullmatch(joined) and len(joined) >= _SHORTEST_WRAPPED_HEX:
        fmt = compressed(bytes.fromhex(joined))
        return f"hex holding {fmt} data" if fmt else "hex"
    # names and labels of one length (``Epoch_001 Epoch_002``) are in the alphabets too, but
    # repeat their characters: an encoding of data spreads over its alphabet
    spread = entropy(joined[:_ENTROPY_SAMPLE])
    if (
        _BASE32_WHOLE.fullmatch(joined)
        and _DIGIT.search(joined) is not None
        and joined.lower() != joined
        and spread >= _BASE32_SPREAD
    ):
        try:
            fmt = compressed(base64.b32decode(joined + "=" * (-len(joined) % 8)))
        except (binascii.Error, ValueError):
            fmt = None
        else:
            return f"base32 holding {fmt} data" if fmt else "base32"
    if _BASE64_WHOLE.fullmatch(joined) and _looks_base64(joined) and spread >= _BASE64_SPREAD:
        data = _decoded(joined)
        if data is not None:
            fmt = compressed(data)
            return f"base64 holding {fmt} data" if fmt else "base64"
    if len(joined) >= 48 and spread >= _ENTROPY_BITS:
        return "a high-entropy block"
    return None


def find_in_runs(text: str, spans: list[tuple[int, int]]) -> list[Finding]:
    """:func:`find_encoded`, searching only ``spans`` of ``text`` (each bounded by separators
    or the text's ends)."""
    hits: dict[str, list[int]] = {}

    def hit(kind: str, offset: int) -> None:
        if kind in hits:
            hits[kind][1] += 1
        else:
            hits[kind] = [text.count("\n", 0, offset) + 1, 1]

    def blank(m: re.Match[str]) -> str:
        # a payload found is not searched again as another kind
        return re.sub(r"[^\n]", " ", m.group())

    # each run is searched apart: it is bounded by separators, which no payload holds and
    # which the patterns' look-behinds and word boundaries see as the text's edge
    runs = [(start, text[start:end]) for start, end in spans]
    for start, run in runs:
        for m in _BASE64.finditer(run):
            if not _looks_base64(m.group()):
                continue
            data = _decoded(m.group())
            fmt = compressed(data) if data else None
            hit(f"base64 holding {fmt} data" if fmt else "base64", start + m.start())
    rest = runs
    if hits:
        rest = [
            (start, _BASE64.sub(lambda m: blank(m) if _looks_base64(m.group()) else m.group(), run))
            for start, run in runs
        ]
    found = len(hits)
    for start, run in rest:
        for m in _HEX.finditer(run):
            digits = m.group().replace(":", "")
            if digits.isdigit():
                continue
            data = bytes.fromhex(digits[: len(digits) // 2 * 2])
            fmt = compressed(data)
            hit(f"hex holding {fmt} data" if fmt else "hex", start + m.start())
    if len(hits) > found:
        rest = [
            (start, _HEX.sub(lambda m: m.group() if m.group().isdigit() else blank(m), run))
            for start, run in rest
        ]
    for start, run in rest:
        for m in _DIGITS.finditer(run):
            hit("a long run of digits", start + m.start())
    if not hits:
        for start, run in runs:
            for m in _BLOCK.finditer(run):
                if entropy(m.group()) >= _ENTROPY_BITS:
                    hit("a high-entropy block", start + m.start())
    return [
        Finding(
            check="encoded",
            detail=f"{kind} at line {line}" + and_more(count),
        )
        for kind, (line, count) in hits.items()
    ]
