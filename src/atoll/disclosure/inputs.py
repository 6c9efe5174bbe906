"""The inputs a job read, as the checks need them: a profile from each file's head (columns,
which identify a person, which are numeric), then one streaming pass that looks every record
up in the outputs' index, counts the groups the outputs' tables report on, and measures the
precision the data supports. Memory is bounded by the outputs, never by the inputs."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from atoll.disclosure.echo import Columns, Echo, OutputIndex, identifying_name, match
from atoll.disclosure.precision import significant_digits
from atoll.disclosure.tables import Groups, Table, column_key, is_number, sum_like, summarised
from atoll.disclosure.tokens import distinctive, normal, parts, single_token
from atoll.models.output_policy import OutputChecks

#: records read from a file's head to tell its columns apart
SAMPLE = 1000
#: a column is guessed to identify when this many sampled values, or more, are all different
UNIQUE_MIN = 20
_NULLS = {"", "na", "n/a", "null", "none", "nan"}
_CHUNK = 1024 * 1024


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


def profile(path: Path, checks: OutputChecks) -> Profile:
    """Read ``path``'s head to learn its columns."""
    with path.open("rb") as f:
        head = f.read(_CHUNK)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    delimiter = _delimiter(first)
    if delimiter is None:
        return Profile(None, [], set(), Columns(frozenset(), frozenset()), 0)
    with _open_text(_Hashing(path)) as text:
        rows = list(itertools.islice(_records(text, delimiter), SAMPLE + 1))
    header, sample = rows[0], rows[1:]
    width = len(header)
    values = [[r[j] for r in sample if j < len(r) and not _is_null(r[j])] for j in range(width)]
    numeric = {j for j in range(width) if values[j] and all(map(is_number, values[j]))}
    marked = {n.lower() for n in checks.identifiers}
    quasi_marked = {n.lower() for n in checks.quasiIdentifiers}
    identifiers = {j for j, name in enumerate(header) if name.strip().lower() in marked}
    if checks.guessIdentifiers:
        identifiers |= {j for j, name in enumerate(header) if identifying_name(name)}
        identifiers |= {
            j
            for j in range(width)
            if len(values[j]) >= UNIQUE_MIN
            and len(set(values[j])) == len(values[j])
            and not (j in numeric and any("." in v for v in values[j]))
        }
    quasi = {j for j, name in enumerate(header) if name.strip().lower() in quasi_marked}
    digits = max(
        (significant_digits(v) for j in numeric for v in values[j]),
        default=0,
    )
    return Profile(
        delimiter, header, numeric, Columns(frozenset(identifiers), frozenset(quasi)), digits
    )


@dataclass
class GroupSpec:
    """A table whose groups are counted in an input: the input's columns for its labels, and
    for each sum-like statistic column the input column it summarises."""

    table: Table
    labels: list[int]
    sums: dict[int, int]
    groups: Groups = field(default_factory=Groups)


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
    for row in table.rows:
        spec.groups.sizes[table.label_key(row)] = 0
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


#: echoes kept per input: enough to report, bounded for a copied dataset
_ECHOES = 10_000


def scan(
    paths: list[Path],
    profiles: list[Profile],
    index: OutputIndex,
    specs: list[list[GroupSpec]],
    checks: OutputChecks,
) -> Scan:
    """Stream every input once past the outputs' index and the tables' group specs.

    Most records share no token with any output row: one split and one set intersection,
    both in C, let them pass; only the rest are taken apart field by field."""
    result = Scan(digits=max((p.digits for p in profiles), default=0))
    spelled, spellings, named = index.spelled, index.spellings, index.named
    for number, (path, prof, table_specs) in enumerate(zip(paths, profiles, specs, strict=True)):
        raw = _Hashing(path)
        pending: list[tuple[int, str, list[tuple[int, int]]]] = []
        seen: Counter[tuple[int, int]] = Counter()
        ids = prof.columns.identifiers
        with _open_text(raw) as text:
            records = _records(text, prof.delimiter)
            if prof.header:
                next(records, None)
            for record in records:
                for spec in table_specs:
                    _count(spec, record, checks.dominanceN)
                hits = spellings.intersection(parts("\x1f".join(record)))
                if not hits or len(pending) >= _ECHOES:
                    continue
                if named.isdisjoint(hits) and not _may_echo(record, hits, prof):
                    continue
                if not any(index.rare(spelled[h]) for h in hits):
                    continue
                fields, total = _fields(record, prof, hits, spelled)
                for c, keys, _ in fields:
                    if c in ids:
                        seen[(c, hash(keys))] += 1
                for row, how, id_cols in match(index, fields, total, prof.columns):
                    values = [(c, hash(k)) for c, k, _ in fields if c in id_cols]
                    pending.append((row, how, values))
            result.sha256.append(raw.digest.hexdigest())
        for row, how, values in pending:
            if not values or any(seen[v] < checks.threshold for v in values):
                result.echoes.append(Echo(row, number, how))
    return result


def _may_echo(record: list[str], hits: set[str], prof: Profile) -> bool:
    """Whether the tokens a record shares with the outputs could make an echo at all: as
    many as the record has values (in full), an identifier's or every quasi-identifier's, or
    a file name's. Cheap, so that the many records that share a label or two with an
    aggregate are let pass without taking them apart."""
    if len(hits) >= len(set(record)) - ("" in record):
        return True
    if not prof.header:
        return False
    columns = prof.columns
    if any(c < len(record) and _covered(record[c], hits) for c in columns.identifiers):
        return True
    return bool(columns.quasi) and all(
        c < len(record) and _covered(record[c], hits) for c in columns.quasi
    )


def _covered(cell: str, hits: set[str]) -> bool:
    """Whether every token of a non-empty cell is among ``hits``."""
    value = cell.lower()
    if value in hits:
        return True
    if not value or single_token(value):
        return False
    return all(w in hits for w in parts(value) if w)


def _fields(
    record: list[str], prof: Profile, hits: set[str], spelled: dict[str, int]
) -> tuple[list[tuple[int, tuple[int, ...], bool]], int]:
    """A record's fields whose tokens all occur in the outputs, as (column, token keys,
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
    return fields, total
