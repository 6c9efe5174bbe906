"""The inputs a job read, as the checks need them: a profile from each file's head (columns,
which identify a person, which are numeric, the precision its numbers have), then one pass
that looks every record up in the outputs' index and counts the groups the outputs' tables
report on.

A dataset is read by job after job, so an input up to :data:`CACHE_FILE` is parsed once per
version of the file and kept (up to :data:`CACHE_TOTAL` in all), with the records each token
is in: a job's checks then cost in proportion to its outputs and the records that share their
tokens, not to the whole input; the provider has it parsed while the job runs
(:func:`preparing`). A larger input is streamed on every job, in memory bounded by the
outputs: searched for the outputs' rare tokens, so that only the records that hold one are
parsed (and read in full only where the outputs' tables are counted in it)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import heapq
import io
import itertools
import operator
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress, count
from pathlib import Path
from typing import NamedTuple

from atoll.disclosure import matcher
from atoll.disclosure.echo import (
    SINGLED_OUT,
    Columns,
    Echo,
    OutputIndex,
    identifying_name,
    match,
    quasi_name,
    written_backwards,
)
from atoll.disclosure.glued import GluedFinder
from atoll.disclosure.precision import significant_digits
from atoll.disclosure.shapes import record_shapes
from atoll.disclosure.tables import Groups, Table, column_key, is_number, sum_like, summarised
from atoll.disclosure.tokens import (
    NUMERIC_START,
    distinctive,
    mailbox,
    normal,
    parts,
    parts_by,
    single_token,
    spellings,
)
from atoll.models.output_policy import OutputChecks

#: records read from a file's head to tell its columns apart
SAMPLE = 1000
#: a column is guessed to identify when this many sampled values, or more, are all different
UNIQUE_MIN = 20
_NULLS = {"", "na", "n/a", "null", "none", "nan"}
_NULL_TOKENS = frozenset(w for v in _NULLS for w in parts(v))
_CHUNK = 1024 * 1024
#: groupings (and their sums) kept per parsed input
_GROUPINGS = 16


@dataclass
class Profile:
    """One input file's shape: ``header`` is empty for a file that is not a table (each of its
    lines is then a record, each token a field)."""

    delimiter: str | None
    header: list[str]
    numeric: set[int]
    columns: Columns
    digits: int


class _Hashing(io.RawIOBase):
    """A file read through sha256, so that one pass both parses and hashes it."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._file.readinto(buffer)
        self.digest.update(buffer[:n])
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _delimiter(first_line: str) -> str | None:
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def _body(text: io.TextIOBase, prof: Profile, header: bool = True) -> Iterator[list[str]]:
    """The records of a text as ``prof`` reads them, less its header (where it has one and
    ``header`` says the text starts with it)."""
    records = _records(text, prof.delimiter)
    if header and prof.header:
        next(records, None)
    return records


def _records(text: io.TextIOBase, delimiter: str | None) -> Iterator[list[str]]:
    if delimiter is None:
        for line in text:
            yield [line]
    else:
        yield from csv.reader(text, delimiter=delimiter)


def _open_text(raw: io.RawIOBase) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.BufferedReader(raw, _CHUNK), encoding="utf-8", errors="replace", newline=""
    )


def _is_null(cell: str) -> bool:
    return cell.strip().lower() in _NULLS


@dataclass(frozen=True)
class Shape:
    """What a file's head shows whatever the checks' settings: its columns, which are
    numeric, which have a different value on every sampled record, and the most significant
    digits its numbers have."""

    delimiter: str | None
    header: list[str]
    numeric: frozenset[int]
    unique: frozenset[int]
    digits: int


