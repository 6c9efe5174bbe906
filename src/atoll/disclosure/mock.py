"""Mock data: a schema inferred from a real CSV file, and synthetic rows drawn from it.

The schema is what a publisher sees, approves and offers, so it must not disclose either: a
category (or a whole number of a small set) seen fewer than ``threshold`` times is left out,
ranges are rounded outward so that neither end is a real (one person's) value, and a null rate
of fewer than ``threshold`` rows reads as none.

The rows cannot reproduce a real one: numbers carry one more decimal than any real value and
free text is synthetic. Given the real file (:func:`generate_mock`'s ``real``, whenever it is
at hand), every drawn row is also compared with the real rows, and a row that matches one, or
holds a column's minimum or maximum shared by fewer than ``threshold`` real rows, is drawn
again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

ColumnType = Literal["integer", "number", "text", "category", "date", "boolean"]

#: a text column with more distinct values than this is free text, not categories
MAX_CATEGORIES = 50
#: a whole-number column with at most this many distinct values is drawn from its values
MAX_LEVELS = 20
#: tries to draw a row unlike every real one before giving up
ROUNDS = 20
_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}
_NULLS = {"", "na", "n/a", "null", "none", "nan"}


class MockColumn(BaseModel):
    """One column as the mock data reproduces it."""

    name: str
    type: ColumnType
    #: rounded outward, never a real value: numbers, or ISO dates for a date column
    low: float | str | None = None
    high: float | str | None = None
    #: number columns: the decimals the generated values carry (one more than the real ones)
    decimals: int = 0
    #: category columns, and whole-number columns of a few levels: only the values seen at
    #: least ``threshold`` times
    categories: list[str] = Field(default_factory=list)
    #: free text columns: generated values start with it; no real value does
    prefix: str = ""
    nullRate: float = 0.0


class MockSchema(BaseModel):
    """What mock data is generated from; shown to the publisher before it is offered."""

    columns: list[MockColumn]
    threshold: int


def _is_null(value: str) -> bool:
    return value.strip().lower() in _NULLS


def _as_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _as_decimal(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _as_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


class _Extremes:
    """A column's least and greatest value, and how many records hold each."""

    def __init__(self) -> None:
        self.low: Any = None
        self.high: Any = None
        self.at_low = self.at_high = 0

    def add(self, value: Any) -> None:
        if self.low is None or value < self.low:
            self.low, self.at_low = value, 0
        if self.high is None or value > self.high:
            self.high, self.at_high = value, 0
        self.at_low += value == self.low
        self.at_high += value == self.high

    def rare(self, threshold: int) -> set[Any]:
        """The extremes fewer than ``threshold`` records hold: one person's values."""
        rare = set()
        if self.low is not None and self.at_low < threshold:
            rare.add(self.low)
        if self.high is not None and self.at_high < threshold:
            rare.add(self.high)
        return rare


