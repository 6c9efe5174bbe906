"""Values as the echo check compares them: text split into tokens, each spelled one way.

An input field and an output row match when the field's tokens all occur in the row, however
the job printed it (CSV, a printed list, a data frame): numbers compare by value (``42.0`` is
``42``, ``007`` is ``7``), text by its lower case.
"""

from __future__ import annotations

import re

#: keeps e-mail addresses, signed and decimal numbers, dates and times in one token
_SPLIT = re.compile(r"[^\w@.+\-:]+")
_NAME_SPLIT = re.compile(r"[^A-Za-z0-9@+\-]+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def normal(token: str) -> str:
    """One spelling of a token: numbers by their value, the rest lower case."""
    token = token.strip(".:").lower()
    if _NUMBER.fullmatch(token):
        try:
            number = float(token)
        except ValueError:
            return token
        if number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    return token


def tokens(text: str) -> list[str]:
    """The normal tokens of a line of text (or of one field)."""
    return [t for raw in _SPLIT.split(text) if (t := normal(raw))]


def name_tokens(name: str) -> list[str]:
    """A file name's tokens: also split at underscores, dots and slashes, which names use as
    separators."""
    return [t for raw in _NAME_SPLIT.split(name) if (t := normal(raw))]


def key(token: str) -> int:
    """A token's hash: compared only within one check, so the process's own hash will do."""
    return hash(token)


def distinctive(token: str) -> bool:
    """A value that is unlikely to occur in an aggregate by chance: text of four characters or
    more, or a number of six digits or more."""
    digits = sum(c.isdigit() for c in token)
    if digits == len(token.lstrip("-+").replace(".", "")):
        return digits >= 6
    return len(token) >= 4
