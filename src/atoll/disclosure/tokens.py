"""Values as the echo check compares them: text split into tokens, each spelled one way.

An input field and an output row match when the field's tokens all occur in the row, however
the job printed it (CSV, a printed list, a data frame): numbers compare by value (``42.0`` is
``42``, ``007`` is ``7``), text by its lower case.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Collection

#: keeps e-mail addresses, signed and decimal numbers and dates in one token; an underscore
#: parts words (``P10001_Ada_Abbott``), as a space does, and so does a colon (``id:P10001``,
#: as logs write a key and its value; a time is then its hours, minutes and seconds)
_SPLIT = re.compile(r"(?:[^\w@.+\-]|_)+")
_NAME_SPLIT = re.compile(r"[^A-Za-z0-9@+\-]+")
#: the punctuation a token holds (an address, a number, a date): the rest parts tokens
TOKEN_PUNCTUATION = "@.+-"
_SEPARATORS = str.maketrans(
    {c: " " for c in string.punctuation + "\x1f" if c not in TOKEN_PUNCTUATION}
)
#: what a number may start with
NUMERIC_START = frozenset("0123456789-+.")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
#: where words written together in a name part, by their case (``AdaAbbott``, ``P1Ada``)
_CASE_JOIN = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
#: a name's letters and figures, whatever joins them (hyphens, dots, pluses too)
_ALNUM_SPLIT = re.compile(r"[^A-Za-z0-9@]+")
#: a number, as ``float`` reads one (less ``inf`` and ``nan``): each part possessive, so that
#: a token of many digits followed by something else fails at once rather than after trying
#: every split of its digits (time that grows with the square of its length)
NUMBER = re.compile(r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+")


#: tokens whose normal form is kept (the most recently used), and the longest kept: a job
#: writes what it likes, so the cache is bounded by bytes, not only by entries (about
#: ``CACHED_TOKENS * (2 * CACHED_LENGTH + 250)`` bytes at most, with a token and its
#: normal form each a string of up to ``CACHED_LENGTH`` characters)
CACHED_TOKENS = 1 << 14
CACHED_LENGTH = 64


def normal(token: str) -> str:
    """One spelling of a token: numbers by their value, the rest lower case."""
    return _cached_normal(token) if len(token) <= CACHED_LENGTH else _normal(token)


def _normal(token: str) -> str:
    token = token.strip(".:").lower()
    if token[:1] not in NUMERIC_START or not NUMBER.fullmatch(token):
        return token
    number = float(token)
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


_cached_normal = functools.lru_cache(maxsize=CACHED_TOKENS)(_normal)


def tokens(text: str) -> list[str]:
    """The normal tokens of a line of text (or of one field)."""
    return [t for raw in _SPLIT.split(text) if raw and (t := normal(raw))]


def parts(text: str) -> list[str]:
    """A line's raw tokens, lower case, split where :func:`tokens` splits ASCII text, by two
    calls in C (input records and output rows are both split so, and so compare alike)."""
    return text.lower().translate(_SEPARATORS).split()


def parts_by(text: str, mark: str) -> list[list[str]]:
    """:func:`parts` of each piece of ``text`` between marks (``mark``: a character that
    :func:`parts` neither splits at nor changes, and whose neighbours' case it does not
    affect), by one lowering and one translation of the whole."""
    return list(map(str.split, text.lower().translate(_SEPARATORS).split(mark)))


def single_token(text: str) -> bool:
    """Whether ``text`` is one token as it stands."""
    return _SPLIT.search(text) is None


def spellings(token: str) -> list[str]:
    """The ways an input may spell a normal token: a number also with trailing zeros (an
    input's ``12.50`` is an output's ``12.5``)."""
    if token[:1] not in NUMERIC_START or not token.lstrip("-").replace(".", "", 1).isdigit():
        return [token]
    if "." in token:
        return [token, token + "0", token + "00"]
    return [token, token + ".0", token + ".00"]


def name_tokens(name: str) -> list[str]:
    """A file name's tokens, less its extension: as text is split (an e-mail address stays
    whole) and also at underscores, dots and slashes, which names use as separators; and
    its words however they are joined (hyphens, dots, a change of case: ``Ada-Abbott``,
    ``AdaAbbott``)."""
    stem = _EXTENSION.sub("", name).replace("_", " ").replace("/", " ")
    split = [t for raw in _NAME_SPLIT.split(stem) if (t := normal(raw))]
    words = [t for raw in _ALNUM_SPLIT.split(_CASE_JOIN.sub(" ", stem)) if (t := normal(raw))]
    return list(dict.fromkeys(tokens(stem) + split + words))


#: the longest run of letters and figures in a name read as words written together
JOINED_LONGEST = 64
_RUNS = re.compile(r"[a-z0-9]{4,}")


def joined_words(name: str, known: Collection[str], shortest: int = 2) -> list[str]:
    """The words of ``known`` a file name's letters and figures are made of where written
    together with nothing between them (``adaabbott123``): each run of them (lower case,
    up to :data:`JOINED_LONGEST` long) that splits wholly into known words of ``shortest``
    characters or more, split so (the fewest words). Nothing for a run no split covers."""
    found: list[str] = []
    for run in _RUNS.findall(name.lower()):
        if len(run) > JOINED_LONGEST or run in known:
            continue
        # best[i]: the fewest words run[:i] splits into, and the split
        best: list[list[str] | None] = [[], *([None] * len(run))]
        for end in range(shortest, len(run) + 1):
            for start in range(0, end - shortest + 1):
                before = best[start]
                if before is None or run[start:end] not in known:
                    continue
                if best[end] is None or len(before) + 1 < len(best[end] or ()):
                    best[end] = [*before, run[start:end]]
        split = best[-1]
        if split is not None and len(split) > 1:
            found += split
    return found


#: the most pieces of a name joined back into one value
PIECES_LONGEST = 32
_PIECE_SPLIT = re.compile(r"[^a-z0-9]+")


def pieces_joined(name: str, known: Collection[str]) -> list[str]:
    """The members of ``known`` a file name writes in pieces, with something between each
    (``P-10042``, ``P.1.0.0.4.2``, ``P 1 0 0 4 2``): each run of two pieces or more of its
    letters and figures (lower case, its extension left on) joined back together."""
    pieces = [p for p in _PIECE_SPLIT.split(name.lower()) if p][:PIECES_LONGEST]
    found: list[str] = []
    for start in range(len(pieces)):
        joined = pieces[start]
        for piece in pieces[start + 1 :]:
            joined += piece
            if joined in known:
                found.append(joined)
    return found


def distinctive(token: str) -> bool:
    """A value that is unlikely to occur in an aggregate by chance: text of four characters or
    more, or a number of six digits or more."""
    digits = sum(c.isdigit() for c in token)
    if digits == len(token.lstrip("-+").replace(".", "")):
        return digits >= 6
    return len(token) >= 4


#: the shortest part before an address's ``@`` that stands for the address
MAILBOX_SHORTEST = 5
#: ... and the shortest of letters only (``sales``, ``admin`` are words before mailboxes)
MAILBOX_WORD = 8
_MAILBOX_MARK = re.compile(r"[\d._+-]")


def mailbox(token: str) -> str | None:
    """The part of an address before its ``@``, where it is one person's rather than a
    word: long enough, and with a figure or a separator in it (``ada.abbott1``) or longer
    still."""
    local, at, domain = token.partition("@")
    if not at or not domain or "@" in domain or len(local) < MAILBOX_SHORTEST:
        return None
    if len(local) >= MAILBOX_WORD or _MAILBOX_MARK.search(local):
        return local
    return None
