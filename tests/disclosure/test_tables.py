"""Tables: columns told apart, and the small cell, small group and dominance rules."""

from __future__ import annotations

import json

from atoll.disclosure.tables import (
    Groups,
    Table,
    all_numbers,
    classify,
    delimited_tables_in,
    dominance,
    is_count_name,
    is_number,
    json_tables,
    markdown_tables,
    parse_delimited,
    printed_tables,
    printed_tables_in,
    small_cells,
    small_groups,
    small_in_data,
    stat_word,
    summarised,
)
from tests.disclosure.texts import texts


def _table(text: str, numeric: set[str] = frozenset()) -> Table:  # type: ignore[assignment]
    table = parse_delimited(text, ",")
    assert table is not None
    return classify(table, set(numeric))


def test_names_of_counts_and_statistics() -> None:
    assert is_count_name("n") and is_count_name("patient_count") and is_count_name("Freq")
    assert not is_count_name("income")
    assert stat_word("mean_income") == "mean" and stat_word("Income (SD)") == "sd"
    assert summarised("income_sum") == summarised("mean_income") == "income"


def test_columns_are_told_apart() -> None:
    table = _table("region,year,n,mean_income,max_age\nnorth,2020,120,5.5,80\n")
    assert (table.labels, table.counts, table.stats) == ([0, 1], 2, [3, 4])
    summed = _table("region,income\nnorth,512345\n", {"income"})
    assert (summed.labels, summed.stats) == ([0], [1])
    assert _table("region,F,M\nnorth,3,40\n").crosstab


def test_small_cells_name_their_rows_and_columns() -> None:
    table = _table("sex,count\nF,12\nM,4\nX,0\n")
    (finding,) = small_cells(table, 10)
    assert finding.detail == "1 counts under 10: row 3 column 2"


def test_large_counts_pass() -> None:
    assert small_cells(_table("sex,count\nF,12\nM,40\n"), 10) == []


def test_statistics_of_small_groups_by_their_count_column() -> None:
    table = _table("group,n,mean\na,50,3.5\nb,1,7\nc,3,\n")
    (finding,) = small_groups(table, 10, None)
    # the suppressed statistic of group c is no disclosure
    assert finding.detail == "statistics in columns 3 over groups under 10: row 3 (a group of 1)"


def test_statistics_of_small_groups_by_the_inputs_counts() -> None:
    table = _table("region,mean_age\nnorth,40.5\nsouth,31\n")
    groups = Groups(sizes={("north",): 150, ("south",): 2})
    (finding,) = small_groups(table, 10, groups)
    assert finding.detail.endswith("row 3 (a group of 2)")


def test_statistics_over_groups_of_unknown_size_are_held() -> None:
    (finding,) = small_groups(_table("band,mean_age\nyoung,30.5\n"), 10, None)
    assert "sizes are unknown" in finding.detail


def test_dominance_holds_a_total_two_people_make() -> None:
    table = _table("region,sum_income\nnorth,182000\nsouth,90000\n")
    groups = Groups(
        sizes={("north",): 22, ("south",): 30},
        top={1: {("north",): [90000.0, 90000.0], ("south",): [5000.0, 4000.0]}},
        totals={1: {("north",): 182000.0, ("south",): 90000.0}},
    )
    (finding,) = dominance(table, 2, 0.9, groups)
    assert finding.detail == "1 cells where 2 records make 90% or more of the total: row 2 column 2"


def _small_groups_one_by_one(table: Table, threshold: int, groups: Groups | None) -> list[str]:
    """The small group rule as stated, row after row."""
    stats = [table.values(j) for j in table.stats]
    found = []
    for i, place in enumerate(table.places):
        if all(column[i] is None for column in stats):
            continue
        if table.counts is not None:
            size = table.values(table.counts)[i] or 0.0
        else:
            assert groups is not None
            size = groups.sizes.get(table.row_keys()[i], 0)
        if size < threshold:
            found.append(f"{place} (a group of {int(size)})")
    return found


