"""Tables in outputs, and the statistical disclosure checks on them (ACRO's rules).

A table is read from CSV or TSV, a Markdown pipe table, or a JSON list of records. Its columns
are told apart by name and content: a count column (``n``, ``count``, ``freq``...), statistic
columns (``mean``, ``sum``, ``max``... or a numeric input column's own name), and the label
columns that name the groups. The checks then hold:

- small cells: a count under the threshold (zero is not held: an empty histogram bin);
- small groups: a statistic over fewer people than the threshold, the group's size read from
  the table's count column or, failing one, counted in the inputs;
- dominance: a sum or mean whose N largest contributions make K of the group's total.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, overload

import ahocorasick_rs

from atoll.disclosure.report import Finding
from atoll.disclosure.runs import word_marks
from atoll.disclosure.tokens import NUMBER, normal

_COUNT_WORDS = {
    "n", "count", "counts", "freq", "frequency", "size", "num", "nobs", "obs", "observations",
    "records", "patients", "people", "persons", "cases", "individuals", "subjects", "rows",
}  # fmt: skip
_STAT_WORDS = {
    "mean", "avg", "average", "median", "min", "max", "minimum", "maximum", "std", "sd",
    "stdev", "var", "variance", "sum", "total", "mode", "range", "p50", "q1", "q3", "iqr",
}  # fmt: skip
_SUMLIKE = {"sum", "total", "mean", "avg", "average"}
_PARTS = re.compile(r"[^a-z0-9]+")
_NOT_PLAIN = re.compile(r"[|:,=]")
_SERIES_FOOTER = re.compile(r"Name: (\w+), dtype: int")
_NUMBER_LINES = re.compile(rf"(?:{NUMBER.pattern})(?:\n(?:{NUMBER.pattern}))*+")
#: what ends a line of ASCII text for ``str.splitlines``, besides a newline
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e"
#: each count word with the space that ends it, found in a whole text by one scan in C: the
#: leftmost-longest match at a word's start is the whole word where any pattern is, and
#: patterns that do not start with a space let the automaton skip ahead (a prefilter), three
#: times quicker than a search for each word between two spaces; a match not at a word's
#: start is then dropped
#:
#: The same scan finds a series footer's ``Name`` (anywhere: no count word's match ends in
#: it, and a match ends at the first character that is not a letter, so none hides another),
#: and the words a regression summary's labels end in (:data:`REGRESSION_WORDS`), so that
#: a text is not searched again for each.
REGRESSION_WORDS = frozenset({"observations", "residuals"})
_FOOTER_WORD = "name"
#: the count word ``n`` is searched apart, as a whole word (below): as the start of every
#: word that ends in an ``n``, it made the scan for the others four times slower and its
#: matches, all but a few to be dropped, three times as many
_SEARCHED = sorted((_COUNT_WORDS - {"n"}) | REGRESSION_WORDS | {_FOOTER_WORD})
#: in :func:`~atoll.disclosure.runs.word_marks`, where figures are ``0``: each word ended
#: by a space or a figure, patterns ``2 * i`` and ``2 * i + 1`` for word ``i``
_COUNT_SEARCH = ahocorasick_rs.BytesAhoCorasick(
    [f"{w}{end}".encode() for w in _SEARCHED for end in " 0"],
    matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
)
#: ``n`` between two of a space or a figure, in the same marks: a match at ``at`` is the
#: word at ``at`` of the text (overlapping matches: neighbours share what parts them)
_N_SEARCH = ahocorasick_rs.BytesAhoCorasick([b" n ", b" n0", b"0n ", b"0n0"])
_FOUND_WORD = [w for w in _SEARCHED for _ in " 0"]
_IS_COUNT = [w in _COUNT_WORDS for w in _FOUND_WORD]
_IS_REGRESSION = [w in REGRESSION_WORDS for w in _FOUND_WORD]
#: what a word's start follows in its marks: a space or a figure
_WORD_BEFORE = b" 0"
#: a group of so many records at most is one or two people's (:func:`small_in_data`)
_FEW = 2
#: the fewest rows of a table whose counts are made up for it to be held for them
_MADE_UP = 3
#: the most positions one finding names; the rest are counted
_NAMED = 12


def _parts(name: str) -> list[str]:
    return [p for p in _PARTS.split(name.lower()) if p]


def is_count_name(name: str) -> bool:
    parts = _parts(name)
    return bool(parts) and (parts[0] in _COUNT_WORDS or parts[-1] in _COUNT_WORDS)


def stat_word(name: str) -> str | None:
    """The statistic a column's name says it holds, if any."""
    return next((p for p in _parts(name) if p in _STAT_WORDS), None)


