"""A reviewer's preview: which cells and rows the checks' findings name, how a file is shown,
and the histograms of numeric columns."""

from __future__ import annotations

from atoll.disclosure.report import Finding
from atoll.ui import plots, preview


def test_the_places_a_finding_names_are_flagged() -> None:
    findings = [
        Finding(check="small_cells", detail="2 counts under 10: row 2 column 2, row 4 column 3"),
        Finding(
            check="small_group",
            detail="statistics in columns 3 over groups under 10: row 5 (a group of 2)",
        ),
    ]
    table = preview.table_of(b"a,b,c\nx,3,1\ny,40,50\nz,41,4\nw,50,60\n", "t.csv", findings)
    flagged = {(r.number, j) for r in table.rows for j, c in enumerate(r.cells, 1) if c.flagged}
    assert flagged == {(2, 2), (4, 3), (5, 1), (5, 2), (5, 3)}
    assert [r.number for r in table.rows if r.flagged] == [2, 4, 5]


def test_a_copy_of_the_input_flags_every_cell() -> None:
    table = preview.table_of(
        b"a\n1\n", "t.csv", [Finding(check="echo", detail="a copy of input 1")]
    )
    assert all(c.flagged for r in table.rows for c in r.cells)


def test_a_file_is_shown_by_its_content() -> None:
    assert preview.kind_of("x.csv", b"\x89PNG\r\n\x1a\n....") == "png"
    assert preview.kind_of("x.txt", b"<?xml version='1.0'?><svg></svg>") == "svg"
    assert preview.kind_of("x.png", b"  <svg onload=alert(1)>") == "svg"
    assert preview.kind_of("x.csv", b"a,b\n1,2\n") == "csv"
    assert preview.kind_of("x.csv", b"\xff\xfe\x00binary") == "binary"
    assert preview.kind_of("log", b"plain words") == "text"


def test_numeric_columns_get_a_histogram_and_others_none() -> None:
    table = preview.table_of(b"name,age\na,10\nb,20\nc,30\nd,\n", "t.csv", [])
    assert [h.column for h in table.histograms] == ["age"]
    h = table.histograms[0]
    assert (h.low, h.high, sum(h.counts)) == (10.0, 30.0, 3)
    chart = plots.histogram(h.column, h.low, h.high, h.counts)
    assert len(chart.bars) == preview.HISTOGRAM_BINS
    assert max(b.height for b in chart.bars) <= chart.height
