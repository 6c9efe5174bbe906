"""Bytes or characters written down a table's column, one a row: a plot's points or a CSV of
``index,value`` rows carry a file out a value at a time as surely as a list on one line
(:mod:`.bytelists`), but each line holds one value only, and no line read alone spells
anything. Each column is read from top to bottom: its runs of byte values (decimal, as a
list on one line is read) and of single characters are joined into the text they spell,
which the echo check then compares with the inputs; byte values that are compressed data
are held. (Not those that merely spell text, as a list on one line is: a long grouped
table's counts, each between 32 and 126, spell text too.)"""

from __future__ import annotations

from typing import NamedTuple

from atoll.disclosure.bytelists import SHORTEST, decimal_value, present_runs
from atoll.disclosure.tables import Table

#: the fewest different characters of a column's run of single characters that is read
#: (a column of ``F`` and ``M`` spells nothing)
CHARACTER_KINDS = 8


class ColumnText(NamedTuple):
    """What a run down one column spells: the column (from 1), the run's first row (an
    index into the table's rows), how it is written (``decimal`` byte values or single
    ``characters``) and the bytes."""

    column: int
    row: int
    notation: str
    data: bytes


def column_texts(table: Table) -> list[ColumnText]:
    """Every run of :data:`~atoll.disclosure.bytelists.SHORTEST` rows or more down a column
    of ``table`` whose cells are each a decimal byte value, or each one character (of
    :data:`CHARACTER_KINDS` kinds or more)."""
    found: list[ColumnText] = []
    if len(table.rows) < SHORTEST:
        return found
    for j in range(len(table.header)):
        cells = table.cells(j)
        # most columns are neither, told from every so many cells: a run of SHORTEST has
        # two of them at least
        sample = cells[:: SHORTEST // 2]
        if sum(map(str.isdigit, map(str.strip, sample))) >= 2:
            values = list(map(decimal_value, map(str.strip, cells)))
            for begin, end in present_runs(values):
                data = bytes(values[begin:end])  # type: ignore[arg-type]
                found.append(ColumnText(j + 1, begin, "decimal", data))
        if list(map(len, sample)).count(1) < 2:
            continue
        # a space is a character of its own here: the words it parts are spelled too
        characters = [c if len(c) == 1 else None for c in cells]
        for begin, end in present_runs(characters):
            run = characters[begin:end]
            if len(set(run)) >= CHARACTER_KINDS:
                text = "".join(run).encode("utf-8")  # type: ignore[arg-type]
                found.append(ColumnText(j + 1, begin, "characters", text))
    return found
