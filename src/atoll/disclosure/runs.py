"""Stretches of a text worth a closer look, found in C: the text is first translated to a mark
per byte (what may belong to a run, and a space for what ends one), then searched with
``bytes.find``; Python runs once per stretch, not once per character."""

from __future__ import annotations

import functools
import re

import ahocorasick_rs

#: what :func:`text_marks` makes of each byte
CONTROL_MARK = 0
#: control characters (what a text file may not hold; whitespace is not one)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
#: what ends a run a payload can lie in
RUN_SEPARATORS = " \t\n\r\x0b\x0c,;|\"'()[]{}<>"
_TEXT_MARKS = bytes(
    CONTROL_MARK if _CONTROL.fullmatch(bytes([b])) else 32 if chr(b) in RUN_SEPARATORS else 120
    for b in range(256)
)


def text_marks(data: bytes) -> bytes:
    """``data`` with each control character a zero byte, each character that ends a run a
    payload can lie in a space, and the rest ``x``, by one translation in C: what telling
    text from binary and finding the runs both read, so that a file is passed once for them,
    not twice. (A control character is also a separator; a text has none.)"""
    return data.translate(_TEXT_MARKS)


def marked_runs(marks: bytes, needle: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each stretch of ``marks`` that begins with ``needle`` and runs to
    the next space (or the end)."""
    runs = []
    at = marks.find(needle)
    while at >= 0:
        end = marks.find(b" ", at)
        end = len(marks) if end < 0 else end
        runs.append((at, end))
        at = marks.find(needle, end)
    return runs


#: ASCII letters lower case, digits and points ``0``, the rest a space
_WORD_MARKS = bytes(
    ord(chr(c).lower()) if c < 128 and chr(c).isalpha() else 48 if chr(c) in "0123456789." else 32
    for c in range(256)
)
_NOT_DIGIT_MARK = re.compile(b"[^0]")


def word_marks(data: bytes) -> bytes:
    """An ASCII text's words and figures, by one translation in C, padded with a space at
    either end (so that a mark at ``i`` is the text's character at ``i - 1``): its letters
    lower case, its digits and points ``0``, the rest spaces. The words a table is named
    with and the long figures precision is checked for are both read from it."""
    return b"".join((b" ", data, b" ")).translate(_WORD_MARKS)


@functools.lru_cache(maxsize=16)
def _figure_search(shortest: int) -> ahocorasick_rs.BytesAhoCorasick:
    """The search for ``shortest`` figure marks in a row: in a log of figures, where most
    runs are a few marks short of it, ``bytes.find`` slows down (it restarts after each
    near miss); the automaton's scan takes a third of the time."""
    return ahocorasick_rs.BytesAhoCorasick([b"0" * shortest])


def digit_runs_marked(marks: bytes, shortest: int) -> list[tuple[int, int]]:
    """The (start, end) in the text of each run of digits and points at least ``shortest``
    long, read from its :func:`word_marks`."""
    runs = []
    end = 0
    for _, at, _ in _figure_search(shortest).find_matches_as_indexes(marks):
        if at < end:
            continue  # further on in a run already taken whole
        after = _NOT_DIGIT_MARK.search(marks, at + shortest)
        end = len(marks) if after is None else after.start()
        runs.append((at - 1, end - 1))
    return runs