def is_number(cell: str) -> bool:
    return bool(NUMBER.fullmatch(cell.strip()))


def all_numbers(cells: Sequence[str]) -> bool:
    """Whether every cell is a number (as :func:`is_number` reads it)."""
    return numbers(cells) is not None


#: what an ASCII number (as :data:`NUMBER` reads it) is written with, and the newline that
#: joins cells
_NUMBER_BYTES = b"0123456789.eE+-\n"


def numbers(cells: Sequence[str]) -> list[float] | None:
    """Every cell's value, where every cell is a number (as :func:`is_number` reads it);
    else None. Cells written only with digits, a point, signs and an exponent's ``e`` are
    numbers exactly where ``float`` reads them (its grammar is the pattern's on these
    characters), so they are read by one ``map`` in C; others are matched by one regular
    expression over the cells, stripped and joined by newlines, which no number holds."""
    stripped = list(map(str.strip, cells))
    joined = "\n".join(stripped)
    if joined.count("\n") != len(cells) - 1:
        return list(map(float, cells)) if all(map(is_number, cells)) else None
    if joined.isascii() and not joined.encode("ascii").translate(None, _NUMBER_BYTES):
        try:
            return list(map(float, stripped))
        except ValueError:
            return None
    if _NUMBER_LINES.fullmatch(joined) is None:
        return None
    return list(map(float, stripped))


#: the longest column name of a table a text prints as CSV
_LONGEST_NAME = 64


def _is_int(cell: str) -> bool:
    return is_number(cell) and float(cell).is_integer()


@dataclass
class Table:
    """Rows of cells under a header; ``places[i]`` names row ``i`` for a finding."""

    header: list[str]
    rows: list[list[str]]
    places: list[str]
    #: set by :func:`classify`
    counts: int | None = None
    stats: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    crosstab: bool = False

    _values: dict[int, list[float | None]] = field(default_factory=dict, repr=False, compare=False)
    #: the text's lines, row after row, where the rows are those lines split at the
    #: delimiter (:func:`plain_lines`)
    lines: list[str] | None = field(default=None, repr=False, compare=False)
    #: the columns with a number in every row (set by :func:`classify`)
    _full: set[int] = field(default_factory=set, repr=False, compare=False)
    _keys: list[tuple[str, ...]] | None = field(default=None, repr=False, compare=False)
    _columns: list[tuple[str, ...]] | None = field(default=None, repr=False, compare=False)

    def cells(self, j: int) -> Sequence[str]:
        """Column ``j``'s cells, ``""`` where a row is too short to have one: a table whose
        rows are all as wide as its header (as a CSV's are) is turned into columns once, in
        C, and each column read from there."""
        if self._columns is None:
            width = len(self.header)
            even = all(len(r) >= width for r in self.rows)
            # rows wider than the header are cut to the narrowest: only the header's
            # columns are turned, the rest read row by row
            turned = list(zip(*self.rows, strict=False)) if even and self.rows else []
            self._columns = turned[:width]
        if j < len(self._columns):
            return self._columns[j]
        return [r[j] if j < len(r) else "" for r in self.rows]

    def column(self, j: int) -> list[str]:
        """Column ``j``'s cells, stripped, less the empty ones."""
        return list(filter(None, map(str.strip, self.cells(j))))

    def label_key(self, row: list[str]) -> tuple[str, ...]:
        return tuple(normal(row[j]) if j < len(row) else "" for j in self.labels)

    def row_keys(self) -> list[tuple[str, ...]]:
        """Every row's :meth:`label_key`, in order (computed once the labels are known; a
        label column's few values each spelled normal once)."""
        if self._keys is None:
            columns = []
            for j in self.labels:
                cells = self.cells(j)
                spelled = {c: normal(c) for c in set(cells)}
                columns.append(list(map(spelled.__getitem__, cells)))
            self._keys = list(zip(*columns, strict=True)) if columns else [()] * len(self.rows)
        return self._keys

    def values(self, j: int) -> list[float | None]:
        """Column ``j``'s cells as numbers, None where a cell holds none (parsed once: a
        column of numbers only by one match and one ``map``)."""
        if j not in self._values:
            cells = self.cells(j)
            read = numbers(cells) if cells else None
            if read is not None:
                self._values[j] = list[float | None](read)
            else:
                self._values[j] = [float(c) if is_number(c) else None for c in cells]
        return self._values[j]


