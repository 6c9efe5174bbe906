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
- all the quasi-identifiers the publisher marked, and another field;
- with none marked, all the columns whose names say they are quasi-identifiers (age, sex,
  region, city, occupation...), and another field, where fewer than the threshold records
  share their values (a table of groups of that many is an aggregate, not a record).

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
from atoll.disclosure.glued import Glued, GluedHit, nothing
from atoll.disclosure.matcher import LineSearch, line_hits
from atoll.disclosure.tokens import NUMERIC_START as _NUMERIC_START
from atoll.disclosure.tokens import normal, parts, parts_by, spellings, tokens

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


#: names of columns that narrow a person down without naming them: with none marked, a row
#: that holds all of a record's is its echo where few records share their values
_QUASI = re.compile(
    r"(^|_)(age|sex|gender|race|ethnicity|ethnic|region|city|town|county|state|district|"
    r"province|country|nationality|marital|occupation|job|profession|education|religion|"
    r"yob)($|_)"
)
#: how a row echoes a record by the quasi-identifiers guessed from the columns' names
SINGLED_OUT = "in fields few records share"


#: a token's first character (or none), and what :func:`~atoll.disclosure.tokens.spellings`
#: strips before it asks whether a token is a number
_FIRST = operator.itemgetter(slice(0, 1))
_STRIP_MINUS = operator.methodcaller("lstrip", "-")
_DROP_POINT = operator.methodcaller("replace", ".", "", 1)


def _normal(raw: Iterable[str]) -> list[str]:
    """The normal forms of raw tokens, less those that have none (mapped in C: ``normal`` is
    a cached function)."""
    return list(filter(None, map(normal, raw)))


def _spelled_rows(
    spelled: Mapping[str, str], found: Iterable[AbstractSet[str]]
) -> list[frozenset[str]]:
    """Each row's tokens (members of ``spelled``) as their normal forms, less those that have
    none: mapped in C, row after row."""
    return list(
        map(frozenset, map(filter, repeat(None), map(map, repeat(spelled.__getitem__), found)))
    )


#: the shortest word whose spelling backwards is compared with the inputs: a number or a
#: short word read backwards is often another one they hold
BACKWARDS_SHORTEST = 5
_LETTER = re.compile(r"[^\W\d_]")


def written_backwards(word: str) -> str | None:
    """``word`` read backwards, where it is long enough and has a letter: the spelling a
    job that writes its values backwards gives it."""
    if len(word) >= BACKWARDS_SHORTEST and _LETTER.search(word):
        return word[::-1]
    return None


def backwards(words: Iterable[str]) -> list[str]:
    """The normal forms of those of ``words`` :func:`written_backwards` reads backwards."""
    return _normal(filter(None, map(written_backwards, words)))


def _name_key(name: str) -> str:
    """A column name's words, lower case and joined by underscores (``patientId``,
    ``Patient ID`` and ``patient-id`` alike ``patient_id``)."""
    key = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower())
    return key.strip("_")


def identifying_name(name: str) -> bool:
    """A column name that says its values identify a person."""
    return bool(_IDENTIFYING.search(_name_key(name)))


def quasi_name(name: str) -> bool:
    """A column name that says its values narrow a person down (:data:`_QUASI`)."""
    return bool(_QUASI.search(_name_key(name)))


def _other_breaks(text: str) -> bool:
    """Whether ``text`` has a line end other than ``\\n``, or the stand-in for one."""
    if text.isascii():
        # a search for one character is a memchr in C: quicker than a character class
        return any(c in text for c in _ASCII_BREAKS)
    return _OTHER_BREAKS.search(text) is not None