def _dominated_one_by_one(table: Table, n: int, k: float, groups: Groups) -> list[str]:
    """The dominance rule as stated, cell after cell."""
    found = []
    for j, tops in groups.top.items():
        for i, key in enumerate(table.row_keys()):
            value, total = table.values(j)[i], groups.totals[j].get(key, 0.0)
            if value is not None and total > 0 and sum(tops.get(key, [])[:n]) >= k * total:
                found.append(f"{table.places[i]} column {j + 1}")
    return found


def test_small_groups_and_dominance_find_the_cells_their_rules_name_row_by_row() -> None:
    """Both rules, each applied to a whole table at once, hold the rows and cells that
    applying them to each row in turn holds: groups missing from the inputs, empty and
    non-numeric statistics, counts given as decimals, totals of zero."""
    import random

    rng = random.Random(5)
    seen_small = seen_dominated = 0
    for _ in range(300):
        labels = rng.sample(["north", "south", "east", "west", "x"], k=rng.randint(1, 5))
        counted = rng.random() < 0.5
        header = (
            ["region", "n", "mean_income", "sum_income"]
            if counted
            else ["region", "mean_income", "sum_income"]
        )
        lines = [",".join(header)]
        for label in labels:
            cells = [label]
            if counted:
                cells.append(rng.choice(["3", "12", "0", "9.0", "150", ""]))
            cells += [rng.choice(["", "40.5", "NA", "7", "1e3"]) for _ in range(2)]
            lines.append(",".join(cells))
        table = _table("\n".join(lines) + "\n", {"income"})
        n = rng.choice([1, 2, 3])
        sizes = {(label,): rng.choice([0, 2, 9, 10, 40]) for label in labels if rng.random() < 0.8}
        stat = len(header) - 1
        tops = {
            (label,): sorted(
                (rng.choice([0.0, 5.0, 90.0]) for _ in range(rng.randint(0, 3))), reverse=True
            )
            for label in labels
            if rng.random() < 0.8
        }
        totals = {key: rng.choice([0.0, sum(top), sum(top) + 50.0]) for key, top in tops.items()}
        groups = Groups(sizes=sizes, top={stat: tops}, totals={stat: totals})
        threshold = rng.choice([3, 10])
        expected = _small_groups_one_by_one(table, threshold, groups)
        found = small_groups(table, threshold, groups)
        if not table.stats:
            continue
        assert [f.detail.split(": ", 1)[1] for f in found] == (
            [", ".join(expected)] if expected else []
        ), lines
        k = rng.choice([0.9, 1])
        dominated = _dominated_one_by_one(table, n, k, groups)
        found = dominance(table, n, k, groups)
        assert [f.detail.split(": ", 1)[1] for f in found] == (
            [", ".join(dominated)] if dominated else []
        ), lines
        seen_small += bool(expected)
        seen_dominated += bool(dominated)
    assert seen_small > 20 and seen_dominated > 5


def test_markdown_and_json_tables_are_read() -> None:
    (md,) = markdown_tables("# Counts\n\n| sex | n |\n|---|--:|\n| F | 3 |\n| M | 40 |\n")
    assert md.places == ["line 5", "line 6"]
    assert small_cells(classify(md, set()), 10)[0].detail == "1 counts under 10: line 5 column 2"
    records, single = json_tables(
        json.loads('{"by_sex": [{"sex": "F", "n": 3}, {"sex": "M", "n": 40}], "all": {"n": 43}}')
    )
    assert records.places == ["item 1, record 1", "item 1, record 2"]
    assert single.header == ["n"]


def test_tables_printed_in_a_log_are_read() -> None:
    text = (
        "counts by region\n"
        "  region  sex  count\n0  north    F    120\n1  south    M      3\n\n"
        "region\nnorth    140\neast       4\nName: count, dtype: int64\n"
        "step 1 loss 0.5\nstep 2 loss 0.4\n"
    )
    frame, series = printed_tables(text)
    assert frame.header == ["region", "sex", "count"] and frame.places == ["line 3", "line 4"]
    assert small_cells(classify(frame, set()), 10)[0].detail == "1 counts under 10: line 4 column 3"
    assert (
        small_cells(classify(series, set()), 10)[0].detail == "1 counts under 10: line 8 column 2"
    )


