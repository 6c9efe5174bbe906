"""Row-level echo: an output row (or log line, or file name) that reproduces an input record.

Outputs are small (capped) and inputs may be large, so the outputs are indexed and the inputs
passed by them once: each output row becomes a set of token keys (only the tokens the inputs
hold, when they are known), and each input record is looked up by the tokens only a few output
rows share. A record is echoed when one output row
holds, among its tokens:

- all its fields (three or more; or two, one of them an identifier);
- an identifier's value and any other field of the record;
- an identifier's value on its own, when the value is distinctive (text of four characters or
  more, a number of six digits or more) and rare (fewer than the threshold records hold it);
- all the quasi-identifiers the publisher marked, and another field.

Identifiers are the columns the publisher marks and, unless told not to guess, the columns
whose names say so (id, name, email, ssn, dob, zip, postcode, phone...) or whose values differ
on every record of a sample.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import compress, count, repeat

from atoll.disclosure import matcher
from atoll.disclosure.matcher import LineSearch, line_hits
from atoll.disclosure.tokens import NUMERIC_START as _NUMERIC_START
from atoll.disclosure.tokens import key, normal, parts, parts_by, spellings, tokens

#: an output token shared by more rows than this is looked up by the rows' sets, not indexed
COMMON = 64
#: line ends other than ``\\n`` (as ``str.splitlines`` sees them), and what stands for a
#: ``\\n`` among a text's tokens: a control character no checked text holds
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00]")
_LINE_MARK_TOKEN = "\x00"
_ASCII_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x00"
_LINE_MARK = f" {_LINE_MARK_TOKEN} "
#: what joins a table's rows to be split at once (as the line mark, in no checked text)
_ROW_MARK = "\x00"
_IDENTIFYING = re.compile(
    r"(^|_)(id|ids|uuid|guid|name|names|firstname|lastname|surname|forename|fullname|email|"
    r"mail|ssn|nhs|nino|passport|dob|birth|birthdate|birthday|zip|zipcode|postcode|postal|"
    r"phone|mobile|telephone|tel|address|street|ip|mrn|patient)($|_)"
)


#: a token's first character (or none), and what :func:`~atoll.disclosure.tokens.spellings`
#: strips before it asks whether a token is a number
_FIRST = operator.itemgetter(slice(0, 1))
_STRIP_MINUS = operator.methodcaller("lstrip", "-")
_DROP_POINT = operator.methodcaller("replace", ".", "", 1)


def _normal(raw: Iterable[str]) -> list[str]:
    """The normal forms of raw tokens, less those that have none (mapped in C: ``normal`` is
    a cached function)."""
    return list(filter(None, map(normal, raw)))


def _spelled_rows(spelled: Mapping[str, str], found: Iterable[AbstractSet[str]]) -> list[list[str]]:
    """Each row's tokens (members of ``spelled``) as their normal forms, less those that have
    none: mapped in C, row after row."""
    return list(map(list, map(filter, repeat(None), map(map, repeat(spelled.__getitem__), found))))


def identifying_name(name: str) -> bool:
    """A column name that says its values identify a person."""
    key = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower())
    return bool(_IDENTIFYING.search(key.strip("_")))


def _other_breaks(text: str) -> bool:
    """Whether ``text`` has a line end other than ``\\n``, or the stand-in for one."""
    if text.isascii():
        # a search for one character is a memchr in C: quicker than a character class
        return any(c in text for c in _ASCII_BREAKS)
    return _OTHER_BREAKS.search(text) is not None


@dataclass
class OutputIndex:
    """Every output row as a set of token keys, and the rows each rare token is in.

    A row's tokens are normal (:func:`~atoll.disclosure.tokens.normal`): each is its own
    key's only normal spelling, so a row's keys need no lookup, and the other spellings an
    input may give a token (:attr:`spelled`) are made once, for every token at once, when
    the inputs are first compared, not as each row is added."""

    budget: int = 1_000_000
    #: per row: the position of its file among the candidates, where it is, whether a name
    rows: list[tuple[int, str, bool]] = field(default_factory=list)
    sets: list[frozenset[int]] = field(default_factory=list)
    postings: dict[int, list[int]] = field(default_factory=dict)
    common: set[int] = field(default_factory=set)
    #: files some of whose rows did not fit in the budget
    overflow: set[int] = field(default_factory=set)
    size: int = 0
    #: every token the inputs hold (in all the spellings :func:`add_text` may meet), when
    #: known: an output token outside it can match no record, and is not indexed
    universe: frozenset[str] | None = None
    #: each token of :attr:`universe` and its normal form, where known: looked up in C
    normals: Mapping[str, str] | None = None
    #: tokens added, and tokens of file names added, whose spellings are not made yet
    _unspelled: set[str] = field(default_factory=set, repr=False)
    _unspelled_names: set[str] = field(default_factory=set, repr=False)
    _spelled: dict[str, int] = field(default_factory=dict, repr=False)
    _spellings: set[str] = field(default_factory=set, repr=False)
    _named: set[str] = field(default_factory=set, repr=False)

    @property
    def spelled(self) -> dict[str, int]:
        """Every spelling an input may give an output token, and the token's key."""
        self._spell()
        return self._spelled

    @property
    def spellings(self) -> set[str]:
        """The same spellings, as a set to intersect with."""
        self._spell()
        return self._spellings

    @property
    def named(self) -> set[str]:
        """The spellings of tokens in file names."""
        self._spell()
        return self._named

    def _spell(self) -> None:
        """Make the spellings of the tokens added since last asked, for all of them at once
        (a row's tokens are many, and most are numbers): each token is a spelling of itself,
        and a number also one with trailing zeros, as
        :func:`~atoll.disclosure.tokens.spellings` spells it."""
        words = self._unspelled
        if not words:
            return
        self._unspelled = set()
        spelled, every = self._spelled, self._spellings
        spelled.update(zip(words, map(key, words), strict=True))
        every.update(words)
        # the numbers among them, and those with a decimal point, picked out in C: a job's
        # table can hold thousands of distinct figures
        starts = list(compress(words, map(_NUMERIC_START.__contains__, map(_FIRST, words))))
        plain = map(str.isdigit, map(_DROP_POINT, map(_STRIP_MINUS, starts)))
        numbers = list(compress(starts, plain))
        dotted = list(map(operator.contains, numbers, repeat(".")))
        for ends, group in (
            (("0", "00"), list(compress(numbers, dotted))),
            ((".0", ".00"), list(compress(numbers, map(operator.not_, dotted)))),
        ):
            keys = list(map(key, group))
            for end in ends:
                more = list(map(operator.add, group, repeat(end)))
                spelled.update(zip(more, keys, strict=True))
                every.update(more)
        for w in self._unspelled_names:
            self._named.update(spellings(w))
        self._unspelled_names = set()

    def add_text(self, file: int, place: str, text: str) -> None:
        """Index one output row given as text: with the inputs' tokens known, only those it
        shares with them, found by one set intersection."""
        if self.universe is None:
            self.add(file, place, tokens(text))
            return
        shared = self.universe.intersection(parts(text))
        if shared:
            self.add(file, place, _normal(shared))

    def add_texts(self, file: int, places: Sequence[str], texts: Sequence[str]) -> None:
        """:meth:`add_text` of each text in turn (a table's rows), with the inputs' tokens
        known split at once: the texts are joined by a character no checked text holds,
        lowered and translated by one call each in C, and each token spelled normal once, not
        once per row it is in."""
        joined = _ROW_MARK.join(texts)
        if self.universe is None or joined.count(_ROW_MARK) != len(texts) - 1:
            for place, text in zip(places, texts, strict=True):
                self.add_text(file, place, text)
            return
        # lower case and the separators are character by character, and the mark (neither
        # cased nor case-ignorable) ends the context a final sigma is lowered in: the rows
        # split back out are each text's own
        rows = parts_by(joined, _ROW_MARK)
        shared = list(map(self.universe.intersection, rows))
        spelled = self._normals(set().union(*shared))
        self.add_rows(file, places, _spelled_rows(spelled, shared))

    def _normals(self, words: AbstractSet[str]) -> Mapping[str, str]:
        """A mapping that holds the normal form of each of ``words`` (members of
        :attr:`universe`)."""
        if self.normals is not None and words <= self.normals.keys():
            return self.normals
        return {t: normal(t) for t in words}

    def search_lines(self, data: bytes) -> LineSearch | None:
        """Start the search :meth:`add_lines` makes of ``data`` (the bytes of the text it
        will be given) on a thread of its own, where the text is long enough to be searched
        by the automaton; None where it is not."""
        if self.universe is None or len(data) < matcher.MIN_TEXT or not data.isascii():
            return None
        return LineSearch(self.universe, data)

    def add_lines(
        self, file: int, text: str, label: str = "line", search: LineSearch | None = None
    ) -> None:
        """Index each line of ``text`` as a row (``line N``, or as ``label`` says). With the
        inputs' tokens known and only ``\\n`` ending lines, the whole text is searched at
        once, by an automaton (:mod:`.matcher`) or one split and a lookup in C: only the
        lines that hold an input's token cost a step in Python. ``search``, if given, is
        :meth:`search_lines` of the text's bytes, already under way."""
        if self.universe is None or _other_breaks(text):
            for number, line in enumerate(text.splitlines(), start=1):
                self.add_text(file, f"{label} {number}", line)
            return
        if text.isascii():
            if search is not None:
                hits = search.result()
            else:
                hits = line_hits(self.universe, text.encode("ascii"))
            if hits is not None:
                spelled = self._normals(set().union(*hits.values()))
                places = [f"{label} {number}" for number in hits]
                self.add_rows(file, places, _spelled_rows(spelled, hits.values()))
                return
        words = parts(text.replace("\n", _LINE_MARK))
        shared = self.universe.intersection(words) - {_LINE_MARK_TOKEN}
        if not shared:
            return
        by_line: dict[int, set[str]] = {}
        number, last = 1, 0
        for at in compress(count(), map(shared.__contains__, words)):
            # the line marks between two hits, counted in C (a one-character string is
            # one object, so each comparison is an identity test)
            number += words[last:at].count(_LINE_MARK_TOKEN)
            last = at
            by_line.setdefault(number, set()).add(words[at])
        spelled = self._normals(shared)
        for number, found in by_line.items():
            self.add(file, f"{label} {number}", list(filter(None, map(spelled.__getitem__, found))))

    def add_rows(self, file: int, places: Sequence[str], rows: Sequence[list[str]]) -> None:
        """:meth:`add` of each row in turn (not a name's): a table's tokens are mostly
        distinct, so gathering each key's rows at once in C (a list made per key through a
        ``defaultdict``) costs more than this loop."""
        for place, words in zip(places, rows, strict=True):
            self.add(file, place, words)

    def add(self, file: int, place: str, words: list[str], name: bool = False) -> None:
        """Index one output row, given its normal tokens."""
        if not words:
            return
        if self.size + len(words) > self.budget:
            self.overflow.add(file)
            return
        self.size += len(words)
        row = len(self.rows)
        self.rows.append((file, place, name))
        unique = set(words)
        self._unspelled.update(unique)
        if name:
            self._unspelled_names.update(unique)
        keys = frozenset(map(key, unique))
        self.sets.append(keys)
        postings, common = self.postings, self.common
        for k in keys:
            posting = postings.get(k)
            if posting is None:
                if k not in common:
                    postings[k] = [row]
            else:
                posting.append(row)
                if len(posting) > COMMON:
                    del postings[k]
                    common.add(k)

    def paired(self) -> set[str]:
        """The spellings of the tokens that share an output row with another token."""
        keys: set[int] = set()
        keys.update(*(s for s in self.sets if len(s) >= 2))
        spelled = self.spelled
        return set(compress(spelled, map(keys.__contains__, spelled.values())))

    def rare(self, k: int) -> bool:
        """Whether the token is in few enough rows to be looked up by."""
        return k in self.postings