class _Column:
    """What one pass over the real file learns of a column, in bounded memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nulls = 0
        self.seen = 0
        self.ints = self.numbers = self.dates = self.bools = True
        self.values = _Extremes()
        self.days = _Extremes()
        self.decimals = 0
        #: None once the column has too many distinct values to be categories
        self.counts: Counter[str] | None = Counter()
        #: real values that a synthetic prefix could run into
        self.mockish: set[str] = set()

    def add(self, value: str) -> None:
        self.seen += 1
        if _is_null(value):
            self.nulls += 1
            return
        value = value.strip()
        if value.lower().startswith("mock") and len(self.mockish) < 4096:
            self.mockish.add(value.lower()[:12])
        if self.counts is not None:
            self.counts[value] += 1
            if len(self.counts) > MAX_CATEGORIES * 20:
                self.counts = None
        self.bools = self.bools and value.lower() in _TRUE | _FALSE
        self.ints = self.ints and _as_int(value) is not None
        number = _as_decimal(value) if self.numbers else None
        self.numbers = number is not None
        if number is not None:
            self.values.add(number)
            exponent = number.as_tuple().exponent
            if isinstance(exponent, int):
                self.decimals = max(self.decimals, min(-exponent, 6))
        day = _as_date(value) if self.dates else None
        self.dates = day is not None
        if day is not None:
            self.days.add(day)

    def schema(self, threshold: int) -> MockColumn:
        present = self.seen - self.nulls
        null_rate = 0.0 if self.nulls < threshold else round(self.nulls / self.seen, 2)

        def column(type_: ColumnType, **extra: Any) -> MockColumn:
            return MockColumn(name=self.name, type=type_, nullRate=null_rate, **extra)

        common = sorted(v for v, n in (self.counts or {}).items() if n >= threshold)
        if present == 0:
            return column("text", prefix=self._prefix())
        if self.bools:
            return column("boolean")
        if self.numbers and self.values.low is not None:
            low, high = coarsen(float(self.values.low), float(self.values.high))
            if self.ints:
                levels = self.counts is not None and len(self.counts) <= MAX_LEVELS and common
                return column("integer", low=low, high=high, categories=common if levels else [])
            return column("number", low=low, high=high, decimals=self.decimals + 1)
        if self.dates and self.days.low is not None:
            first, last = coarsen_dates(self.days.low, self.days.high)
            return column("date", low=first.isoformat(), high=last.isoformat())
        if self.counts is not None and len(self.counts) <= MAX_CATEGORIES and common:
            return column("category", categories=common)
        return column("text", prefix=self._prefix())

    def _prefix(self) -> str:
        for n in range(len(self.mockish) + 1):
            prefix = f"mock{n}-" if n else "mock-"
            if not any(v.startswith(prefix) or prefix.startswith(v) for v in self.mockish):
                return prefix
        raise AssertionError("unreachable: one of n + 1 prefixes is free")


def coarsen(low: float, high: float) -> tuple[float, float]:
    """``low`` and ``high`` rounded outward to a step of the range's order of magnitude,
    and a step further where a bound already sat on one."""
    span = max(high - low, abs(high), abs(low), 1.0)
    step = 10.0 ** math.floor(math.log10(span))
    out_low = math.floor(low / step) * step
    out_high = math.ceil(high / step) * step
    if out_low == low:
        out_low -= step
    if out_high == high:
        out_high += step
    return out_low, out_high


def coarsen_dates(first: date, last: date) -> tuple[date, date]:
    """The start of ``first``'s year and the end of ``last``'s, a year further where a bound
    already was one."""
    low = date(first.year, 1, 1)
    high = date(last.year, 12, 31)
    if low == first:
        low = date(first.year - 1, 1, 1)
    if high == last:
        high = date(last.year + 1, 12, 31)
    return low, high


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        yield from csv.reader(f)


def infer_schema(csv_path: Path, threshold: int = 10) -> MockSchema:
    """One streaming pass over ``csv_path`` (with a header row)."""
    rows = _rows(csv_path)
    header = next(rows, [])
    columns = [_Column(name) for name in header]
    for row in rows:
        for column, value in zip(columns, row, strict=False):
            column.add(value)
    return MockSchema(columns=[c.schema(threshold) for c in columns], threshold=threshold)


def _value(column: MockColumn, rng: random.Random) -> str:
    if column.nullRate and rng.random() < column.nullRate:
        return ""
    if column.categories:
        return rng.choice(column.categories)
    if column.type == "boolean":
        return rng.choice(["true", "false"])
    if column.type == "integer":
        return str(rng.randint(math.ceil(float(column.low or 0)), int(column.high or 0)))
    if column.type == "number":
        low, high = float(column.low or 0), float(column.high or 0)
        text = f"{rng.uniform(low, high):.{column.decimals}f}"
        # a last digit of zero would make the value one a real one could be
        return text[:-1] + str(rng.randint(1, 9)) if column.decimals else text
    if column.type == "date":
        first, last = date.fromisoformat(str(column.low)), date.fromisoformat(str(column.high))
        return (first + timedelta(days=rng.randint(0, (last - first).days))).isoformat()
    return f"{column.prefix}{rng.getrandbits(32):08x}"


def _normal(value: str) -> str:
    number = _as_decimal(value)
    return str(number.normalize()) if number is not None else value.strip().lower()


def _key(values: Iterable[str]) -> bytes:
    """A row's values as compared with real ones: trimmed, numbers in one spelling."""
    return hashlib.sha256("\x1f".join(map(_normal, values)).encode()).digest()


def _rare_extremes(real: Path, threshold: int) -> list[set[str]]:
    """Per column, the spellings of its rare minimum and maximum (number or date)."""
    rows = _rows(real)
    header = next(rows, [])
    numbers = [_Extremes() for _ in header]
    days = [_Extremes() for _ in header]
    for row in rows:
        for j, value in enumerate(row[: len(header)]):
            if (number := _as_decimal(value)) is not None:
                numbers[j].add(number)
            elif (day := _as_date(value)) is not None:
                days[j].add(day)
    return [
        {_normal(str(v)) for v in n.rare(threshold)} | {d.isoformat() for d in t.rare(threshold)}
        for n, t in zip(numbers, days, strict=True)
    ]


def generate_mock(
    schema: MockSchema, rows: int = 100, seed: int = 0, real: Path | None = None
) -> str:
    """``rows`` rows of CSV text, header first. With ``real`` (the file the schema came from),
    a row that reproduces a real one, or holds a rare real extreme, is drawn again."""
    rng = random.Random(seed)
    drawn = [[_value(c, rng) for c in schema.columns] for _ in range(rows)]
    if real is not None:
        extremes = _rare_extremes(real, schema.threshold)

        def extreme(row: list[str]) -> bool:
            return any(_normal(v) in rare for v, rare in zip(row, extremes, strict=False))

        for _ in range(ROUNDS):
            for _ in range(100 * ROUNDS):
                bad = [i for i, row in enumerate(drawn) if extreme(row)]
                if not bad:
                    break
                for i in bad:
                    drawn[i] = [_value(c, rng) for c in schema.columns]
            mock = {_key(row): i for i, row in enumerate(drawn)}
            clashes = {mock[k] for row in _rows(real) if (k := _key(row)) in mock}
            if not clashes:
                break
            for i in clashes:
                drawn[i] = [_value(c, rng) for c in schema.columns]
        else:
            raise ValueError("every row this schema allows is a real one: mock data not drawn")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in schema.columns])
    writer.writerows(drawn)
    return out.getvalue()