def _every_line(text: str) -> list[Table]:
    """The tables :func:`printed_tables` finds, found by trying every line."""
    lines = text.splitlines()
    return printed_tables_in(lines, None) + delimited_tables_in(lines, None)


def test_tables_printed_as_csv_in_a_log_are_read() -> None:
    text = (
        "loaded 5000 records, 8 columns\nstep 1, 3\n"
        "by region\nregion,sex,count\nnorth,F,120\nsouth,M,3\ndone\n"
        "region\tn\neast\t4\n,count\n0,44\n"
    )
    tsv, csv_, indexed = printed_tables(text)
    assert csv_.header == ["region", "sex", "count"] and csv_.places == ["line 5", "line 6"]
    assert small_cells(classify(csv_, set()), 10)[0].detail == "1 counts under 10: line 6 column 3"
    assert small_cells(classify(tsv, set()), 10)[0].detail == "1 counts under 10: line 9 column 2"
    assert indexed.header == ["", "count"] and indexed.rows == [["0", "44"]]
    # a log's message that names a count among other words, and rows of figures, head none
    assert printed_tables("n, 4\n1, 2\n3, 4\n") == []


def test_only_the_lines_that_can_start_a_table_are_tried_and_nothing_is_missed() -> None:
    for text in texts(300):
        assert printed_tables(text) == _every_line(text), text


def test_a_column_is_all_numbers_as_each_of_its_cells_is() -> None:
    cells = ["1", "-2.5", ".5", "+3e4", "7.", "1\n2", "nan", "1,000", "\u0663", "", " 4 ", "x1"]
    for i in range(len(cells)):
        for j in range(i, len(cells) + 1):
            column = cells[i:j]
            assert all_numbers(column) == all(map(is_number, column)), column


def test_a_column_s_values_are_its_cells_read_one_by_one() -> None:
    cells = ["1", "-2.5", ".5", "+3e4", "7.", "1\n2", "nan", "1,000", "\u0663", "", " 4 ", "x1"]
    for i in range(len(cells)):
        for j in range(i, len(cells) + 1):
            rows = [[c, "x"] for c in cells[i:j]] + [["9"]]
            table = Table(["n", "label"], rows, [f"row {k}" for k in range(len(rows))])
            plain = [float(r[0]) if is_number(r[0]) else None for r in rows]
            assert table.values(0) == plain, rows
            assert table.values(1) == [None] * (len(rows) - 1) + [None], rows


def test_the_values_classify_reads_are_those_each_column_holds() -> None:
    """Classifying a table reads its whole-number columns' values once, for the checks that
    follow: they are what the column's cells read one by one."""
    cells = ["1", " 2 ", "-2.5", "3e2", "", "x", "7."]
    for a in cells:
        for b in cells:
            rows = [[a, "4", "north"], [b, "5"], ["6", " 7", "south"]]
            classified = classify(Table(["n", "mean_x", "region"], rows, ["r1", "r2", "r3"]), set())
            fresh = Table(["n", "mean_x", "region"], rows, ["r1", "r2", "r3"])
            for j in range(3):
                assert classified.values(j) == fresh.values(j), (rows, j)


def test_lines_read_where_asked_are_the_text_s_lines() -> None:
    """The lines a printed table is looked for in, cut out of the text where asked (from any
    line known before, forwards or back), are those ``splitlines`` makes."""
    from atoll.disclosure.tables import _Lines

    for text in ["", "\n", "a", "a\n", "a\nb", "\n\nx\n\n", "one\ntwo three\n\nfour\n"]:
        expected = text.splitlines()
        for known in range(len(expected)):
            starts = {known: sum(len(line) + 1 for line in expected[:known])}
            for order in (range(len(expected)), range(len(expected) - 1, -1, -1)):
                lines = _Lines(text, starts)
                assert len(lines) == len(expected)
                assert [lines[k] for k in order] == [expected[k] for k in order], text
        assert list(_Lines(text, {})) == expected