def parse_delimited(text: str, delimiter: str) -> Table | None:
    """A CSV or TSV file as a table (its first row the header); None when it has no rows."""
    lines = plain_lines(text)
    if lines is not None:
        rows = [line.split(delimiter) if line else [] for line in lines]
    else:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    if len(rows) < 2:
        return None
    table = Table(rows[0], rows[1:], [f"row {i}" for i in range(2, len(rows) + 1)])
    table.lines = lines
    return table


def plain_lines(text: str) -> list[str] | None:
    """The lines of a delimited text whose rows are its lines split at the delimiter, as the
    ``csv`` module reads them (no quote, no carriage return, no NUL, no field over its size
    limit): split by two calls in C rather than read character by character; None for any
    other text."""
    if '"' in text or "\r" in text or "\x00" in text:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(text) > csv.field_size_limit() and max(map(len, lines)) > csv.field_size_limit():
        return None
    return lines


def markdown_tables(text: str) -> list[Table]:
    """Markdown pipe tables: a header line, a ``---`` line, rows."""
    tables: list[Table] = []
    if "|" not in text:
        return tables
    block: list[tuple[int, list[str]]] = []
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip().startswith("|"):
            block.append((number, [c.strip() for c in line.strip().strip("|").split("|")]))
            continue
        if len(block) >= 3 and all(set(c) <= set(":- ") for c in block[1][1]):
            rows = block[2:]
            tables.append(Table(block[0][1], [r for _, r in rows], [f"line {n}" for n, _ in rows]))
        block = []
    return tables


def printed_tables(
    text: str, words: set[str] | None = None, marks: bytes | None = None
) -> list[Table]:
    """Tables printed as aligned text, as a data frame or a grouped count prints: a header
    line naming a count column then lines of as many fields (or one more, the frame's
    index); or a series of ``label count`` lines closed by ``Name: count``. Aligned text with
    no count named is too often something else to be read as a table.

    Only the lines that could start a table (a header naming a count, a series footer) are
    looked at, found by substring searches over the whole text, so that a long log with no
    table costs a few scans in C rather than a Python step per line. ``words``, if given,
    gets those of :data:`REGRESSION_WORDS` that ``text`` holds as words (lower case), where
    ``text`` is ASCII; ``marks``, if given, are its
    :func:`~atoll.disclosure.runs.word_marks`."""
    offsets: dict[int, int] = {}
    starts = _table_starts(text, offsets, words, marks, headed=True)
    if starts == []:
        return []
    if starts is None or not offsets:
        lines: Sequence[str] = text.splitlines()
        return printed_tables_in(lines, starts) + delimited_tables_in(lines, starts)
    # only newlines end lines: the few lines a table is looked for in are cut out of the
    # text where asked, not the whole text split into a string per line
    lines = _Lines(text, offsets)
    return printed_tables_in(lines, _may_start(text, starts, offsets)) + delimited_tables_in(
        lines, starts
    )