@dataclass
class OutputIndex:
    """Every output row as the set of its tokens, and the rows each rare token is in.

    A row's tokens are normal (:func:`~atoll.disclosure.tokens.normal`): each is its own
    only normal spelling, so a row's tokens are its keys, with no lookup. An input may spell
    a token otherwise (``12.50`` for ``12.5``, ``007`` for ``7``): those spellings
    (:attr:`spellings`) are made once, for every token at once, when the inputs are first
    compared, not as each row is added; and each token's rows (:attr:`postings`) are filed
    only when a record is looked up by them, which most checks never need.

    With the inputs known in full, a table's rows are not even taken apart as they are
    added (:meth:`add_texts`): only the tokens they hold between them are noted (one split
    of them all), and the rows are indexed one by one when first asked for (:attr:`rows`,
    :attr:`sets`, :attr:`postings`, :meth:`paired`): when some record shares its tokens
    with the outputs, which an aggregate's checks mostly find none does."""

    budget: int = 1_000_000
    _rows: list[tuple[int, str, bool]] = field(default_factory=list, repr=False)
    _sets: list[frozenset[str]] = field(default_factory=list, repr=False)
    #: files some of whose rows did not fit in the budget
    overflow: set[int] = field(default_factory=set)
    size: int = 0
    #: every token the inputs hold (in all the spellings :func:`add_text` may meet), when
    #: known: an output token outside it can match no record, and is not indexed
    universe: frozenset[str] | None = None
    #: each token of :attr:`universe` and its normal form, where known: looked up in C
    normals: Mapping[str, str] | None = None
    #: per normal form, the inputs' other spellings of it (those not normal as written),
    #: where known with :attr:`normals`: an output token's spellings are then the inputs'
    #: own, found by a lookup rather than made
    respelled: Mapping[str, Sequence[str]] | None = None
    #: the tokens of :attr:`universe` not normal as written (``42.0``, ``North``), where
    #: known: a row that holds none of them is its own normal forms
    abnormal: frozenset[str] | None = None
    #: the identifiers of the inputs kept parsed, looked for where joined to other text
    #: (:mod:`.glued`), as a text's line search reads it
    glued: Glued | None = None
    #: (file, place) of the rows that are an aggregate's groups (a count, a statistic):
    #: their figures are no record's values, so no record is singled out by them
    #: (:data:`SINGLED_OUT`)
    summaries: set[tuple[int, str]] = field(default_factory=set)
    #: tokens added, and tokens of file names added, whose spellings are not made yet
    _unspelled: set[str] = field(default_factory=set, repr=False)
    _unspelled_names: set[str] = field(default_factory=set, repr=False)
    _spelled: dict[str, str] = field(default_factory=dict, repr=False)
    _spellings: set[str] = field(default_factory=set, repr=False)
    _named: set[str] = field(default_factory=set, repr=False)
    _postings: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _common: set[str] = field(default_factory=set, repr=False)
    #: rows whose tokens are filed in :attr:`postings` (the first so many)
    _posted: int = field(default=0, repr=False)
    #: tables added whose rows are not indexed yet: (file, places, texts), in order
    _pending: list[tuple[int, list[str], list[str]]] = field(default_factory=list, repr=False)

    @property
    def rows(self) -> list[tuple[int, str, bool]]:
        """Per row: the position of its file among the candidates, where it is, whether a
        name."""
        self._index_pending()
        return self._rows

    @property
    def sets(self) -> list[frozenset[str]]:
        """Per row, its tokens."""
        self._index_pending()
        return self._sets

    @property
    def spelled(self) -> Mapping[str, str]:
        """Every spelling an input may give an output token (at least), and the token."""
        self._spell()
        if self.normals is not None and self._from_inputs:
            return self.normals
        return self._spelled

    @property
    def spellings(self) -> set[str]:
        """The spellings of the outputs' tokens, as a set to intersect with."""
        self._spell()
        return self._spellings

    @property
    def named(self) -> set[str]:
        """The spellings of tokens in file names."""
        self._spell()
        return self._named

    @property
    def postings(self) -> dict[str, list[int]]:
        """Per token, the rows it is in, for the tokens in no more than :data:`COMMON` rows."""
        self._post()
        return self._postings

    @property
    def common(self) -> set[str]:
        """The tokens in more rows than :data:`COMMON`: too common to look a record up by."""
        self._post()
        return self._common

    @property
    def _from_inputs(self) -> bool:
        return self.normals is not None and self.respelled is not None

    def _post(self) -> None:
        """File the rows added since last asked under their tokens."""
        sets = self.sets
        postings, common = self._postings, self._common
        for row in range(self._posted, len(sets)):
            for k in sets[row]:
                posting = postings.get(k)
                if posting is None:
                    if k not in common:
                        postings[k] = [row]
                else:
                    posting.append(row)
                    if len(posting) > COMMON:
                        del postings[k]
                        common.add(k)
        self._posted = len(sets)

    def spellings_of(self, words: AbstractSet[str]) -> set[str]:
        """Every spelling an input may give these tokens (added ones): from the inputs' own
        spellings where known, else those :func:`~atoll.disclosure.tokens.spellings` makes."""
        if self._from_inputs:
            assert self.respelled is not None
            found = set(words)
            found.update(*map(self.respelled.__getitem__, self.respelled.keys() & words))
            return found
        self._spell()
        spelled = self._spelled
        return set(compress(spelled, map(words.__contains__, spelled.values())))

    def _spell(self) -> None:
        """Make the spellings of the tokens added since last asked, for all of them at once
        (a row's tokens are many, and most are numbers)."""
        words = self._unspelled
        if words:
            self._unspelled = set()
            if self._from_inputs:
                self._spellings |= self.spellings_of(words)
            else:
                self._make_spellings(words)
        if self._unspelled_names:
            names, self._unspelled_names = self._unspelled_names, set()
            if self._from_inputs:
                self._named |= self.spellings_of(names)
            else:
                for w in names:
                    self._named.update(spellings(w))

    def _make_spellings(self, words: set[str]) -> None:
        """Each token is a spelling of itself, and a number also one with trailing zeros, as
        :func:`~atoll.disclosure.tokens.spellings` spells it."""
        spelled, every = self._spelled, self._spellings
        spelled.update(zip(words, words, strict=True))
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
            for end in ends:
                more = list(map(operator.add, group, repeat(end)))
                spelled.update(zip(more, group, strict=True))
                every.update(more)

    def add_text(self, file: int, place: str, text: str) -> None:
        """Index one output row given as text: with the inputs' tokens known, only those it
        shares with them, found by one set intersection."""
        if self.universe is None:
            words = tokens(text)
            # with the inputs streamed, not known in full, a word written backwards is
            # compared as its forward spelling too (the inputs' universe holds that spelling
            # where it is known: :meth:`~atoll.disclosure.inputs.Loaded.universe`)
            self.add(file, place, [*words, *backwards(words)])
            return
        shared = self.universe.intersection(parts(text))
        if shared:
            # the inputs' own normal form of each: a value written backwards is known as
            # the value, which its spelling's own normal form is not
            spelled = self._normals(shared)
            self.add(file, place, filter(None, map(spelled.__getitem__, shared)))

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
        if self._from_inputs:
            # their tokens all at once, as each row's put together: a space, like the
            # mark, is neither cased nor case-ignorable and splits no token apart
            words = parts(" ".join(texts))
            if self.size + len(words) <= self.budget:
                # the rows' tokens are at most all the words: that much of the budget is
                # theirs, whenever they are indexed
                self.size += len(words)
                self._pending.append((file, list(places), list(texts)))
                assert self.normals is not None
                shared = self.universe.intersection(words)
                self._unspelled.update(filter(None, map(self.normals.__getitem__, shared)))
                return
        self.add_rows(file, places, self._split_rows(joined))

    def _split_rows(self, joined: str) -> list[frozenset[str]]:
        """The rows joined by the mark, each as its normal tokens that the inputs hold."""
        assert self.universe is not None
        # lower case and the separators are character by character, and the mark (neither
        # cased nor case-ignorable) ends the context a final sigma is lowered in: the rows
        # split back out are each text's own
        rows = parts_by(joined, _ROW_MARK)
        return self._normal_rows(list(map(self.universe.intersection, rows)))

    def _index_pending(self) -> None:
        """Index the rows of the tables added and not indexed yet (their part of the budget
        is already counted)."""
        while self._pending:
            file, places, texts = self._pending.pop(0)
            self._append_rows(file, places, self._split_rows(_ROW_MARK.join(texts)))

    def _normal_rows(self, found: Sequence[AbstractSet[str]]) -> list[frozenset[str]]:
        """Each row's tokens (members of :attr:`universe`) as their normal forms: where the
        inputs' tokens not normal as written are known, only the rows that hold one of them
        are spelled anew, the rest kept as they are (most rows of most tables)."""
        if self.abnormal is None or self.normals is None:
            return _spelled_rows(self._normals(set().union(*found)), found)
        rows = list(map(frozenset, found))
        odd = list(compress(count(), map(operator.not_, map(self.abnormal.isdisjoint, rows))))
        for i, row in zip(
            odd, _spelled_rows(self.normals, map(rows.__getitem__, odd)), strict=True
        ):
            rows[i] = row
        return rows

    def _normals(self, words: AbstractSet[str]) -> Mapping[str, str]:
        """A mapping that holds the normal form of each of ``words`` (members of
        :attr:`universe`)."""
        if self.normals is not None and words <= self.normals.keys():
            return self.normals
        return {t: normal(t) for t in words}

    def search_lines(self, data: bytes) -> LineSearch[list[GluedHit]] | None:
        """Start the search :meth:`add_lines` makes of ``data`` (the bytes of the text it
        will be given) on a thread of its own, where the text is long enough to be searched
        by the automaton; None where it is not."""
        if self.universe is None or len(data) < matcher.MIN_TEXT or not data.isascii():
            return None
        return LineSearch(self.universe, data, self.glued.find if self.glued else nothing)

    def add_lines(
        self,
        file: int,
        text: str,
        label: str = "line",
        search: LineSearch[list[GluedHit]] | None = None,
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
                places = [f"{label} {number}" for number in hits]
                self.add_rows(file, places, self._normal_rows(list(hits.values())))
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

    def add_rows(self, file: int, places: Sequence[str], rows: Sequence[Iterable[str]]) -> None:
        """:meth:`add` of each row in turn (not a name's), at once in C where they all fit
        in the budget."""
        sets = list(map(frozenset, rows))
        total = sum(map(len, sets))
        if self.size + total > self.budget:
            for place, words in zip(places, sets, strict=True):
                self.add(file, place, words)
            return
        self.size += total
        self._append_rows(file, places, sets)
        self._unspelled.update(*sets)

    def _append_rows(self, file: int, places: Sequence[str], sets: list[frozenset[str]]) -> None:
        kept = list(map(bool, sets))
        self._rows.extend(zip(repeat(file), compress(places, kept), repeat(False)))
        self._sets.extend(compress(sets, kept))

    def add(self, file: int, place: str, words: Iterable[str], name: bool = False) -> None:
        """Index one output row, given its normal tokens: it counts against the budget by
        how many distinct tokens it has."""
        unique = frozenset(words)
        if not unique:
            return
        if self.size + len(unique) > self.budget:
            self.overflow.add(file)
            return
        self.size += len(unique)
        self._rows.append((file, place, name))
        self._unspelled.update(unique)
        if name:
            self._unspelled_names.update(unique)
        self._sets.append(unique)

    def paired(self) -> set[str]:
        """The spellings of the tokens that share an output row with another token (a
        subset of :attr:`spellings`, found by indexing every row)."""
        return self._paired(self.sets)

    def _paired(self, sets: Sequence[frozenset[str]]) -> set[str]:
        """The spellings of the tokens of ``sets`` that share one with another token."""
        paired: set[str] = set().union(*compress(sets, map((1).__lt__, map(len, sets))))
        return self.spellings_of(paired)

    def paired_in_records(self) -> set[str]:
        """:meth:`paired`, of the rows that are no aggregate's groups (:attr:`summaries`):
        those a record may be singled out by; none where every row is one, found with no
        row indexed."""
        summaries = self.summaries
        places = [(f, p) for f, ps, _ in self._pending for p in ps]
        places += [(f, p) for f, p, _ in self._rows]
        if all(map(summaries.__contains__, places)):
            return set()
        kept = [(pos, place) not in summaries for pos, place, _ in self.rows]
        return self._paired(list(compress(self.sets, kept)))

    def summary(self, row: int) -> bool:
        """Whether the row is an aggregate's group (:attr:`summaries`)."""
        pos, place, _ = self.rows[row]
        return (pos, place) in self.summaries

    def rare(self, k: str) -> bool:
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
    #: with no quasi-identifiers marked, the columns whose names say they are ones: an echo
    #: by them the caller confirms by how many records share their values
    guessed: frozenset[int] = frozenset()


def match(
    index: OutputIndex,
    fields: list[tuple[int, tuple[str, ...], bool]],
    total: int,
    columns: Columns,
) -> list[tuple[int, str, list[int]]]:
    """The output rows that echo one input record, with how and the identifier columns whose
    values they hold (whose rarity the caller still has to confirm; for :data:`SINGLED_OUT`,
    the guessed quasi-identifiers whose values together). ``fields``: the record's
    fields whose tokens all occur in the outputs, as (column, tokens, distinctive);
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
        elif (
            len(columns.guessed) >= 2
            and columns.guessed <= cols
            and len(cols) > len(columns.guessed)
            and not index.summary(row)
        ):
            found.append((row, SINGLED_OUT, sorted(columns.guessed)))
        elif is_name and len(cols) >= 2:
            found.append((row, "in several fields", []))
    return found