def test_every_line_naming_a_count_is_a_table_start() -> None:
    """The lines a printed table may start at are found at once by a search that skips ahead:
    each line that names a count as a word (or holds a series footer) is found, whatever its
    neighbours, and no other."""
    import random
    import re

    from atoll.disclosure.tables import _COUNT_WORDS, _table_starts

    def plain(text: str) -> list[int]:
        return [
            i
            for i, line in enumerate(text.splitlines())
            if "Name: " in line
            or any(w in _COUNT_WORDS for w in re.findall("[a-z]+", line.lower()))
        ]

    pieces = ["n", "count", "counts", "N", "xn", "nx", "obs", "nobs", "records", "Name: ", "a"]
    rng = random.Random(5)
    for _ in range(2000):
        text = "".join(
            rng.choice(pieces) + rng.choice([" ", "\n", "", "_", "1", ",", "\n\n"])
            for _ in range(rng.randint(0, 8))
        )
        assert _table_starts(text) == plain(text), text


def test_columns_read_at_once_are_those_read_row_by_row() -> None:
    """A table's columns, turned at once where its rows are as wide as its header, are what
    reading each row's cell gives: stripped and less empty ones for :meth:`Table.column`,
    each label spelled normal for :meth:`Table.row_keys`."""
    import random

    from atoll.disclosure.tokens import normal

    rng = random.Random(8)
    cells = ["north", " North ", "", "3", "3.0", "-2.5", "x", "ΣΑΣ", " ", "7."]
    for _ in range(300):
        width = rng.randint(1, 4)
        rows = [
            rng.choices(cells, k=width + rng.choice([0, 0, 0, 1, -1]))
            for _ in range(rng.randint(0, 6))
        ]
        table = Table([f"c{j}" for j in range(width)], rows, [f"row {i}" for i in range(len(rows))])
        table.labels = [j for j in range(width + 1) if rng.random() < 0.5]
        for j in range(width + 1):
            assert table.column(j) == [
                c for c in [r[j].strip() for r in rows if j < len(r)] if c
            ], (rows, j)
            assert list(table.cells(j)) == [r[j] if j < len(r) else "" for r in rows]
        keys = [tuple(normal(r[j]) if j < len(r) else "" for j in table.labels) for r in rows]
        assert table.row_keys() == keys, rows


def test_the_words_of_a_regression_summary_are_found_with_the_table_starts() -> None:
    """The scan for table starts also says which words a regression summary's labels end in
    the text holds, and a text without them has no summary to read."""
    import random
    import re

    from atoll.disclosure import _REGRESSION_LABELS, _regressions
    from atoll.disclosure.tables import REGRESSION_WORDS, _table_starts

    pieces = [
        "No. Observations:", "Df Residuals:", "observations", "Residualsx", "xresiduals",
        "OBSERVATIONS", "n", "count", "FirstName: ", "Name: ", "name", "  12", "3", "\n", " ",
    ]  # fmt: skip
    rng = random.Random(9)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " ", "\n"]) for _ in range(6))
        words: set[str] = set()
        _table_starts(text, {}, words)
        expected = {w for w in re.findall("[a-z]+", text.lower()) if w in REGRESSION_WORDS}
        assert words == expected, text
        for threshold in (5, 20):
            assert _regressions(text, threshold, words) == _regressions(text, threshold), text
        if not words:
            assert not any(label in text for label in _REGRESSION_LABELS) or not re.search(
                r"(No\. Observations|Df Residuals):", text
            )


def test_a_column_s_numbers_are_its_cells_read_one_by_one() -> None:
    """A column read at once, where its cells' characters leave ``float`` to decide, has the
    values reading each cell on its own gives, and is None where one cell is no number."""
    import random

    from atoll.disclosure.tables import numbers

    pieces = ["1", "0", "9", ".", "e", "E", "+", "-", " ", "_", "nan", "inf", "\u0663", "x", "\n"]
    rng = random.Random(21)
    for _ in range(5000):
        cells = [
            "".join(rng.choices(pieces, k=rng.randint(0, 5))) for _ in range(rng.randint(0, 4))
        ]
        expected = [float(c) for c in cells] if all(map(is_number, cells)) else None
        assert numbers(cells) == expected, cells
        assert all_numbers(cells) == (expected is not None), cells


