"""Mock data from a real CSV: the schema discloses no rare category and no exact extreme, and
the rows reproduce no real row while keeping the columns and their types."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from atoll.disclosure.mock import (
    MockSchema,
    coarsen,
    coarsen_dates,
    generate_mock,
    infer_schema,
)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def real(tmp_path: Path, dataset: Path) -> Path:
    """The dataset plus a few columns of the other kinds and a rare diagnosis."""
    rows = _rows(dataset.read_text())
    rows[0] += ["smoker", "visits", "score"]
    for i, row in enumerate(rows[1:]):
        row += ["true" if i % 3 else "false", str(i % 4), "" if i % 7 == 0 else f"{i / 8:.1f}"]
    rows[5][8] = "leprosy"
    path = tmp_path / "real.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_the_schema_keeps_columns_and_types(real: Path) -> None:
    schema = infer_schema(real)
    types = {c.name: c.type for c in schema.columns}
    assert types == {
        "patient_id": "text",
        "name": "text",
        "email": "text",
        "dob": "date",
        "sex": "category",
        "region": "category",
        "age": "integer",
        "income": "number",
        "diagnosis": "category",
        "smoker": "boolean",
        "visits": "integer",
        "score": "number",
    }


def test_the_schema_leaves_out_rare_categories_and_exact_extremes(real: Path) -> None:
    schema = infer_schema(real)
    columns = {c.name: c for c in schema.columns}
    assert columns["diagnosis"].categories == ["asthma", "diabetes", "healthy"]
    ages = [int(r[6]) for r in _rows(real.read_text())[1:]]
    assert (columns["age"].low, columns["age"].high) == (10.0, 100.0)
    assert columns["age"].low < min(ages) and columns["age"].high > max(ages)
    dobs = sorted(r[3] for r in _rows(real.read_text())[1:])
    assert str(columns["dob"].low) < dobs[0] and str(columns["dob"].high) > dobs[-1]
    assert columns["score"].nullRate == 0.14
    assert columns["visits"].categories == ["0", "1", "2", "3"]


def test_mock_rows_are_no_real_rows_and_hold_no_rare_value(real: Path) -> None:
    schema = infer_schema(real)
    mock = _rows(generate_mock(schema, rows=300, seed=3, real=real))
    actual = _rows(real.read_text())
    assert mock[0] == actual[0]
    assert len(mock) == 301
    real_rows = {tuple(r) for r in actual[1:]}
    assert not [r for r in mock[1:] if tuple(r) in real_rows]
    ages = [int(r[6]) for r in actual[1:]]
    extremes = {str(min(ages)), str(max(ages))}
    assert not [r for r in mock[1:] if r[6] in extremes]
    assert "leprosy" not in {r[8] for r in mock[1:]}
    assert not {r[0] for r in mock[1:]} & {r[0] for r in actual[1:]}


def test_mock_rows_keep_the_types(real: Path) -> None:
    schema = infer_schema(real)
    again = infer_schema_of(generate_mock(schema, rows=400, seed=1), real.parent)
    assert [c.type for c in again.columns] == [c.type for c in schema.columns]


def infer_schema_of(text: str, folder: Path) -> MockSchema:
    path = folder / "mock.csv"
    path.write_text(text)
    return infer_schema(path, threshold=1)


def test_a_table_of_common_values_only_cannot_be_mocked_unlike_itself(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("sex,region\n" + "F,north\nM,south\nF,south\nM,north\n" * 10)
    with pytest.raises(ValueError, match="every row"):
        generate_mock(infer_schema(path), rows=5, real=path)


def test_ranges_round_outward_past_a_bound_on_a_step() -> None:
    assert coarsen(18, 90) == (10, 100)
    assert coarsen(20, 87) == (10, 90)
    assert coarsen(0.5, 0.75) == (0.4, 0.8) or coarsen(0.5, 0.75)[0] < 0.5


def test_dates_round_outward_to_years() -> None:
    from datetime import date

    assert coarsen_dates(date(1950, 3, 4), date(2004, 1, 1)) == (
        date(1950, 1, 1),
        date(2004, 12, 31),
    )
    assert coarsen_dates(date(1950, 1, 1), date(2004, 12, 31))[0] == date(1949, 1, 1)
