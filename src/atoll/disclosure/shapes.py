"""Records rewritten a character at a time: a job that passes an input through a cipher of
its own (ROT47, a shift of every character, a substitution table) writes text that shares
no token with the input, so no echo check sees it; but each line keeps its record's length.

An input's shapes are the lengths of its records, each as one line (its fields joined by its
delimiter), :data:`SHAPE_LINES` in a row, forwards and backwards. A text with a stretch of
:data:`STRETCH` lines or more each run of which has an input's shape (and three lengths at
least: a table's lines are often all as long) was written from those records. The lengths of
a text's lines are taken from its head (:data:`HEAD`), an input's shapes from its first
:data:`MAX_RECORDS` records: a dataset rewritten whole shows in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat

#: lines in a row whose lengths are compared
SHAPE_LINES = 8
#: the fewest lines in a row with their records' lengths that are held: two runs' worth, so
#: that a text's lines are not taken for records whose lengths they share by chance
STRETCH = 2 * SHAPE_LINES
#: the most distinct lengths a run of lines compared must have at least this many of
_LENGTHS = 3
#: the head of a text whose lines are measured
HEAD = 64 * 1024
#: an input's records whose shapes are known
MAX_RECORDS = 100_000
#: lengths past this are one length: a byte per line
_LONGEST = 255


def _lengths(lines: Iterable[str], ends: bool = True) -> bytes:
    # a line's end is no part of its length, wherever a line's reversal put a carriage
    # return; ``ends``: whether the lines may hold one (else measured in C, not a step each)
    if not ends:
        return bytes(map(min, map(len, lines), repeat(_LONGEST)))
    return bytes(min(len(line.strip("\r\n")), _LONGEST) for line in lines)


def line_shape(text: str) -> bytes:
    """The lengths of the whole lines of ``text``'s head (ended by newlines), a byte each."""
    head = text[:HEAD]
    lines = head.split("\n")
    # the last piece is a line cut by the head's end, or what follows the last newline
    return _lengths(lines[:-1] if len(text) > HEAD else lines, "\r" in head)


def record_shapes(records: list[list[str]], delimiter: str | None) -> frozenset[bytes]:
    """Every run of :data:`SHAPE_LINES` record lengths of an input, forwards and backwards."""
    joiner = delimiter or ""
    lengths = _lengths(map(joiner.join, records[:MAX_RECORDS]))
    runs = {lengths[i : i + SHAPE_LINES] for i in range(len(lengths) - SHAPE_LINES + 1)}
    return frozenset(runs | {run[::-1] for run in runs})


def shaped(shape: bytes, shapes: frozenset[bytes]) -> tuple[int, int] | None:
    """The first line (from 1) and the last of the first stretch of :data:`STRETCH` lines
    or more of a text (measured by :func:`line_shape`) each :data:`SHAPE_LINES` of which in
    a row have the lengths of an input's records in a row; None where there is none."""
    first = last = 0
    for i in range(len(shape) - SHAPE_LINES + 1):
        run = shape[i : i + SHAPE_LINES]
        if run not in shapes or len(set(run)) < _LENGTHS:
            continue
        if first and i + 1 <= last + 1:
            last = i + SHAPE_LINES
            continue
        if first and last - first + 1 >= STRETCH:
            break
        first, last = i + 1, i + SHAPE_LINES
    return (first, last) if first and last - first + 1 >= STRETCH else None