def delimited_tables_in(lines: Sequence[str], starts: list[int] | None) -> list[Table]:
    """Tables a text prints as CSV (``print(df.to_csv())``, a count written out row by row;
    tab-separated ones are read as aligned text is, by :func:`printed_tables_in`), tried at
    the lines ``starts`` names (all of them where None): a header with a count column (named
    as one, and no more than a name) followed by rows of as many fields, the count a whole
    number in each. A line that only names a count among other words (a log's ``loaded 5000
    records, 8 columns``), or that holds a number, is no such header."""
    tables: list[Table] = []
    taken = -1
    for i in range(len(lines)) if starts is None else starts:
        if i <= taken:
            continue
        line = lines[i]
        # a header's fields are names of a word or two: a log's message, words parted by
        # spaces with a comma here and there, is passed over at once
        commas = line.count(",")
        if not commas or line.count(" ") > 2 * commas:
            continue
        fields = [f.strip() for f in line.split(",")]
        counted = [k for k, f in enumerate(fields) if column_key(f) in _COUNT_WORDS]
        if (
            len(fields) < 2
            or not counted
            or max(map(len, fields)) > _LONGEST_NAME
            or any(map(is_number, fields))  # a row, not a header
        ):
            continue
        rows, places = _rows_under(lines, i, _comma_fields, len(fields), counted[0])
        if rows:
            tables.append(Table(fields, rows, places))
            taken = i + len(rows)
    return tables


def _comma_fields(line: str) -> list[str]:
    return line.split(",")


def _rows_under(
    lines: Sequence[str], header: int, fields: Callable[[str], list[str]], width: int, count: int
) -> tuple[list[list[str]], list[str]]:
    """The rows under line ``header`` of ``lines`` (each split into its ``fields``) and
    their places: those as wide as the header, with a whole number for their count (in
    field ``count``), up to the first that is not."""
    rows: list[list[str]] = []
    places: list[str] = []
    for j in range(header + 1, len(lines)):
        row = fields(lines[j])
        if len(row) != width or not _is_int(row[count]):
            break
        rows.append(row)
        places.append(f"line {j + 1}")
    return rows, places


def _may_start(text: str, starts: list[int], offsets: dict[int, int]) -> list[int]:
    """Those of ``starts`` (lines of ``text``, each starting at ``offsets[line]``) that a
    table can start or end at: a plain line (a header is one) or a series footer. A line
    that names a count beside a comma or a colon, as a log's messages do, is neither, and
    :func:`printed_tables_in` would find nothing there: such lines are dropped at once, by
    a few calls in C, not each tried by a step in Python."""
    lines = _cut(text, list(map(offsets.__getitem__, starts)))
    return list(itertools.compress(starts, _plain_or_footer(lines)))


def _plain_or_footer(lines: list[str]) -> Iterator[bool]:
    """Whether each of ``lines`` is plain (no ``|:,=``, as a header of aligned names is) or
    a series footer, told for every line at once, in C."""
    plain = map(operator.not_, map(_NOT_PLAIN.search, lines))
    footer = map(str.startswith, lines, repeat("Name: "))
    return map(operator.or_, plain, footer)


class _Lines(Sequence[str]):
    """``text.splitlines()`` of an ASCII text whose lines end only in ``\n``, each line read
    from the text when asked: near a line asked before, by one search in C."""

    def __init__(self, text: str, starts: dict[int, int]) -> None:
        self._text = text
        #: where each line known so far starts: the first, those given, those asked
        self._starts = {0: 0, **starts}
        # the lines from the last one known on: its newlines, counted in C
        last = max(self._starts)
        after = self._starts[last]
        more = 0 if text.endswith("\n") or after >= len(text) else 1
        self._count = last + text.count("\n", after) + more

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, k: int) -> str: ...

    @overload
    def __getitem__(self, k: slice) -> list[str]: ...

    def __getitem__(self, k: int | slice) -> str | list[str]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._count))]
        if k < 0:
            k += self._count
        if not 0 <= k < self._count:
            raise IndexError(k)
        start = self._start(k)
        end = self._text.find("\n", start)
        return self._text[start : len(self._text) if end < 0 else end]

    def _start(self, k: int) -> int:
        starts, text = self._starts, self._text
        at = starts.get(k)
        if at is not None:
            return at
        if k + 1 in starts:
            # the line before one known: back to the newline before it
            at = text.rfind("\n", 0, starts[k + 1] - 1) + 1
        else:
            # past the newlines after the nearest line known before it (the next one, where
            # a table's rows are read down from its header)
            below = max(n for n in starts if n < k)
            at = starts[below]
            for _ in range(k - below):
                at = text.index("\n", at) + 1
        starts[k] = at
        return at