@dataclass
class Loaded:
    """A whole input in memory: its records, each record's tokens (raw, lower case), and its
    sha256. Kept between jobs while the file is unchanged, so that a dataset is parsed once,
    not on every job that reads it."""

    sha256: str
    records: list[list[str]]
    parts: list[frozenset[str]]
    _normal: dict[int, list[str]] = field(default_factory=dict)
    _universe: frozenset[str] | None = None
    _normals: dict[str, str] = field(default_factory=dict)
    _identifying: dict[frozenset[int], frozenset[str]] = field(default_factory=dict)
    _own: dict[frozenset[int], frozenset[str]] = field(default_factory=dict)
    _numbers: dict[int, list[float | None]] = field(default_factory=dict)
    _groupings: dict[tuple[int, ...], tuple[list[tuple[str, ...]], Counter[tuple[str, ...]]]] = (
        field(default_factory=dict)
    )
    _sums: dict[
        tuple[tuple[int, ...], int, int],
        tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], list[float]]],
    ] = field(default_factory=dict)
    _repeating: list[int] | None = None
    _needed: list[int] | None = None
    _postings: dict[str, list[int]] | None = None
    _rarest: dict[str, list[int]] | None = None
    #: the records that hold a token twice as written (found as they are parsed)
    _doubled: list[int] = field(default_factory=list)
    #: the tokens whose normal form is spelled otherwise (``42.0``, ``north.``)
    _respelled: frozenset[str] = frozenset()
    #: the same, under their normal forms
    _respellings: dict[str, list[str]] = field(default_factory=dict)
    #: the tokens of the universe whose normal form is spelled otherwise
    _abnormal: frozenset[str] = frozenset()
    _shapes: frozenset[bytes] | None = None
    _glued: dict[frozenset[int], GluedFinder] = field(default_factory=dict)

    def glued(self, columns: frozenset[int]) -> GluedFinder:
        """The finder of these (identifier) columns' whole values where joined to other text
        (built once): a value of one token, or one of several words run together; not one
        word of several (a surname alone is no record's identifier to the other checks
        either)."""
        if columns not in self._glued:
            whole: set[str] = set()
            for _, words in _cells_words(self.records, columns):
                if len(words) == 1:
                    whole.add(words[0])
                else:
                    whole.update(joined(words))
            self._glued[columns] = GluedFinder(whole)
        return self._glued[columns]

    def shapes(self, delimiter: str | None) -> frozenset[bytes]:
        """Its records' lengths in runs, as :func:`~atoll.disclosure.shapes.record_shapes`
        makes them (computed once)."""
        if self._shapes is None:
            self._shapes = record_shapes(self.records, delimiter)
        return self._shapes

    def universe(self) -> frozenset[str]:
        """Every token of the file, as written and in the spellings of its normal form
        (computed once)."""
        if self._universe is None:
            words: set[str] = set().union(*self.parts)
            every = set(words)
            respelled = set()
            # most tokens of a dataset are words, names, codes: their own normal form and
            # only spelling, known so without asking :func:`normal` (which a hundred thousand
            # tokens make seconds of a dataset's first job)
            plain = {w for w in words if w and _is_plain(w)}
            normals: dict[str, str] = dict(zip(plain, plain, strict=True))
            for w in words.difference(plain):
                if w:
                    n = normal(w)
                    spelled = spellings(n)
                    every.update(spelled)
                    # each spelling of a normal form is normal in that form
                    normals.update(dict.fromkeys(spelled, n))
                    normals[w] = n
                    if n != w:
                        respelled.add(w)
                        self._respellings.setdefault(n, []).append(w)
            # a value written backwards (``gro.elpmaxe@nosrep``) is another spelling of it,
            # and an address's own part (``ada.abbott1``) another spelling of the address
            for w in words:
                backwards = written_backwards(w)
                if backwards is not None and backwards not in every:
                    every.add(backwards)
                    normals[backwards] = normals[w]
                local = mailbox(w)
                if local is not None and local not in every:
                    every.add(local)
                    normals[local] = normals[w]
            every.discard("")
            normals.pop("", None)
            self._respellings.pop("", None)
            self._respelled = frozenset(respelled)
            self._abnormal = frozenset(t for t, n in normals.items() if t != n)
            self._normals = normals
            self._universe = frozenset(every)
        return self._universe

    def normals(self) -> dict[str, str]:
        """Each token of :meth:`universe`, and its normal form (computed with it): the
        outputs' tokens are all among them, and are looked up here in C rather than each
        spelled normal in Python, job after job."""
        self.universe()
        return self._normals

    def abnormal(self) -> frozenset[str]:
        """The tokens of :meth:`universe` not normal as written (computed with it)."""
        self.universe()
        return self._abnormal

    def respellings(self) -> dict[str, list[str]]:
        """Per normal form, the file's tokens that are spellings of it but not it as written
        (``42.0`` and ``042`` for ``42``; computed with :meth:`universe`)."""
        self.universe()
        return self._respellings

    def postings(self) -> dict[str, list[int]]:
        """Per token (as written), the records that hold it, in order (built once)."""
        if self._postings is None:
            postings: dict[str, list[int]] = {}
            for i, words in enumerate(self.parts):
                for w in words:
                    postings.setdefault(w, []).append(i)
            self._postings = postings
        return self._postings

    def holding(self, words: set[str], least: int = 1, whole: bool = False) -> set[int]:
        """The records that hold at least ``least`` of ``words`` (and, if ``whole``, every
        token of their values that are not null), found by their postings: in time that grows
        with how many records hold them, not with the file."""
        if whole and least >= 1:
            return self._holding_whole(words, least)
        postings = self.postings()
        lists = [postings[w] for w in words if w in postings]
        if least <= 1 and not whole:
            return set(itertools.chain.from_iterable(lists))
        counts = Counter(itertools.chain.from_iterable(lists))
        if not whole:
            return {i for i, n in counts.items() if n >= least}
        needed = self.needed()
        return {i for i, n in counts.items() if n >= least and n >= needed[i]}

    def _holding_whole(self, words: set[str], least: int) -> set[int]:
        """:meth:`holding` with ``whole``: a record counts no more than its null tokens
        among the tokens ``words`` lack, so one of its rarest tokens (one more than it has
        null tokens) is among ``words``: only the records filed under those are counted,
        not every record that shares a common label with the outputs."""
        rarest = self.rarest()
        needed, sets = self.needed(), self.parts
        filed = map(rarest.__getitem__, rarest.keys() & words)
        candidates = list(set(itertools.chain.from_iterable(filed)))
        # per candidate, in C: how many of ``words`` it holds, against what it must hold
        held = map(
            len,
            map(frozenset.intersection, map(sets.__getitem__, candidates), itertools.repeat(words)),
        )
        must = map(max, map(needed.__getitem__, candidates), itertools.repeat(least))
        return set(compress(candidates, map(operator.ge, held, must)))

    def rarest(self) -> dict[str, list[int]]:
        """Per token, the records it is one of the rarest tokens of: as many of a record's
        rarest as one more than its null tokens (built once)."""
        if self._rarest is None:
            # any so many of a record's tokens would do; the rarest file it with the fewest
            rank = {w: len(p) for w, p in self.postings().items()}
            rarest: dict[str, list[int]] = {}
            for i, (words, needed) in enumerate(zip(self.parts, self.needed(), strict=True)):
                if not words:
                    continue
                nulls = len(words) - needed
                if nulls == 0:
                    rarest.setdefault(min(words, key=rank.__getitem__), []).append(i)
                    continue
                for w in heapq.nsmallest(nulls + 1, words, key=rank.__getitem__):
                    rarest.setdefault(w, []).append(i)
            self._rarest = rarest
        return self._rarest

    def needed(self) -> list[int]:
        """Per record, how many tokens it has at least, less those a null value may have
        (computed once)."""
        if self._needed is None:
            self._needed = list(
                map(len, map(frozenset.difference, self.parts, itertools.repeat(_NULL_TOKENS)))
            )
        return self._needed

    def repeating(self) -> list[int]:
        """The records two of whose tokens are one value (``42`` twice, or ``42`` and
        ``42.0``): such a record's fields can match an output row that holds a single token
        of it (found once)."""
        if self._repeating is None:
            self.universe()
            # two tokens of one normal form but spelled apart: only where one is respelled
            respelled = compress(count(), map(self._respelled.isdisjoint, self.parts))
            found = set(self._doubled)
            for i in set(range(len(self.parts))).difference(respelled):
                words = self.parts[i]
                if len(set(map(normal, words))) < len(words):
                    found.add(i)
            self._repeating = sorted(found)
        return self._repeating

    def identifying(self, columns: frozenset[int]) -> frozenset[str]:
        """The tokens of these (identifier) columns, as written (computed once)."""
        if columns not in self._identifying:
            words: set[str] = set()
            for c in columns:
                # one split of the whole column: its cells are kept apart by a separator
                cells = [r[c] for r in self.records if c < len(r)]
                words.update(parts("\x1f".join(cells)))
                for cell in cells:
                    words.update(joined(parts(cell)))
            words.discard("")
            self._identifying[columns] = frozenset(words)
        return self._identifying[columns]

    def own_values(self, columns: frozenset[int]) -> frozenset[str]:
        """The values of these (numeric) columns that are each one record's own: held by no
        other record, and too precise to be met by chance (:func:`distinctive`), as written
        (computed once). An output holding many of them holds record-level data, whatever
        it left out."""
        if columns not in self._own:
            counts: Counter[str] = Counter()
            for c in columns:
                counts.update(r[c].strip().lower() for r in self.records if c < len(r))
            self._own[columns] = frozenset(
                v for v, n in counts.items() if n == 1 and single_token(v) and distinctive(v)
            )
        return self._own[columns]

    def normal_column(self, c: int) -> list[str]:
        """A column's values as table labels compare (parsed once)."""
        if c not in self._normal:
            self._normal[c] = [normal(r[c]) if c < len(r) else "" for r in self.records]
        return self._normal[c]

    def grouped(
        self, labels: tuple[int, ...]
    ) -> tuple[list[tuple[str, ...]], Counter[tuple[str, ...]]]:
        """Each record's group by these label columns, and each group's size (counted once
        per grouping: jobs on a dataset group it by the same few columns)."""
        known = self._groupings.get(labels)
        if known is None:
            keys = list(zip(*(self.normal_column(c) for c in labels), strict=True))
            known = (keys, Counter(keys))
            with _lock:
                self._groupings[labels] = known
                while len(self._groupings) > _GROUPINGS:
                    del self._groupings[next(iter(self._groupings))]
        return known

    def summed(
        self, labels: tuple[int, ...], c: int, n: int
    ) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], list[float]]]:
        """Per group (by these label columns), the total of column ``c``'s absolute values
        and its ``n`` largest (computed once per grouping, column and ``n``)."""
        known = self._sums.get((labels, c, n))
        if known is None:
            keys, _ = self.grouped(labels)
            by_group: dict[tuple[str, ...], list[float]] = {}
            for k, v in zip(keys, self.number_column(c), strict=True):
                if v is not None:
                    by_group.setdefault(k, []).append(v)
            known = (
                {k: sum(values) for k, values in by_group.items()},
                {k: heapq.nlargest(n, values) for k, values in by_group.items()},
            )
            with _lock:
                self._sums[(labels, c, n)] = known
                while len(self._sums) > _GROUPINGS:
                    del self._sums[next(iter(self._sums))]
        return known

    def number_column(self, c: int) -> list[float | None]:
        """A column's absolute values where they are numbers (parsed once)."""
        if c not in self._numbers:
            self._numbers[c] = [
                abs(float(r[c])) if c < len(r) and is_number(r[c]) else None for r in self.records
            ]
        return self._numbers[c]


