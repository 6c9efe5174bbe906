"""Bytes written out one value at a time, and characters no reader sees: ways to carry any
file out in a text that no run-length rule of :mod:`.encoded` catches.

A hex dump with separators (``48 65 6c``, ``48:65:6c``, ``\\x48\\x65``, ``%48%65``, ``0x48,
0x65``, ``\\u0048\\u0065``) or a list of decimal byte values (``72,101,108``), or of octal
ones with no escape (``110 145 154``), spells a payload a value at a time; all are decoded
here, so that the echo check reads what they spell, and a hex dump is held as contiguous hex
is. A list of small numbers is also what an honest table holds (ages, counts): a decimal or
unescaped octal list is held only where its bytes spell text or compressed data.

Zero-width, direction, tag and variation-selector characters show nothing and can each
carry bits between the visible characters of an innocent text: a text holding them is held.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

import ahocorasick_rs

from atoll.disclosure.encoded import compressed
from atoll.disclosure.report import Finding, and_more

#: values in a row before a list is a payload (as the contiguous hex rule's 32 bytes)
SHORTEST = 32
#: the bytes a list of byte values is written with: figures, hex letters, the prefixes'
#: ``x``, ``o``, ``u``, ``\\`` and ``%``, and what separates values
_LIST_BYTES = frozenset(b"0123456789abcdefABCDEFxXoOuU\\%&# ,;:\t\r\n")
_MARKS = bytes(120 if b in _LIST_BYTES else 32 for b in range(256))
#: the fewest bytes of such a list, a figure and a separator per value, looked for by an
#: automaton: ``bytes.find`` restarts after each near miss, and most of a log's bytes are
#: figures, hex letters and spaces
_MARK_RUN = ahocorasick_rs.BytesAhoCorasick([b"x" * (2 * SHORTEST - 1)])
#: a stretch of list bytes longer than this, and not of figures and separators only, is
#: held unread
MAX_STRETCH = 256 * 1024
#: each way a byte value is written in decimal (``7``, ``07``, ``007``) and its value
_BYTE_VALUES = {
    f"{n:0{width}d}".encode(): n for n in range(256) for width in (1, 2, 3) if n < 10**width
}
_BYTE_TEXTS = {k.decode(): v for k, v in _BYTE_VALUES.items()}
#: each way a byte value is written in octal figures with no escape (``7``, ``07``,
#: ``007``) and its value
_OCTAL_VALUES = {
    f"{n:0{width}o}".encode(): n for n in range(256) for width in (1, 2, 3) if n < 8**width
}
#: the most columns a stretch of figures is read down
_WIDEST = 16
#: the most words of a table of whole numbers that is not one list read word by word
MAX_WORDS = 1 << 20
#: what :func:`byte_lists` calls a stretch too long to read
UNREAD = "unread"
#: what it calls decimal values read down a column of lines of figures
DOWN = "decimal down a column"
#: and those read in order, row after row, in a table with an index
TABLE = "decimal in an indexed table"
_LIST_SEPARATORS = b" ,;:\t\r\n"
_FIGURES_AND_SEPARATORS = b"0123456789" + _LIST_SEPARATORS
_SEPARATORS_AS_SPACES = bytes.maketrans(b",;:\t\r\n", b"      ")
_SPLIT = re.compile(rb"[\s,;:]+|(?=\\)|(?=%)|(?=&#)")
_HEX = re.compile(rb"(?:\\x|0x|0X|%)?([0-9a-fA-F]{2})")
_OCTAL = re.compile(rb"(?:\\|0[oO])([0-7]{1,3})")
#: a character escaped as JSON, Python and JavaScript write one (``\\u0050``), where it is a
#: byte value
_UNICODE_ESCAPE = re.compile(rb"\\(?:u00|U000000)([0-9a-fA-F]{2})")
_BINARY = re.compile(rb"[01]{8}")
_DECIMAL = re.compile(rb"\d{1,3}")
#: numeric character references, as HTML and XML write a character
_REFERENCE = re.compile(rb"&#(\d{1,3})")
_HEX_REFERENCE = re.compile(rb"&#[xX]([0-9a-fA-F]{1,2})")
#: how each notation's values are read, and whether a list of them is held whatever it
#: spells (escapes and bit groups are no way to write a table's figures)
_NOTATIONS = {
    "hex": (_HEX, 16),
    "unicode escape": (_UNICODE_ESCAPE, 16),
    "octal": (_OCTAL, 8),
    "binary": (_BINARY, 2),
    "character reference": (_REFERENCE, 10),
    "hex character reference": (_HEX_REFERENCE, 16),
    "decimal": (_DECIMAL, 10),
}
_PRINTABLE = b"\t\n\r" + bytes(range(32, 127))
_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NOT_LETTERS = bytes(b for b in range(256) if b not in _LETTERS)
_PARTING = b" \t\n\r,;.@-_/"
#: the fewest different letters a text spelled in byte values has
_LETTER_KINDS = 8
#: format characters (Unicode's Cf: zero-width, joiners, direction marks and isolates, word
#: joiners, invisible operators, tags), variation selectors and the Hangul fillers
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)


#: the combining marks' blocks (diacritics, their supplements and extensions, and those for
#: symbols and half marks)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


class ByteList(NamedTuple):
    """A list of byte values found in a text: the line it starts on, how it is written (a
    key of the notations, or :data:`UNREAD` for a stretch too long to read, which spells
    nothing) and the bytes it spells."""

    line: int
    notation: str
    data: bytes


def byte_lists(data: bytes) -> list[ByteList]:
    """Every list of at least :data:`SHORTEST` byte values written one at a time in
    ``data`` (a text's bytes). Found by a translation and substring searches in C: only the
    stretches made of nothing but figures, hex letters and separators are split."""
    marks = data.translate(_MARKS)
    found: list[ByteList] = []
    end = 0
    for _, at, _ in _MARK_RUN.find_matches_as_indexes(marks):
        if at < end:
            continue  # further on in a stretch already taken whole
        end = marks.find(b" ", at)
        end = len(marks) if end < 0 else end
        found += _lists_in(data, at, end)
    return found


def _lists_in(data: bytes, start: int, end: int) -> list[ByteList]:
    """The lists of byte values in ``data[start:end]``, a stretch of list bytes only."""
    stretch = data[start:end]
    # where the values start: the stretch may begin with the line end before them
    start += len(stretch) - len(stretch.lstrip(_LIST_SEPARATORS))
    stretch = data[start:end]
    if not stretch.translate(None, _FIGURES_AND_SEPARATORS):
        return _decimal_lists(data, start, stretch)
    if end - start > MAX_STRETCH:
        # read value by value, more than this would cost the provider seconds: held unread
        return [ByteList(data.count(b"\n", 0, start) + 1, UNREAD, b"")]
    found: list[ByteList] = []
    values: list[tuple[int, bytes]] = []
    pos = start
    for part in _SPLIT.split(stretch):
        if part:
            values.append((data.index(part, pos), part))
            pos = values[-1][0] + len(part)
    for kind in _NOTATIONS:
        run: list[tuple[int, bytes]] = []
        for value in [*values, (end, b"")]:
            if value[1] and _is_value(kind, value[1]):
                run.append(value)
                continue
            if len(run) >= SHORTEST and (kind != "hex" or _lettered(run)):
                line = data.count(b"\n", 0, run[0][0]) + 1
                found.append(ByteList(line, kind, _decode(kind, [v for _, v in run])))
            run = []
    return found


def _decimal_lists(data: bytes, start: int, stretch: bytes) -> list[ByteList]:
    """The decimal and bit-group lists in a stretch of figures and separators only (a table
    of whole numbers, however long), each said to be on the line the stretch starts on. A
    stretch that is one list (every word a byte value) is split and read in C; others word
    by word, up to :data:`MAX_WORDS` words (past that, held unread)."""
    words = stretch.translate(_SEPARATORS_AS_SPACES).split()
    line = data.count(b"\n", 0, start) + 1
    # each word's value looked up, in C, rather than parsed
    values = list(map(_BYTE_VALUES.get, words))
    in_order = _in_order(stretch, words, values, line)
    width = _width(stretch, values)
    if _indexed(values, width):
        # an index beside values (``age,count``): in order, the two interleave, and a long
        # table's counts between 32 and 126 with ages between them read as text; the values
        # alone are read down their column
        in_order = [f._replace(notation=TABLE) if f.notation == "decimal" else f for f in in_order]
    return _down_lines(values, width, line) + in_order


def _width(stretch: bytes, values: list[int | None]) -> int:
    """How many figures each line of a stretch of lines of figures holds, where each holds
    as many (a table), from two to :data:`_WIDEST`; 0 where it is no such table."""
    rows = stretch.rstrip(_LIST_SEPARATORS).count(b"\n") + 1
    if rows < SHORTEST or len(values) % rows:
        return 0
    width = len(values) // rows
    return width if 2 <= width <= _WIDEST else 0


def _indexed(values: list[int | None], width: int) -> bool:
    """Whether a stretch of lines of figures, its ``values`` ``width`` to a line (0: not a
    table), is a table with a column that counts up or down by a step (an index, an age, a
    histogram's bins)."""
    for j in range(width):
        column = values[j::width]
        if None not in column and len(set(map(operator.sub, column[1:], column[:-1]))) == 1:
            return column[1] != column[0]
    return False


def _down_lines(values: list[int | None], width: int, line: int) -> list[ByteList]:
    """The byte values a stretch of lines of as many figures each (``index,value``, a
    plot's points; its ``values``, ``width`` to a line, 0 where it is no such table) writes
    down one of its columns, where they spell text or compressed data: each line then holds
    one value of the payload, and no list read in order spells it. A stretch whose lines are
    not as wide as each other has columns only in name, and what they read spells nothing.
    (A column of counts between 32 and 126, as a long grouped table has, reads as text too:
    what such a column spells is compared with the inputs, as a line is, but held only where
    it is compressed data.)"""
    found: list[ByteList] = []
    for j in range(width):
        column = values[j::width]
        for begin, end in present_runs(column):
            spelled = bytes(column[begin:end])  # type: ignore[arg-type]
            if spells_text(spelled) or compressed(spelled) is not None:
                found.append(ByteList(line, DOWN, spelled))
    return found


_PRESENT_RUN = re.compile(rb"\x01{%d,}" % SHORTEST)


def present_runs(values: Sequence[object]) -> list[tuple[int, int]]:
    """The (start, end) of each run of :data:`SHORTEST` items or more of ``values`` with no
    None among them: found in C, as most runs of a table's column are short."""
    if len(values) - values.count(None) < SHORTEST:
        return []
    present = bytes(map(operator.is_not, values, repeat(None)))
    return [m.span() for m in _PRESENT_RUN.finditer(present)]


def _in_order(
    stretch: bytes, words: list[bytes], values: list[int | None], line: int
) -> list[ByteList]:
    """The decimal and bit-group lists of a stretch read word after word."""
    if None not in values:
        one = bytes(values)  # type: ignore[arg-type]
        if len(one) < SHORTEST:
            return []
        if spells_text(one) or compressed(one) is not None:
            return [ByteList(line, "decimal", one)]
        # the figures of octal values (``110 145 154``) are mostly decimal byte values too,
        # which then spell nothing: read as octal, they may
        return _octal_list(words, line) or [ByteList(line, "decimal", one)]
    octal = _octal_list(words, line)
    if octal:
        return octal
    if not stretch.translate(None, b"01" + _LIST_SEPARATORS) and set(map(len, words)) == {8}:
        bits = bytes(int(w, 2) for w in words)
        return [ByteList(line, "binary", bits)] if len(bits) >= SHORTEST else []
    if len(words) > MAX_WORDS:
        return [ByteList(line, UNREAD, b"")]
    found: list[ByteList] = []
    decimal: list[int] = []
    bits_run: list[int] = []
    for word, value in zip([*words, b""], [*values, None], strict=True):
        if value is not None:
            decimal.append(value)
        else:
            if len(decimal) >= SHORTEST:
                found.append(ByteList(line, "decimal", bytes(decimal)))
            decimal = []
        if len(word) == 8 and not word.translate(None, b"01"):
            bits_run.append(int(word, 2))
        else:
            if len(bits_run) >= SHORTEST:
                found.append(ByteList(line, "binary", bytes(bits_run)))
            bits_run = []
    return found


def decimal_value(word: str) -> int | None:
    """The byte value ``word`` writes in decimal figures (``7``, ``07``, ``007``), if any."""
    return _BYTE_TEXTS.get(word)


def _octal_list(words: list[bytes], line: int) -> list[ByteList]:
    """``words`` read as octal byte values with no escape, where every one is one and they
    spell text or compressed data (a table of small numbers is octal-shaped too)."""
    values = list(map(_OCTAL_VALUES.get, words))
    if len(values) < SHORTEST or None in values:
        return []
    spelled = bytes(values)  # type: ignore[arg-type]
    if spells_text(spelled) or compressed(spelled) is not None:
        return [ByteList(line, "octal", spelled)]
    return []


def _is_value(kind: str, value: bytes) -> bool:
    pattern, base = _NOTATIONS[kind]
    m = pattern.fullmatch(value)
    return m is not None and int(m.group(m.lastindex or 0), base) <= 255


def _lettered(run: list[tuple[int, bytes]]) -> bool:
    """Whether a run of hex-shaped values is hex: one of them has a hex letter or a prefix
    (two-figure numbers alone are a decimal list)."""
    return any(not v.isdigit() for _, v in run)


def _decode(kind: str, values: list[bytes]) -> bytes:
    pattern, base = _NOTATIONS[kind]
    out = bytearray()
    for v in values:
        m = pattern.fullmatch(v)
        assert m is not None
        out.append(int(m.group(m.lastindex or 0), base))
    return bytes(out)


def spells_text(data: bytes) -> bool:
    """Whether decoded bytes read as text: nearly all printable, many of them letters, of
    many kinds, and words parted by spaces or punctuation (a list of counts that happen to
    be letters' codes is a run of a few letters with nothing between them)."""
    if not data:
        return False
    # counted by deleting the others, in C: the bytes may be an image's megabytes
    printable = len(data) - len(data.translate(None, _PRINTABLE))
    letters = data.translate(None, _NOT_LETTERS)
    parted = len(data) - len(data.translate(None, _PARTING))
    return (
        printable >= 0.9 * len(data)
        and len(letters) >= 0.4 * len(data)
        and sum(bytes((b,)) in letters for b in _LETTERS) >= _LETTER_KINDS
        and parted >= 0.03 * len(data)
    )


def list_findings(lists: list[ByteList]) -> list[Finding]:
    """What the lists found are held for: a hex dump always (as contiguous hex is); a
    decimal list where its bytes spell text or compressed data (read down a column, only
    compressed data)."""
    kinds: dict[str, list[int]] = {}
    unread = [found.line for found in lists if found.notation == UNREAD]
    for found in lists:
        if found.notation == UNREAD:
            continue
        fmt = compressed(found.data)
        if fmt is not None:
            kind = f"{found.notation} byte values holding {fmt} data"
        elif found.notation in (DOWN, TABLE):
            continue  # a column of counts may read as text: the echo check reads it
        elif found.notation != "decimal":
            kind = f"{found.notation} byte values"
        elif spells_text(found.data):
            kind = "decimal byte values spelling text"
        else:
            continue
        kinds.setdefault(kind, []).append(found.line)
    findings = [
        Finding(
            check="encoded",
            detail=f"{kind} at line {lines[0]}" + and_more(len(lines)),
        )
        for kind, lines in kinds.items()
    ]
    if unread:
        findings.append(
            Finding(
                check="unparsed",
                detail=f"a list of byte values too long to read at line {unread[0]}",
            )
        )
    return findings


def without_marks(text: str) -> str | None:
    """``text`` in its compatibility form (fullwidth and styled letters as plain ones), with
    every combining mark taken off the letters it decorates (``P̲1̲0̲`` is ``P10``) and every
    letter of another script that looks like a Latin letter or a figure read as that one
    (a Cyrillic Er, U+0420, for a ``P``), where that changes it: a mark after each character
    breaks every token apart, and one lookalike in a value makes it another word."""
    if text.isascii():
        return None
    bare = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    if not bare.isascii():
        bare = bare.translate(_lookalikes())
    return None if bare == text else bare


@functools.cache
def _lookalikes() -> dict[int, str]:
    """Each character Unicode lists as confusable with an ASCII letter or figure, and that
    one (made once, when a text first needs it: the list is large)."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        plain = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()]
        plain = [c for c in plain if c.isalnum()]
        if plain:
            table[ord(char)] = plain[0]
    return table


def find_invisible(text: str) -> list[Finding]:
    """A finding when ``text`` holds characters that show nothing (a byte order mark at its
    very start excepted): with the first line one is on and how many there are."""
    if text.isascii():
        return []
    skip = 1 if text.startswith("\ufeff") else 0
    first = _INVISIBLE.search(text, skip)
    if first is None:
        return []
    # counted in C, not one match object each
    count = _INVISIBLE.subn("", text[skip:])[1]
    line = text.count("\n", 0, first.start()) + 1
    return [
        Finding(
            check="encoded",
            detail=f"invisible characters (zero-width, direction or tag) at line {line}"
            + and_more(count),
        )
    ]
