"""The inputs' tokens found in a whole ASCII text at once, line by line, by one automaton.

Splitting a log of a megabyte into its two hundred thousand tokens, and looking each up, costs
tens of milliseconds in Python however it is done: every token becomes an object. An
Aho-Corasick automaton over the inputs' tokens (each between two spaces) finds them in the
text with no object made but for the hits, which are few in an aggregate's log. The text is
first made what :func:`~atoll.disclosure.tokens.parts` splits: lower case, with every
separator and blank a space (one ``bytes.translate``); a token between two spaces is then a
whole token, and overlapping matches let two neighbours share the space between them.

The automaton (:mod:`.automaton`: a double array, which scans a megabyte against eighty
thousand tokens in under a millisecond, where Rust's ``aho-corasick`` takes over two and
``pyahocorasick`` ten) is built once per set of tokens (a dataset version's), as the dataset
is prepared for a job's checks (it takes a fifth of a second), and kept.

The scan releases the interpreter's lock (the haystack is ``bytes``), so a long text's search
is started on a thread of its own (:class:`LineSearch`) while the other checks read the text,
and joined when its rows are indexed: on a machine with a second core the scan costs the job
almost nothing more.
"""

from __future__ import annotations

import operator
import string
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from atoll.disclosure.automaton import Patterns
from atoll.disclosure.background import Background
from atoll.disclosure.tokens import TOKEN_PUNCTUATION

T = TypeVar("T")

#: texts shorter than this are split as before unless the automaton is already built: a
#: first build costs more than splitting them does
MIN_TEXT = 32 << 10
#: the most tokens an automaton is built over (its memory grows with them)
MAX_TOKENS = 1 << 18
#: automatons kept, one per set of tokens
_KEPT = 4

#: bytes as :func:`~atoll.disclosure.tokens.parts` sees ASCII: letters lower case, its
#: separators and every ASCII character ``str.split`` splits at made spaces
_SEPARATORS = set(string.punctuation + "\x1f") - set(TOKEN_PUNCTUATION)
_BLANKS = set(" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f")
_TABLE = bytes(
    32 if chr(c) in _SEPARATORS | _BLANKS else ord(chr(c).lower()) if c < 128 else c
    for c in range(256)
)


class _Automaton:
    """The tokens, and the automaton that finds each between two spaces."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self.tokens = [t for t in tokens if t and t.isascii() and not t.isspace()]
        self.search = Patterns([f" {t} ".encode() for t in self.tokens])

    def matches(self, text_padded: bytes) -> list[tuple[int, int, int]]:
        """(start, end, token) of each token in an ASCII text, given as :func:`padded` makes
        it: the pad makes a token at either end of the text lie between two spaces, and a
        match at [start, end) of the padded text is the token at [start, end - 2) of the
        text; overlapping, as two neighbours share the space between them."""
        return self.search.overlapping(text_padded)


def padded(text: bytes) -> bytes:
    """``text`` as the automatons read it: a space before and after, ASCII letters lower
    case, separators and blanks spaces (each byte where it was, one on)."""
    return b"".join((b" ", text, b" ")).translate(_TABLE)


#: where a match starts
_START = operator.itemgetter(0)

_automatons: OrderedDict[frozenset[str], _Automaton] = OrderedDict()
_lock = threading.Lock()


def _automaton(tokens: frozenset[str], size: int) -> _Automaton | None:
    """The automaton for ``tokens`` if it is built, or worth building for a text of
    ``size``."""
    with _lock:
        found = _automatons.get(tokens)
        if found is not None:
            _automatons.move_to_end(tokens)
            return found
    if size < MIN_TEXT or len(tokens) > MAX_TOKENS:
        return None
    found = _Automaton(tokens)
    with _lock:
        _automatons[tokens] = found
        while len(_automatons) > _KEPT:
            _automatons.popitem(last=False)
    return found


def build(tokens: frozenset[str]) -> None:
    """Build the automaton for ``tokens`` now, if it is not (and not too large to build), so
    that the first long text searched for them does not wait for it."""
    _automaton(tokens, MIN_TEXT)


def line_hits(
    tokens: frozenset[str], text: bytes, padded_text: bytes | None = None
) -> dict[int, set[str]] | None:
    """Per line (numbered from 1) of an ASCII ``text`` whose lines end only in ``\\n``, the
    members of ``tokens`` among its tokens as :func:`~atoll.disclosure.tokens.parts` splits
    them; None where no automaton is built for ``tokens`` and the text is too short to
    build one for. ``padded_text``, if given, is :func:`padded` of ``text``."""
    automaton = _automaton(tokens, len(text))
    if automaton is None:
        return None
    matches = automaton.matches(padded(text) if padded_text is None else padded_text)
    found: dict[int, set[str]] = {}
    words = automaton.tokens
    line, last = 1, 0
    for start, _, pattern in sorted(matches, key=_START):
        line += text.count(b"\n", last, start)
        last = start
        found.setdefault(line, set()).add(words[pattern])
    return found


class LineFinder:
    """The lines of texts that hold one of a set of tokens (a job's outputs', looked for in a
    dataset too large to keep parsed): an automaton built once for every chunk of one
    input, and not kept beside the inputs' own (:func:`line_hits`), which it would push
    out."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self._automaton = _Automaton(tokens)

    @staticmethod
    def usable(tokens: frozenset[str]) -> bool:
        """Whether an automaton is built over so many tokens."""
        return 0 < len(tokens) <= MAX_TOKENS

    def lines(self, text: bytes) -> list[tuple[int, int]]:
        """The (start, end) in ``text`` of each line (ending in ``\\n``, which ``end`` is
        after, or at the text's end) of an ASCII ``text`` that holds one of the tokens among
        its tokens as :func:`~atoll.disclosure.tokens.parts` splits them, in order."""
        lines: list[tuple[int, int]] = []
        last = -1
        # a token found at ``at`` is on the line ``text[at]`` is on
        for at in sorted({m[0] for m in self._automaton.matches(padded(text))}):
            if at < last:
                continue  # on the line just taken
            begin = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", at)
            last = len(text) if end < 0 else end + 1
            lines.append((begin, last))
        return lines


def _search(
    tokens: frozenset[str], text: bytes, both: bytes, also: Callable[[bytes], T]
) -> tuple[dict[int, set[str]] | None, T]:
    return line_hits(tokens, text, both), also(both)


class LineSearch(Generic[T]):
    """:func:`line_hits` of a text, and ``also`` of the text as :func:`padded` makes it
    (another automaton's search, over the same bytes), run on a thread of its own from the
    moment it is made; :meth:`result` and :meth:`also` wait for it (and raise what it
    raised).

    The text is padded here, on the caller's thread: a translation holds the interpreter's
    lock, so on the search's thread it would only wait for the caller's work, and the
    caller for it; the scans after it let go of the lock and run beside the caller."""

    def __init__(self, tokens: frozenset[str], text: bytes, also: Callable[[bytes], T]) -> None:
        self._search: Background[tuple[dict[int, set[str]] | None, T]] = Background(
            _search, tokens, text, padded(text), also, name="atoll-line-hits"
        )

    def result(self) -> dict[int, set[str]] | None:
        return self._search.result()[0]

    def also(self) -> T:
        return self._search.result()[1]