def count_groups(spec: GroupSpec, loaded: Loaded, dominance_n: int) -> None:
    """Fill ``spec``'s groups from a parsed input: sizes by one count over the label columns,
    and, per sum-like statistic, each group's total and largest contributions."""
    sizes = spec.groups.sizes
    if not spec.labels:
        sizes[()] = len(loaded.records)
        for j, c in spec.sums.items():
            values = [v for v in loaded.number_column(c) if v is not None]
            spec.groups.totals[j][()] = sum(values)
            spec.groups.top[j][()] = heapq.nlargest(dominance_n, values)
        return
    labels = tuple(spec.labels)
    _, counts = loaded.grouped(labels)
    # each step a map in C over the table's groups: a table can have hundreds
    keys = list(sizes)
    sizes.update(zip(keys, map(counts.get, keys, itertools.repeat(0)), strict=True))
    for j, c in spec.sums.items():
        totals, tops = loaded.summed(labels, c, dominance_n)
        known = list(compress(keys, map(totals.__contains__, keys)))
        spec.groups.totals[j].update(zip(known, map(totals.__getitem__, known), strict=True))
        spec.groups.top[j].update(zip(known, map(tops.__getitem__, known), strict=True))


#: inputs up to this size are kept parsed in memory, up to this total
CACHE_FILE = 32 << 20
CACHE_TOTAL = 128 << 20