@dataclass(frozen=True)
class Echo:
    """An output row that reproduces an input record: how, and where."""

    row: int
    input: int
    how: str


@dataclass
class Columns:
    """Which of an input's columns identify a person, alone or together."""

    identifiers: frozenset[int]
    quasi: frozenset[int]


def match(
    index: OutputIndex,
    fields: list[tuple[int, tuple[int, ...], bool]],
    total: int,
    columns: Columns,
) -> list[tuple[int, str, list[int]]]:
    """The output rows that echo one input record, with how and the identifier columns whose
    values they hold (whose rarity the caller still has to confirm). ``fields``: the record's
    fields whose tokens all occur in the outputs, as (column, token keys, distinctive);
    ``total``: how many non-empty fields the record has."""
    candidates: set[int] = set()
    for _, keys, _ in fields:
        for k in keys:
            candidates.update(index.postings.get(k, ()))
    found: list[tuple[int, str, list[int]]] = []
    for row in candidates:
        tokens = index.sets[row]
        matched = [(c, d) for c, keys, d in fields if all(k in tokens for k in keys)]
        cols = {c for c, _ in matched}
        ids = [c for c in cols if c in columns.identifiers]
        distinct_ids = [c for c, d in matched if d and c in columns.identifiers]
        is_name = index.rows[row][2]
        if len(cols) == total and (total >= 3 or (total == 2 and ids)):
            found.append((row, "in full", []))
        elif ids and len(cols) >= 2:
            found.append((row, "in an identifier and other fields", ids))
        elif distinct_ids:
            found.append((row, "in an identifier", distinct_ids))
        elif len(columns.quasi) >= 2 and columns.quasi <= cols and len(cols) > len(columns.quasi):
            found.append((row, "in its quasi-identifiers and other fields", []))
        elif is_name and len(cols) >= 2:
            found.append((row, "in several fields", []))
    return found