def _table_starts(
    text: str,
    offsets: dict[int, int] | None = None,
    words: set[str] | None = None,
    marks: bytes | None = None,
    headed: bool = False,
) -> list[int] | None:
    """The indexes (in ``text.splitlines()``) of the lines that name a count as a word or
    hold a series footer: the only lines a printed table can start or end at. None where
    the text is not ASCII, whose lines are then all looked at. Where only newlines end
    lines, ``offsets`` (if given) is filled with where in ``text`` each of them starts,
    and, with ``headed``, only the lines that can head a table (:func:`_may_head`) are
    kept: a long log whose messages name counts costs no line count for them. ``words``
    (if given) gets the :data:`REGRESSION_WORDS` the text holds. ``marks``, if given, is
    the text's :func:`~atoll.disclosure.runs.word_marks` (made once for the other checks
    that read them)."""
    if not text.isascii():
        return None
    # a count's name is a run of letters: with every other character a space or a ``0``,
    # one scan finds them all; a match at ``at`` of the padded text is a word at ``at - 1``
    # of the text
    padded = word_marks(text.encode("ascii")) if marks is None else marks
    hits = []
    for found, at, _ in _COUNT_SEARCH.find_matches_as_indexes(padded):
        if _FOUND_WORD[found] == _FOOTER_WORD:
            # ``Name: `` as written, wherever it is
            if text.startswith("Name: ", at - 1):
                hits.append(at - 1)
        elif padded[at - 1] in _WORD_BEFORE:
            if _IS_COUNT[found]:
                hits.append(at - 1)
            if words is not None and _IS_REGRESSION[found]:
                words.add(_FOUND_WORD[found])
    hits += (at for _, at, _ in _N_SEARCH.find_matches_as_indexes(padded, overlapping=True))
    if not hits:
        return []
    hits.sort()
    if any(c in text for c in _OTHER_BREAKS):
        ends = list(itertools.accumulate(map(len, text.splitlines(keepends=True))))
        return sorted({bisect.bisect_right(ends, at) for at in hits})
    # only newlines end lines: each hit stands for the line it is on, from its start (hits
    # on one line find its start alike)
    begins = list(dict.fromkeys(map((1).__add__, map(text.rfind, repeat("\n"), repeat(0), hits))))
    if headed:
        begins = list(itertools.compress(begins, _may_head(_cut(text, begins))))
        if not begins:
            return []
    # a line's index is the newlines before it, counted between one line and the next (in
    # C, for every line at once)
    between = map(text.count, repeat("\n"), [0, *begins[:-1]], begins)
    lines = list(itertools.accumulate(between))
    if offsets is not None:
        offsets.update(zip(lines, begins, strict=True))
    return lines


def _cut(text: str, begins: list[int]) -> list[str]:
    """The lines of ``text`` (ended only by newlines) that start at ``begins``."""
    ends = list(map(text.find, repeat("\n"), begins))
    if ends and ends[-1] < 0:
        # only the last line can have no newline after it
        ends[-1] = len(text)
    return list(map(text.__getitem__, map(slice, begins, ends)))


def _may_head(lines: list[str]) -> Iterator[bool]:
    """Whether each of ``lines`` (each naming a count) can start or end a table, as
    :func:`printed_tables_in` or :func:`delimited_tables_in` reads one: a plain line, a
    series footer, or a line of comma-parted names (no more spaces than two a comma). A
    log's message that names a count beside other words and a comma or a colon is none
    of them. Told for every line at once, in C."""
    commas = list(map(str.count, lines, repeat(",")))
    spaces = map(str.count, lines, repeat(" "))
    named = map(
        operator.and_, map(bool, commas), map(operator.le, spaces, map((2).__mul__, commas))
    )
    return map(operator.or_, _plain_or_footer(lines), named)