class _Identity(NamedTuple):
    """What tells a file apart from its next version (an input is never written by a job):
    the file itself (device and inode, whatever path reaches it), its size, and the times it
    was last written and last changed (the second no one can set back)."""

    device: int
    inode: int
    size: int
    modified: int
    changed: int


_shapes: OrderedDict[_Identity, Shape] = OrderedDict()
_loaded: OrderedDict[_Identity, Loaded] = OrderedDict()
#: jobs end, and are checked, on several threads at once
_lock = threading.Lock()
#: inputs being prepared (:func:`preparing`): by which thread, and set once it is done
_preparing: dict[_Identity, tuple[int, threading.Event]] = {}
#: how long a check waits for an input another thread prepares before parsing it itself
PREPARE_WAIT = 120.0


def _identity(path: Path) -> _Identity:
    # one stat: no path resolved (a lookup per directory on the way, on every check)
    st = path.stat()
    return _Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def shape(path: Path) -> Shape:
    """Read ``path``'s head to learn its columns (once per version of the file)."""
    identity = _identity(path)
    with _lock:
        known = _shapes.get(identity)
    if known is not None:
        return known
    with path.open("rb") as f:
        head = f.read(_CHUNK)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    delimiter = _delimiter(first)
    if delimiter is None:
        found = Shape(None, [], frozenset(), frozenset(), 0)
    else:
        with _open_text(_Hashing(path)) as text:
            rows = list(itertools.islice(_records(text, delimiter), SAMPLE + 1))
        header, sample = rows[0], rows[1:]
        width = len(header)
        values = [[r[j] for r in sample if j < len(r) and not _is_null(r[j])] for j in range(width)]
        numeric = {j for j in range(width) if values[j] and all(map(is_number, values[j]))}
        unique = {
            j
            for j in range(width)
            if len(values[j]) >= UNIQUE_MIN
            and len(set(values[j])) == len(values[j])
            and not (j in numeric and any("." in v for v in values[j]))
        }
        digits = max((significant_digits(v) for j in numeric for v in values[j]), default=0)
        found = Shape(delimiter, header, frozenset(numeric), frozenset(unique), digits)
    with _lock:
        _shapes[identity] = found
        while len(_shapes) > 256:
            _shapes.popitem(last=False)
    return found


def profile(path: Path, checks: OutputChecks) -> Profile:
    """An input's columns as these checks see them: the identifiers the publisher marked and,
    unless told not to guess, those the names and values give away."""
    found = shape(path)
    header = found.header
    marked = {n.lower() for n in checks.identifiers}
    quasi_marked = {n.lower() for n in checks.quasiIdentifiers}
    identifiers = {j for j, name in enumerate(header) if name.strip().lower() in marked}
    if checks.guessIdentifiers:
        identifiers |= {j for j, name in enumerate(header) if identifying_name(name)}
        identifiers |= found.unique
    quasi = {j for j, name in enumerate(header) if name.strip().lower() in quasi_marked}
    guessed: set[int] = set()
    if checks.guessIdentifiers and not quasi:
        guessed = {j for j, name in enumerate(header) if quasi_name(name)} - identifiers
    columns = Columns(frozenset(identifiers), frozenset(quasi), frozenset(guessed))
    return Profile(found.delimiter, header, set(found.numeric), columns, found.digits)


#: what a token whose normal form may differ from it starts with (a number's characters and
#: a colon, which :func:`~atoll.disclosure.tokens.normal` strips) or ends with
_RESPELLED_START = NUMERIC_START | {":"}


