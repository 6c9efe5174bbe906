"""Identifiers joined to other text by a hyphen, a dot, an at sign or a plus (``ID-P10042``,
``P10042-north``, ``P10042.csv``, ``P10042@host``). Those characters are part of addresses,
numbers and dates, so the checks keep them inside a token, and the identifier is then no
token of the text: no echo check reads it.

Each input kept parsed has an automaton over its identifier columns' values (those with a
letter, of :data:`SHORTEST` characters or more, with none of the joining characters in
them), which a text is searched with as the line search reads it (lower case, separators as
spaces: :func:`~atoll.disclosure.matcher.padded`). A value found with a joining character on
one side, and on the other a joining character or a separator, is the identifier joined to
other text. A value found inside a longer word (``stepP10042x``, identifiers run together,
``P10042P10043``) is that too where the value could hardly be part of another word by
chance: figures and letters mixed, a letter that no hex digit is (hashes and ids are full
of hex), :data:`INSIDE_SHORTEST` characters or more; other values inside a word
(``step10042``, ``anna`` in ``savannah``) are not.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick_rs

from atoll.disclosure.tokens import mailbox

#: the characters that join an identifier to other text and stay inside a token
GLUE = b"-.@+"
#: what may stand on either side of an identifier joined to other text
_BOUNDS = frozenset(GLUE + b" ")
_SPACE = ord(" ")
#: the shortest value looked for
SHORTEST = 4
#: the shortest value found inside a longer word
INSIDE_SHORTEST = 6
_NOT_HEX_LETTERS = frozenset("ghijklmnopqrstuvwxyz")
#: the most values found in one text that are kept
MAX_FOUND = 1000
#: an identifier found joined to other text: the input's number, where it starts in the
#: padded text (one on from where it is in the text), and the value
GluedHit = tuple[int, int, str]


class GluedFinder:
    """One input's identifier values, and the automaton that finds them anywhere."""

    def __init__(self, identifiers: Iterable[str]) -> None:
        values = set(identifiers)
        # an address's own part (``person7``) stands for it, joined to other text too
        values.update([m for v in values if (m := mailbox(v)) is not None])
        self.values = sorted(
            v
            for v in values
            if len(v) >= SHORTEST
            and v.isascii()
            and v.lower() == v
            and any(c.isalpha() for c in v)
            and not any(ord(c) in _BOUNDS for c in v)
        )
        self._inside = [_distinctive(v) for v in self.values]
        # a table per byte over a few thousand values: the quickest scan (about half a
        # millisecond a megabyte), built once per version of the input
        self._search = ahocorasick_rs.BytesAhoCorasick(
            [v.encode() for v in self.values],
            implementation=ahocorasick_rs.Implementation.DFA,
        )

    def find(self, padded: bytes) -> list[tuple[int, str]]:
        """(offset, value) of each value joined to other text in a padded text."""
        found: list[tuple[int, str]] = []
        if not self.values:
            return found
        for value, start, end in self._search.find_matches_as_indexes(padded, overlapping=True):
            # the pad puts a byte before and after every value found
            before, after = padded[start - 1], padded[end]
            bounded = before in _BOUNDS and after in _BOUNDS
            if (bounded and (before != _SPACE or after != _SPACE)) or (
                not bounded and self._inside[value]
            ):
                found.append((start, self.values[value]))
                if len(found) >= MAX_FOUND:
                    break
        return found


def _distinctive(value: str) -> bool:
    """Whether a value found inside a longer word is the value: see the module's text."""
    return (
        len(value) >= INSIDE_SHORTEST
        and any(c.isdigit() for c in value)
        and not _NOT_HEX_LETTERS.isdisjoint(value)
    )


class Glued:
    """The finders of the inputs kept parsed, by input number."""

    def __init__(self, finders: list[tuple[int, GluedFinder]]) -> None:
        self.finders = finders

    def find(self, padded: bytes) -> list[GluedHit]:
        """(input number, offset, value) of each identifier joined to other text."""
        return [
            (number, at, value)
            for number, finder in self.finders
            for at, value in finder.find(padded)
        ]


def nothing(padded: bytes) -> list[GluedHit]:
    """What a text holds of inputs none of which is kept parsed: nothing known."""
    return []
