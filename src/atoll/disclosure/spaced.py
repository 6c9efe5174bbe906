"""Text spelled out a character at a time: ``P 1 0 0 4 2``, or one character per line. Each
character is then a token of its own and no record's value is one; the characters are
joined back into the words they spell, so that the echo check reads those."""

from __future__ import annotations

import re

import ahocorasick_rs

from atoll.disclosure.runs import text_marks

#: four characters in a row each standing alone (between separators) start such a text,
#: looked for by an automaton (a log's marks are full of near misses, which ``bytes.find``
#: restarts after); a word (two characters together) ends it
_NEEDLE = b" x x x x "
_START = ahocorasick_rs.BytesAhoCorasick([_NEEDLE])
_WORD = b"xx"
_CHAR = re.compile(rb"x")


#: the most characters of one stretch joined back; a longer stretch is held unread
MAX_SPELLED = 1 << 20


def spelled_out(data: bytes, marks: bytes | None = None) -> list[tuple[int, str | None]]:
    """Each stretch of ``data`` (a text's bytes) spelled a character at a time, as the line
    it starts on and the words it spells, joined by spaces: characters one separator apart
    are one word, two or more separators part words (a space spelled out between its own
    separators); None for the words of a stretch over :data:`MAX_SPELLED` characters.
    ``marks``, if given, is :func:`~atoll.disclosure.runs.text_marks` of ``data``. Found by
    substring searches in C: a text with no such stretch costs one."""
    if marks is None:
        marks = text_marks(data)
    found: list[tuple[int, str | None]] = []
    # padded with a separator at either end: padded[i] is the mark of data[i - 1]
    padded = b" " + marks + b" "
    # the automaton tells whether there is any such stretch (most texts have none); the
    # stretches are then found one after another from where the last one ended (a stretch
    # holds as many matches as it has characters)
    if not _START.find_matches_as_indexes(padded):
        return found
    at = padded.find(_NEEDLE)
    while at >= 0:
        end = padded.find(_WORD, at)
        # the stretch stops before the word that ends it
        end = len(padded) if end < 0 else padded.rfind(b" ", at, end) + 1
        if end - at > 2 * MAX_SPELLED:
            found.append((data.count(b"\n", 0, at) + 1, None))
            at = padded.find(_NEEDLE, max(end - 1, at + 1))
            continue
        words: list[bytearray] = []
        last = -2
        for m in _CHAR.finditer(padded, at, end):
            i = m.start()
            if i - last > 2 or not words:
                words.append(bytearray())
            words[-1].append(data[i - 1])
            last = i
        # the first character spelled is data[at] (the mark before it, data[at - 1], a
        # separator: perhaps the newline that starts its line)
        line = data.count(b"\n", 0, at) + 1
        found.append((line, " ".join(w.decode("utf-8", "replace") for w in words)))
        at = padded.find(_NEEDLE, max(end - 1, at + 1))
    return found