def _is_plain(token: str) -> bool:
    """Whether a (lower case) token is its own normal form and its only spelling."""
    return token.isascii() and token[0] not in _RESPELLED_START and token[-1] not in ".:"


def _record_parts(record: list[str]) -> frozenset[str]:
    return frozenset(parts("\x1f".join(record)))


#: what a value of several words is run together with, as one token (``AdaAbbott``,
#: ``ada-abbott``, ``ada.abbott``): nothing, or what a token keeps inside it
_JOINERS = ("", "-", ".")


def joined(words: list[str]) -> list[str]:
    """The single tokens a value of several words (``words``, as :func:`parts` splits it)
    becomes when its words are run together; none for a value of one word."""
    return [j.join(words) for j in _JOINERS] if len(words) > 1 else []


def _cells_words(
    records: list[list[str]], columns: frozenset[int]
) -> Iterator[tuple[int, list[str]]]:
    """Each record's number and the words of its cell, for each of ``columns`` it has."""
    for c in columns:
        for i, record in enumerate(records):
            if c < len(record):
                yield i, parts(record[c])


def _with_joined(
    records: list[list[str]], sets: list[frozenset[str]], columns: frozenset[int]
) -> list[frozenset[str]]:
    """Each record's tokens, with its identifier values of several words also run together
    (an identifier written so is still the record's)."""
    out = list(sets)
    for i, words in _cells_words(records, columns):
        extra = joined(words)
        if extra:
            out[i] = out[i].union(extra)
    return out


def _parsed(records: list[list[str]]) -> tuple[list[frozenset[str]], list[int]]:
    """Each record's tokens, and the records that hold a token twice."""
    words = list(map(parts, map("\x1f".join, records)))
    sets = list(map(frozenset, words))
    doubled = compress(count(), map(operator.lt, map(len, sets), map(len, words)))
    return sets, list(doubled)


def kept(path: Path) -> bool:
    """Whether this version of ``path`` is kept parsed (its next check reads it from memory);
    False for a file that cannot be read."""
    try:
        identity = _identity(path)
    except OSError:
        return False
    with _lock:
        return identity in _loaded


def keepable(path: Path) -> bool:
    """Whether ``path`` is small enough to be kept parsed; False for a file that cannot be
    read."""
    try:
        return path.stat().st_size <= CACHE_FILE
    except OSError:
        return False


@contextlib.contextmanager
def preparing(paths: list[Path]) -> Iterator[list[Path]]:
    """Those of ``paths`` that this thread is to prepare: neither kept parsed nor being
    prepared by another. Until the block ends, a check that loads one of them waits for
    this preparation (up to :data:`PREPARE_WAIT`) rather than parse it too."""
    mine: list[tuple[Path, _Identity, threading.Event]] = []
    with _lock:
        for path in paths:
            try:
                identity = _identity(path)
            except OSError:
                continue
            if identity in _preparing or identity in _loaded:
                continue
            ready = threading.Event()
            _preparing[identity] = (threading.get_ident(), ready)
            mine.append((path, identity, ready))
    try:
        yield [path for path, _, _ in mine]
    finally:
        with _lock:
            for _, identity, ready in mine:
                _preparing.pop(identity, None)
                ready.set()


def load(path: Path, prof: Profile) -> Loaded | None:
    """The whole input, parsed (from memory when this version was parsed before); None for
    a file too large to keep, which is then streamed."""
    identity = _identity(path)
    with _lock:
        if (known := _loaded.get(identity)) is not None:
            _loaded.move_to_end(identity)
            return known
        busy = _preparing.get(identity)
    if busy is not None and busy[0] != threading.get_ident():
        # another thread parses it for the jobs that read it: what it keeps is what this
        # check would make, and both at once would each take twice as long
        busy[1].wait(PREPARE_WAIT)
        with _lock:
            if (known := _loaded.get(identity)) is not None:
                return known
    size = identity.size
    if size > CACHE_FILE:
        return None
    raw = _Hashing(path)
    with _open_text(raw) as text:
        kept = list(_body(text, prof))
        sha256 = raw.digest.hexdigest()
    sets, doubled = _parsed(kept)
    if prof.header:
        sets = _with_joined(kept, sets, prof.columns.identifiers)
    loaded = Loaded(sha256, kept, sets, _doubled=doubled)
    with _lock:
        _loaded[identity] = loaded
        total = sum(k.size for k in _loaded)
        while total > CACHE_TOTAL and len(_loaded) > 1:
            old, _ = _loaded.popitem(last=False)
            total -= old.size
    return loaded


@dataclass
class GroupSpec:
    """A table whose groups are counted in an input: the input's columns for its labels, and
    for each sum-like statistic column the input column it summarises."""

    table: Table
    labels: list[int]
    sums: dict[int, int]
    groups: Groups = field(default_factory=Groups)
    #: a table of counts and no statistic: its groups are counted only in an input kept
    #: parsed (one count over it), not by a pass of their own over a streamed one
    counts_only: bool = False