def printed_tables_in(lines: Sequence[str], starts: list[int] | None) -> list[Table]:
    """:func:`printed_tables` of ``lines``, trying only the lines ``starts`` names (all of
    them where None)."""
    tables: list[Table] = []
    candidates = iter(range(len(lines)) if starts is None else starts)
    i = next(candidates, len(lines))
    while i < len(lines):
        # a header is plain: no |, :, = or comma
        header = [] if _NOT_PLAIN.search(lines[i]) else lines[i].split()
        counted = [k for k, h in enumerate(header) if is_count_name(h)]
        if len(header) >= 2 and counted:
            width = len(header)

            def aligned(line: str, width: int = width) -> list[str]:
                # a data frame's rows lead with its index, one field more than its header
                fields = line.split()
                return fields[1:] if len(fields) == width + 1 else fields

            rows, places = _rows_under(lines, i, aligned, width, counted[0])
            if rows:
                tables.append(Table(header, rows, places))
                # the lines the table took are not looked at again
                j = i + 1 + len(rows)
                while i < j:
                    i = next(candidates, len(lines))
                continue
        footer = _SERIES_FOOTER.match(lines[i])
        if footer and is_count_name(footer.group(1)):
            start = i
            while start > 0 and len(lines[start - 1].split()) == 2:
                start -= 1
            if start < i:
                rows = [lines[k].split() for k in range(start, i)]
                places = [f"line {k + 1}" for k in range(start, i)]
                tables.append(Table(["label", "count"], rows, places))
        i = next(candidates, len(lines))
    return tables


def json_tables(data: Any) -> list[Table]:
    """Lists of records (objects with the same keys), and single objects that carry a count
    beside statistics, found anywhere in a JSON document."""
    tables: list[Table] = []

    def scalar(v: Any) -> str:
        return json.dumps(v) if not isinstance(v, str) else v

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list) and node and all(isinstance(r, dict) for r in node):
            keys = list(node[0])
            if all(list(r) == keys for r in node) and all(
                not isinstance(v, dict | list) for r in node for v in r.values()
            ):
                rows = [[scalar(r[k]) for k in keys] for r in node]
                places = [f"{path}record {i}" for i in range(1, len(node) + 1)]
                tables.append(Table(keys, rows, places))
                return
        if isinstance(node, dict):
            flat = {k: v for k, v in node.items() if isinstance(v, int | float | str)}
            if any(is_count_name(k) for k in flat) and len(flat) == len(node):
                tables.append(
                    Table(list(flat), [[scalar(v) for v in flat.values()]], [f"{path}object"])
                )
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            for i, child in enumerate(children, start=1):
                walk(child, f"{path}item {i}, ")

    walk(data, "")
    return tables