def test_a_delimited_text_s_rows_are_those_the_csv_module_reads() -> None:
    """Rows split from a plain text's lines are the rows ``csv`` reads, for texts with empty
    lines, empty cells, trailing delimiters and none or some final newlines; a text the
    lines cannot be split from (quotes, carriage returns) is read by ``csv`` itself."""
    import csv
    import io
    import random

    pieces = ["a", "1", "2.5", " ", ",", "\t", "\n", "\n\n", "é", '"', "\r\n", "x y", ""]
    rng = random.Random(23)
    split = 0
    for _ in range(4000):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 14)))
        for delimiter in (",", "\t"):
            try:
                expected = list(
                    csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
                )
            except csv.Error:
                continue
            table = parse_delimited(text, delimiter)
            if len(expected) < 2:
                assert table is None, text
                continue
            assert table is not None
            assert [table.header, *table.rows] == expected, text
            if table.lines is not None:
                split += 1
                assert [line.split(delimiter) if line else [] for line in table.lines] == expected
    assert split > 1000


def test_the_lines_a_printed_table_is_looked_for_at_are_enough() -> None:
    """Lines that name a count but can neither head a table nor close a series (a log's
    messages) are dropped before any is tried: the tables found are those trying every
    line finds."""
    import random

    pieces = [
        "region n", "count", "records", "n, mean", "Name: count, dtype: int64", "x Name: n",
        "total: 3 records", "north 140", "east 4", "12 40", "0 north 3", "| n |", "n=4",
    ]  # fmt: skip
    rng = random.Random(13)
    for _ in range(3000):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        text += rng.choice(["", "\n"])
        assert printed_tables(text) == _every_line(text), text


def test_each_table_start_is_given_where_its_line_starts() -> None:
    import random

    from atoll.disclosure.tables import _table_starts

    pieces = ["n", "count", "Name: ", "a", "records", "xn"]
    rng = random.Random(17)
    for _ in range(2000):
        text = "".join(
            rng.choice(pieces) + rng.choice([" ", "\n", "", ",", "\n\n"])
            for _ in range(rng.randint(0, 8))
        )
        offsets: dict[int, int] = {}
        starts = _table_starts(text, offsets)
        lines = text.split("\n")
        assert sorted(offsets) == (starts or []), text
        for line, at in offsets.items():
            assert at == sum(len(x) + 1 for x in lines[:line]), text


def test_a_correlation_matrix_is_of_the_whole_data_not_of_groups() -> None:
    text = "var,age,income\nage,1.0,0.11\nincome,0.11,1.0\n"
    matrix = _table(text, {"age", "income"})
    assert matrix.stats == [] and small_groups(matrix, 10, None) == []
    # a table of the same columns whose rows are groups is a table of statistics
    groups = _table("region,age,income\nnorth,41.2,50100\nsouth,39.9,48800\n", {"age", "income"})
    assert groups.stats == [1, 2] and small_groups(groups, 10, None)


def test_counts_made_up_for_records_are_held_where_most_rows_are_one_or_two_records() -> None:
    """A count table by two columns or more whose rows mostly count a group the inputs hold
    one or two records of; not one by a single column, nor one whose groups the inputs
    hold enough records of, nor one where such rows are few."""

    def held(text: str, sizes: list[int]) -> bool:
        table = _table(text)
        groups = Groups(sizes=dict(zip(table.row_keys(), sizes, strict=True)))
        return bool(small_in_data(table, 10, groups))

    two = "region,sex,count\nnorth,F,12\nnorth,M,15\nsouth,F,20\nsouth,M,11\n"
    assert held(two, [1, 2, 1, 30])
    assert not held(two, [10, 12, 20, 11])  # as the data holds
    assert not held(two, [0, 0, 0, 0])  # groups the data does not show
    assert not held(two, [1, 30, 30, 30])  # one row of four
    one = "region,count\nnorth,12\nsouth,15\neast,20\nwest,11\n"
    assert not held(one, [1, 1, 2, 1])  # by one column: the values the data holds, at most
    small = "region,sex,count\nnorth,F,3\nnorth,M,4\nsouth,F,2\n"
    assert not held(small, [1, 1, 2])  # under the threshold: small cells say so already