def group_spec(table: Table, prof: Profile) -> GroupSpec | None:
    """How ``table``'s groups map onto this input's columns, if they all do."""
    where = {column_key(h): j for j, h in enumerate(prof.header)}
    labels = [where.get(column_key(table.header[j])) for j in table.labels]
    if not prof.header or None in labels:
        return None
    sums = {
        j: where[summarised(table.header[j])]
        for j in table.stats
        if sum_like(table, j)
        and summarised(table.header[j]) in where
        and where[summarised(table.header[j])] in prof.numeric
    }
    if not table.labels and not any(summarised(table.header[j]) in where for j in table.stats):
        return None
    spec = GroupSpec(table, [j for j in labels if j is not None], sums)
    spec.groups.sizes.update(dict.fromkeys(table.row_keys(), 0))
    for j in sums:
        spec.groups.top[j] = {}
        spec.groups.totals[j] = {}
    return spec


def _count(spec: GroupSpec, record: list[str], dominance_n: int) -> None:
    label = tuple(normal(record[c]) if c < len(record) else "" for c in spec.labels)
    sizes = spec.groups.sizes
    if label not in sizes:
        return
    sizes[label] += 1
    for j, c in spec.sums.items():
        if c >= len(record) or not is_number(record[c]):
            continue
        value = abs(float(record[c]))
        totals = spec.groups.totals[j]
        totals[label] = totals.get(label, 0.0) + value
        top = spec.groups.top[j].setdefault(label, [])
        if len(top) < dominance_n:
            top.append(value)
            top.sort(reverse=True)
        elif value > top[-1]:
            top[-1] = value
            top.sort(reverse=True)


@dataclass
class Scan:
    """What one pass over the inputs found."""

    echoes: list[Echo] = field(default_factory=list)
    digits: int = 0
    sha256: list[str] = field(default_factory=list)
    #: per input (by its number) that the outputs share so many of its records' own values
    #: with (:meth:`Loaded.own_values`), those values as the outputs spell them
    own: dict[int, frozenset[str]] = field(default_factory=dict)


#: echoes kept per input: enough to report, bounded for a copied dataset
_ECHOES = 10_000


def scan(
    paths: list[Path],
    profiles: list[Profile],
    index: OutputIndex,
    specs: list[list[GroupSpec]],
    checks: OutputChecks,
) -> Scan:
    """Pass every input once by the outputs' index and the tables' group specs.

    Most records share no two tokens with any one output row, nor an identifier's: a kept
    input's postings (built once per version of the file) leave them out unread; only the
    rest are taken apart field by field."""
    result = Scan(digits=max((p.digits for p in profiles), default=0))
    spelled, spellings, named = index.spelled, index.spellings, index.named
    for number, (path, prof, table_specs) in enumerate(zip(paths, profiles, specs, strict=True)):
        pending: list[tuple[int, str, list[tuple[int, tuple[str, ...]]]]] = []
        seen: Counter[tuple[int, tuple[str, ...]]] = Counter()
        shared: dict[frozenset[str], int] = {}
        ids = prof.columns.identifiers
        records, sha256, loaded = _source(path, prof, spellings, index)
        # whether any identifier's token is in the outputs at all (unknown when streamed)
        watch = loaded is None or not spellings.isdisjoint(
            loaded.identifying(prof.columns.identifiers)
        )
        if loaded is not None:
            for spec in table_specs:
                count_groups(spec, loaded, checks.dominanceN)
            own = spellings.intersection(loaded.own_values(frozenset(prof.numeric)))
            if len(own) >= checks.threshold:
                result.own[number] = frozenset(own)
        elif counted := [spec for spec in table_specs if not spec.counts_only]:
            # a pass of its own, which reads the records but not their tokens: the records
            # the outputs' tokens are looked for in are then only those the search finds
            for record in _all_records(path, prof):
                for spec in counted:
                    _count(spec, record, checks.dominanceN)
        for record, tokens_ in records:
            if spellings.isdisjoint(tokens_) or len(pending) >= _ECHOES:
                continue
            hits = spellings.intersection(tokens_)
            # (the cheaper test first: both must hold)
            if not any(index.rare(spelled[h]) for h in hits):
                continue
            if named.isdisjoint(hits) and not _may_echo(record, hits, prof, watch, loaded):
                continue
            fields, total = _fields(record, prof, hits, spelled)
            for c, keys, _ in fields:
                if c in ids:
                    seen[(c, keys)] += 1
            for row, how, id_cols in match(index, fields, total, prof.columns):
                if how == SINGLED_OUT:
                    # an echo only where the record is one of few with these values (a
                    # streamed input's are not counted: none is held for them)
                    if loaded is not None and _sharing(loaded, record, id_cols, shared) < (
                        checks.threshold
                    ):
                        pending.append((row, how, []))
                    continue
                values = [(c, k) for c, k, _ in fields if c in id_cols]
                pending.append((row, how, values))
        result.sha256.append(sha256())
        for row, how, values in pending:
            if not values or any(seen[v] < checks.threshold for v in values):
                result.echoes.append(Echo(row, number, how))
    return result