def classify(table: Table, input_numeric: set[str]) -> Table:
    """Find the count, statistic and label columns. ``input_numeric``: the names (lower case)
    of the inputs' numeric columns, which an output column of the same name summarises.

    Labels are the non-numeric columns, and the whole-number columns that lead the table
    before its values (``year, income``); a table of labels and whole numbers only, with no
    count or statistic named, is a cross tabulation: every number in it is a count.
    """
    width = len(table.header)
    names = [column_key(h) for h in table.header]
    columns = [table.column(j) for j in range(width)]
    parsed = [numbers(column) if column else None for column in columns]
    numeric = [values is not None for values in parsed]
    read = {j: values for j, values in enumerate(parsed) if values is not None}
    for j, values in read.items():
        if len(values) == len(table.rows):
            # a number in every row: the column's values, as :meth:`Table.values` reads
            # them (``float`` reads a cell as it reads it stripped), read once for all;
            # and no statistic there is missing
            table._values.setdefault(j, list[float | None](values))
            table._full.add(j)
    integer = [numeric[j] and all(map(float.is_integer, read[j])) for j in range(width)]
    for j, name in enumerate(names):
        if table.counts is None and integer[j] and is_count_name(name):
            table.counts = j
        elif numeric[j] and stat_word(name):
            table.stats.append(j)
    if (
        table.counts is None
        and not table.stats
        and width >= 2
        and not numeric[0]
        and all(integer[j] or not numeric[j] for j in range(width))
        and any(integer)
        and not any(integer[j] and names[j] in input_numeric for j in range(width))
    ):
        table.crosstab = True
        table.labels = [j for j in range(width) if not numeric[j]]
        return table
    if _variables_matrix(table, names, numeric):
        # a correlation or covariance matrix: its figures are of the whole data, no group's
        table.labels = [0]
        table.stats = []
        return table
    leading = True
    for j, name in enumerate(names):
        if j == table.counts or j in table.stats:
            leading = False
            continue
        if not numeric[j] or (leading and integer[j] and j < width - 1):
            table.labels.append(j)
            continue
        leading = False
        if name in input_numeric:
            table.stats.append(j)
    table.stats.sort()
    return table


def _variables_matrix(table: Table, names: list[str], numeric: list[bool]) -> bool:
    """Whether a table is a square matrix of variables (a correlation or covariance matrix):
    its rows are named, in its first column, as its other columns are, each a number."""
    others = names[1:]
    return (
        len(others) >= 2
        and not numeric[0]
        and all(numeric[1:])
        and table.counts is None
        and len(table.rows) == len(others)
        and sorted(map(column_key, table.cells(0))) == sorted(others)
    )


def column_key(name: str) -> str:
    """A column's name as output and input names are matched: lower case, ``_``-joined."""
    return "_".join(_parts(name))


def summarised(name: str) -> str:
    """The input column a statistic column summarises: its name less the statistic's word
    (``mean_income``, ``income_sum`` and ``income`` all summarise ``income``)."""
    return "_".join(p for p in _parts(name) if p not in _STAT_WORDS and p not in _COUNT_WORDS)


@dataclass
class Groups:
    """What the inputs say of a table's groups: each group's size, and for each sum-like
    statistic column the group's largest contributions and total (absolute values)."""

    sizes: dict[tuple[str, ...], int] = field(default_factory=dict)
    top: dict[int, dict[tuple[str, ...], list[float]]] = field(default_factory=dict)
    totals: dict[int, dict[tuple[str, ...], float]] = field(default_factory=dict)


def _cells(places: list[str], more: int = 0) -> str:
    shown = ", ".join(places[:_NAMED])
    rest = len(places) - _NAMED + more
    return shown + (f" and {rest} more" if rest > 0 else "")


def small_cells(table: Table, threshold: int) -> list[Finding]:
    """Counts above zero and under the threshold."""
    columns = (
        [j for j in range(len(table.header)) if j not in table.labels]
        if table.crosstab
        else [table.counts]
        if table.counts is not None
        else []
    )
    found = sorted(
        (i, j)
        for j in columns
        for i, v in enumerate(table.values(j))
        if v is not None and 0 < v < threshold
    )
    if not found:
        return []
    # only the cells a finding names are spelled out; the rest are counted
    small = [f"{table.places[i]} column {j + 1}" for i, j in found[:_NAMED]]
    return [
        Finding(
            check="small_cells",
            detail=f"{len(found)} counts under {threshold}: "
            f"{_cells(small, len(found) - len(small))}",
        )
    ]