def _source(
    path: Path, prof: Profile, spellings: set[str], index: OutputIndex
) -> tuple[Iterator[tuple[list[str], frozenset[str]]], Callable[[], str], Loaded | None]:
    """An input's records with their tokens, and (once they are all read) its sha256: only
    the records that could echo, picked out from memory by the postings of the outputs'
    tokens, or searched for them in a file too large to keep (:func:`_searched`)."""
    loaded = load(path, prof)
    if loaded is not None:
        # an echo needs two tokens of a record in one output row (or one token standing for
        # two of its fields, where the record repeats a value), or one of an identifier's;
        # with no quasi-identifiers marked and no file name to match, an echo with no
        # identifier is the whole record in one row, all of whose tokens are then paired
        whole = not prof.columns.quasi and not index.named
        # a whole record is looked for among all the outputs' tokens rather than those that
        # share a row (which needs every row indexed): the records found are then compared
        # row by row as any other
        words = index.spellings if whole else index.paired()
        picked = loaded.holding(words, least=2, whole=whole)
        if whole and len(prof.columns.guessed) >= 2:
            # and a record singled out by its guessed quasi-identifiers and another field,
            # in a row that is no aggregate's group
            guessed = index.paired_in_records()
            if guessed:
                picked |= loaded.holding(guessed, least=len(prof.columns.guessed) + 1)
        ids = spellings.intersection(loaded.identifying(prof.columns.identifiers))
        if ids:
            picked |= loaded.holding(ids)
        picked.update(i for i in loaded.repeating() if not spellings.isdisjoint(loaded.parts[i]))
        records = loaded.records
        picked_records = ((records[i], loaded.parts[i]) for i in sorted(picked))
        return picked_records, lambda: loaded.sha256, loaded
    # a record none of whose tokens is in few enough output rows to be looked up by is
    # passed over by the scan, whatever else it shares with the outputs
    spelled = index.spelled
    wanted = frozenset(s for s in spellings if index.rare(spelled[s]))
    digest = hashlib.sha256()
    return _searched(path, prof, wanted, digest), digest.hexdigest, None


def _all_records(path: Path, prof: Profile) -> Iterator[list[str]]:
    """Every record of a file, read in full."""
    with _open_text(io.FileIO(path)) as text:
        yield from _body(text, prof)


#: bytes of a streamed input searched at once
SEARCHED_CHUNK = 8 << 20
#: the longest record a streamed input may hold (the ``csv`` module refuses a field of
#: more than 128 KiB)
_LONGEST_RECORD = 4 * SEARCHED_CHUNK


def _searched(
    path: Path, prof: Profile, spellings: frozenset[str], digest: hashlib._Hash
) -> Iterator[tuple[list[str], frozenset[str]]]:
    """The records of a streamed input that hold one of ``spellings`` (the outputs' rare
    tokens: only those records can echo an output), with their tokens; ``digest`` is fed
    the whole file. Most of it need not be parsed: each chunk of ASCII text whose records
    are its lines is searched for those tokens by one automaton
    (:class:`~atoll.disclosure.matcher.LineFinder`, which splits tokens as the records' own
    are split), and only the lines it finds are read as records. A chunk that is not such
    a text (a quoted field, a lone carriage return, other scripts) is read record by
    record."""
    header = bool(prof.header)
    carry = b""
    finder = matcher.LineFinder(spellings) if matcher.LineFinder.usable(spellings) else None
    with path.open("rb") as f:
        while True:
            block = f.read(SEARCHED_CHUNK)
            digest.update(block)
            data = carry + block if carry else block
            cut = _records_end(data) if block else len(data)
            chunk, carry = data[:cut], data[cut:]
            if len(carry) > _LONGEST_RECORD:
                # an unclosed quote: the rest of the file would be one field
                raise csv.Error("a record of the input is too long to read")
            if chunk:
                yield from _chunk_records(chunk, prof, spellings, finder, header)
                header = False
            if not block:
                return


def _records_end(data: bytes) -> int:
    """Where the last whole record of ``data`` (which starts at a record's start) ends:
    after a newline with an even number of quotes before it (one outside any quoted
    field); 0 where there is none."""
    end = data.rfind(b"\n")
    if end < 0:
        return 0
    quotes = data.count(b'"', 0, end)
    while quotes % 2:
        before = data.rfind(b"\n", 0, end)
        if before < 0:
            return 0
        # the quotes between two newlines, counted once each however far back it goes
        quotes -= data.count(b'"', before, end)
        end = before
    return end + 1


def _chunk_records(
    chunk: bytes,
    prof: Profile,
    spellings: frozenset[str],
    finder: matcher.LineFinder | None,
    header: bool,
) -> Iterator[tuple[list[str], frozenset[str]]]:
    """:func:`_searched` of one chunk of whole records (``header``: its first record is the
    input's header, not a record), with ``finder`` over ``spellings`` (None: too many to
    search for, or none)."""
    # a carriage return only before a newline (as the ``csv`` module writes lines) ends a
    # line as the newline does; alone, the ``csv`` module ends a record there too
    lone_return = chunk.count(b"\r") != chunk.count(b"\r\n")
    by_line = chunk.isascii() and b'"' not in chunk and b"\x00" not in chunk and not lone_return
    if by_line and finder is not None:
        lines = finder.lines(chunk)
    elif by_line and not spellings:
        lines = []
    else:
        text = io.StringIO(chunk.decode("utf-8", errors="replace"), newline="")
        for record in _body(text, prof, header):
            yield record, _record_parts(record)
        return
    for start, end in lines:
        if header and start == 0:
            continue
        line = chunk[start:end].decode("ascii")
        record = (
            [line]
            if prof.delimiter is None
            else next(csv.reader([line], delimiter=prof.delimiter), [])
        )
        yield record, _record_parts(record)


def _sharing(
    loaded: Loaded, record: list[str], columns: list[int], known: dict[frozenset[str], int]
) -> int:
    """How many records hold every token of ``record``'s values in ``columns`` (anywhere:
    so many at least share those values), counted by their postings; ``known`` keeps what
    was counted, by tokens."""
    words = frozenset(w for c in columns if c < len(record) for w in parts(record[c]) if w)
    if words not in known:
        known[words] = len(loaded.holding(set(words), least=len(words))) if words else 0
    return known[words]


def _may_echo(
    record: list[str],
    hits: set[str],
    prof: Profile,
    watch: bool = True,
    loaded: Loaded | None = None,
) -> bool:
    """Whether the tokens a record shares with the outputs could make an echo at all: as
    many as the record has values (in full), an identifier's or every quasi-identifier's
    (marked, or guessed where ``loaded`` lets the records that share them be counted), or
    a file name's. Cheap, so that the many records that share a label or two with an
    aggregate are let pass without taking them apart."""
    # a null value is not printed to echo a record in full; its distinct values, less the
    # nulls among them, counted by a few calls in C (a streamed dataset asks of each record)
    values = set(record)
    if len(hits) >= len(values):
        return True
    nulls = sum(map(_NULLS.__contains__, map(str.lower, map(str.strip, values))))
    if len(hits) >= len(values) - nulls:
        return True
    if not prof.header:
        return False
    columns = prof.columns
    if watch and _any_covered(record, columns.identifiers, hits):
        return True
    if columns.quasi:
        return _all_covered(record, columns.quasi, hits)
    # the guessed ones, where the records that share their values can be counted
    return (
        loaded is not None
        and len(columns.guessed) >= 2
        and _all_covered(record, columns.guessed, hits)
    )


def _all_covered(record: list[str], columns: frozenset[int], hits: set[str]) -> bool:
    """Whether every one of ``columns`` of ``record`` has all its tokens among ``hits``."""
    return all(c < len(record) and _covered(record[c], hits) for c in columns)


def _any_covered(record: list[str], columns: frozenset[int], hits: set[str]) -> bool:
    """Whether one of these cells of ``record`` is covered by ``hits`` (:func:`_covered`),
    their tokens split at once: a cell is looked at alone only where one of its tokens is
    a hit (as a covered cell's are), or where it has none (a blank or a punctuation mark,
    covered by none of its tokens being missing)."""
    cells = [record[c] for c in columns if c < len(record)]
    if not cells:
        return False
    if any(_CELL_MARK in cell for cell in cells):
        return any(_covered(cell, hits) for cell in cells)
    for cell, words in zip(cells, parts_by(_CELL_MARK.join(cells), _CELL_MARK), strict=True):
        if not words:
            if cell:
                return True
        elif (not hits.isdisjoint(words) or not hits.isdisjoint(joined(words))) and _covered(
            cell, hits
        ):
            return True
    return False


#: what joins cells to be split at once: a character :func:`parts` keeps apart (no CSV
#: field holds it)
_CELL_MARK = "\x00"


def _covered(cell: str, hits: set[str]) -> bool:
    """Whether every token of a non-empty cell is among ``hits``, or the cell's words run
    together (:func:`joined`) are one of them."""
    value = cell.lower()
    if value in hits:
        return True
    if not value or single_token(value):
        return False
    words = [w for w in parts(value) if w]
    return all(w in hits for w in words) or not hits.isdisjoint(joined(words))


def _fields(
    record: list[str], prof: Profile, hits: set[str], spelled: Mapping[str, str]
) -> tuple[list[tuple[int, tuple[str, ...], bool]], int]:
    """A record's fields whose tokens all occur in the outputs, as (column, tokens,
    distinctive), and how many non-empty fields it has. A line of a file that is not a table
    has a field per token."""
    if not prof.header:
        words = parts(record[0]) if record else []
        present = [w for w in words if w]
        return [
            (i, (spelled[w],), distinctive(w)) for i, w in enumerate(present) if w in hits
        ], len(present)
    fields = []
    total = 0
    for c, cell in enumerate(record):
        if _is_null(cell):
            continue
        total += 1
        words = [w for w in parts(cell) if w]
        if words and all(w in hits for w in words):
            keys = tuple(spelled[w] for w in words)
            fields.append((c, keys, distinctive(" ".join(words))))
        elif c in prof.columns.identifiers:
            # the identifier's words run together, as one token of the outputs: each way it
            # is written is looked for (one output may write it so, another otherwise)
            fields += [(c, (spelled[w],), distinctive(w)) for w in joined(words) if w in hits]
    return fields, total