def small_in_data(table: Table, threshold: int, groups: Groups | None) -> list[Finding]:
    """A table of records dressed as an aggregate: most of its rows (three at least) state
    a count at or over the threshold of a group the inputs hold only one or two records of,
    by two columns or more (a record's values together). A count is what the job writes;
    one made up beside a record's values does not make the row a group's. (A group the
    inputs do not show, such as a band of ages, is taken at its word, and so is a count a
    little over what they hold, or of groups by one column: a job may count more than one
    input, or rows it made.)"""
    if table.counts is None or groups is None or not groups.sizes or len(table.labels) < 2:
        return []
    stated = table.values(table.counts)
    sizes = list(map(groups.sizes.get, table.row_keys(), itertools.repeat(0)))
    rows = [
        i
        for i, (said, size) in enumerate(zip(stated, sizes, strict=True))
        if said is not None and said >= threshold and 0 < size <= _FEW
    ]
    if len(rows) < _MADE_UP or 2 * len(rows) < len(table.rows):
        return []
    small = [f"{table.places[i]} column {table.counts + 1}" for i in rows[:_NAMED]]
    return [
        Finding(
            check="small_cells",
            detail=f"{len(rows)} counts of {threshold} or more of groups the inputs hold one "
            f"or two records of: {_cells(small, len(rows) - len(small))}",
        )
    ]


def small_groups(table: Table, threshold: int, groups: Groups | None) -> list[Finding]:
    """Statistics over groups smaller than the threshold, or over groups of unknown size."""
    if not table.stats:
        return []
    stat_columns = ", ".join(str(j + 1) for j in table.stats)
    if table.counts is None and groups is None:
        return [
            Finding(
                check="small_group",
                detail=f"statistics in columns {stat_columns} with no count column, over "
                "groups the inputs do not show: their sizes are unknown",
            )
        ]
    if all(map(table._full.__contains__, table.stats)):
        valued = [True] * len(table.rows)
    else:
        stats = [table.values(j) for j in table.stats]
        valued = [any(v is not None for v in cells) for cells in zip(*stats, strict=True)]
    if table.counts is not None:
        sizes = [v or 0.0 for v in table.values(table.counts)]
    else:
        assert groups is not None
        keys = table.row_keys()
        sizes = list(map(groups.sizes.get, keys, itertools.repeat(0)))
    # the rows with a statistic over a small group, picked out in C: a table can be long
    under = map(operator.gt, itertools.repeat(threshold), sizes)
    picked = itertools.compress(range(len(sizes)), map(operator.and_, valued, under))
    rows = list(picked)
    if not rows:
        return []
    small = [f"{table.places[i]} (a group of {int(sizes[i])})" for i in rows[:_NAMED]]
    return [
        Finding(
            check="small_group",
            detail=f"statistics in columns {stat_columns} over groups under {threshold}: "
            + _cells(small, len(rows) - len(small)),
        )
    ]


def dominance(table: Table, n: int, k: float, groups: Groups | None) -> list[Finding]:
    """Sum-like statistics whose ``n`` largest contributions make ``k`` of the total."""
    if groups is None:
        return []
    found = []
    keys = table.row_keys()
    for j, tops in groups.top.items():
        # per row, in C: its group's total and the sum of its n largest contributions
        totals = list(map(groups.totals[j].get, keys, itertools.repeat(0.0)))
        largest = map(tops.get, keys, itertools.repeat(()))
        top_sums = map(sum, map(operator.getitem, largest, itertools.repeat(slice(0, n))))
        shares = map(operator.ge, top_sums, map(operator.mul, itertools.repeat(k), totals))
        valued: Iterable[bool] = (
            itertools.repeat(True)
            if j in table._full
            else map(operator.is_not, table.values(j), itertools.repeat(None))
        )
        positive = map(operator.lt, itertools.repeat(0.0), totals)
        kept = map(operator.and_, map(operator.and_, valued, positive), shares)
        found += [(i, j) for i in itertools.compress(range(len(keys)), kept)]
    if not found:
        return []
    dominated = [f"{table.places[i]} column {j + 1}" for i, j in found[:_NAMED]]
    return [
        Finding(
            check="dominance",
            detail=f"{len(found)} cells where {n} records make {k:.0%} or more of the "
            f"total: {_cells(dominated, len(found) - len(dominated))}",
        )
    ]


def sum_like(table: Table, j: int) -> bool:
    """A statistic column dominance applies to: a sum, total or mean, or one named only for
    the input column it summarises."""
    word = stat_word(table.header[j])
    return word is None or word in _SUMLIKE
